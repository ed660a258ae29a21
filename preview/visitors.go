package preview

import (
	"net/http"
	"strconv"
	"sync/atomic"
)

// This file bounds what the visitors of one session's preview hold at
// once. Anyone with the preview URL may open WebSockets to it and send it
// requests, and the tenant's code decides how long its dev server takes
// to answer: a module whose transform never ends holds its request, and
// the request its connection, for as long as the client waits. Unbounded,
// those would take every connection the node's Server holds
// (ServerOptions.MaxConns), the API's included.

// DefaultMaxSessionWebSockets is the default of
// Limits.MaxSessionWebSockets: tabs of a preview open at once, with room
// for the pings of Vite's client and an app's own sockets.
const DefaultMaxSessionWebSockets = 32

// DefaultMaxSessionRequests is the default of Limits.MaxSessionRequests:
// a browser keeps at most 6 HTTP/1.1 connections to one host, so ten
// browsers loading a preview at once, with room to spare. With
// MaxSessions' default (50) and the WebSockets', the previews hold at
// most 4,800 of the node's connections (DefaultMaxConns 8192).
const DefaultMaxSessionRequests = 64

// holdSocket counts a WebSocket to s's preview, and reports false, having
// counted nothing, when max are open already. dropSocket ends what it
// counted.
func (s *session) holdSocket(max int) bool { return hold(&s.sockets, max) }

func (s *session) dropSocket() { s.sockets.Add(-1) }

// holdRequest counts an HTTP/1 request to s's preview that holds a
// connection of its own, and reports false, having counted nothing, when
// max are in flight already. dropRequest ends what it counted.
func (s *session) holdRequest(max int) bool { return hold(&s.requests, max) }

func (s *session) dropRequest() { s.requests.Add(-1) }

// hold adds one to n unless that makes it more than max.
func hold(n *atomic.Int32, max int) bool {
	if n.Add(1) > int32(max) {
		n.Add(-1)
		return false
	}
	return true
}

// tooManySockets refuses a WebSocket handshake beyond
// Limits.MaxSessionWebSockets. Vite's client then waits and tries again,
// which gets through once a tab of the preview closes.
func tooManySockets(w http.ResponseWriter, max int) {
	tooMany(w, "5", "too many WebSockets open to this preview: at most "+strconv.Itoa(max)+"; close another tab of it")
}

// tooManyRequests refuses a request beyond Limits.MaxSessionRequests at
// once: its connection is then idle, and the node's Server may give it
// to another client.
func tooManyRequests(w http.ResponseWriter, max int) {
	tooMany(w, "1", "too many requests in flight to this preview: at most "+strconv.Itoa(max)+" at once")
}

func tooMany(w http.ResponseWriter, retryAfter, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", retryAfter)
	http.Error(w, msg, http.StatusTooManyRequests)
}

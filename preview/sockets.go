package preview

import (
	"net/http"
	"strconv"
)

// This file bounds the WebSockets of one session's preview. Anyone with
// the preview URL may open them, and each holds a connection of the
// service and one to the dev server for as long as its client wants.

// DefaultMaxSessionWebSockets is the default of
// Limits.MaxSessionWebSockets: tabs of a preview open at once, with room
// for the pings of Vite's client and an app's own sockets.
const DefaultMaxSessionWebSockets = 32

// holdSocket counts a WebSocket to s's preview, and reports false, having
// counted nothing, when max are open already. dropSocket ends what it
// counted.
func (s *session) holdSocket(max int) bool {
	if s.sockets.Add(1) > int32(max) {
		s.sockets.Add(-1)
		return false
	}
	return true
}

func (s *session) dropSocket() { s.sockets.Add(-1) }

// tooManySockets refuses a WebSocket handshake beyond
// Limits.MaxSessionWebSockets. Vite's client then waits and tries again,
// which gets through once a tab of the preview closes.
func tooManySockets(w http.ResponseWriter, max int) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "5")
	http.Error(w, "too many WebSockets open to this preview: at most "+strconv.Itoa(max)+"; close another tab of it", http.StatusTooManyRequests)
}

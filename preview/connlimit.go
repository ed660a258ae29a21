package preview

import (
	"container/list"
	"errors"
	"net"
	"net/http"
	"sync"
)

// This file is the cap on a Server's connections. Each connection is a
// file descriptor (a proxied WebSocket two); past the process's limit,
// accept fails and so does every file the process opens, /healthz and the
// previews included. The cap keeps the count below the limit, and lets a
// new connection take the place of an idle one, so that a health probe
// gets through a flood of connections that send nothing.

// connLimiter counts the open connections of a Server's listeners and
// keeps those without a request in progress in the order they became so.
type connLimiter struct {
	max int

	mu      sync.Mutex
	open    int
	idle    list.List // of *limitedConn, the longest idle first
	evicted int       // idle connections closed for a new one
	refused int       // new connections closed at the cap
}

func newConnLimiter(max int) *connLimiter { return &connLimiter{max: max} }

// limitedConn is a connection counted by its connLimiter until it closes.
type limitedConn struct {
	net.Conn
	lim *connLimiter

	// guarded by lim.mu
	elem   *list.Element // in lim.idle while no request is in progress
	closed bool          // no longer counted
}

// admit counts c when there is room, or makes room by taking the place of
// the longest idle connection, which it returns for the caller to close.
// It reports false when every counted connection is busy.
func (l *connLimiter) admit(c net.Conn) (lc *limitedConn, victim net.Conn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		front := l.idle.Front()
		if front == nil {
			l.refused++
			return nil, nil, false
		}
		old := l.idle.Remove(front).(*limitedConn)
		old.elem, old.closed = nil, true // its place is the new one's
		l.evicted++
		victim = old.Conn
	} else {
		l.open++
	}
	lc = &limitedConn{Conn: c, lim: l}
	lc.elem = l.idle.PushBack(lc) // idle until its first request is read
	return lc, victim, true
}

// track is the http.Server's ConnState hook: a connection is idle while it
// waits for a request (StateNew, StateIdle) and busy while it serves one
// or carries a WebSocket (StateActive, StateHijacked).
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn() // a *tls.Conn of ServeTLS
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.closed {
		return
	}
	switch state {
	case http.StateNew, http.StateIdle:
		if lc.elem == nil {
			lc.elem = l.idle.PushBack(lc)
		}
	case http.StateActive, http.StateHijacked:
		if lc.elem != nil {
			l.idle.Remove(lc.elem)
			lc.elem = nil
		}
	}
}

// Close closes the connection and frees its place.
func (c *limitedConn) Close() error {
	l := c.lim
	l.mu.Lock()
	if !c.closed {
		c.closed = true
		l.open--
		if c.elem != nil {
			l.idle.Remove(c.elem)
			c.elem = nil
		}
	}
	l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the one under it can: the
// WebSocket tunnel sends its FIN before it waits for the client's last
// bytes (ssrproxy's tunnel.go).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// limitListener accepts connections within its connLimiter's cap.
type limitListener struct {
	net.Listener
	lim *connLimiter
}

// Accept returns the next connection within the cap; connections beyond
// it are closed as they come.
func (ln *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc, victim, ok := ln.lim.admit(c)
		if victim != nil {
			victim.Close()
		}
		if ok {
			return lc, nil
		}
		c.Close()
	}
}

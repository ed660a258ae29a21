package ssrproxy

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// closeWriteTimeout is how long Close lets a write to a client that does
	// not read go on.
	closeWriteTimeout = time.Second

	// lingerTimeout is how long an ending tunnel keeps reading from the
	// client (its answer to a close frame) before it closes the connection.
	lingerTimeout = time.Second

	// closeGoingAway is the close code Close sends: the endpoint is going
	// away (RFC 6455, 7.4.1).
	closeGoingAway = 1001

	// closeTooBig is the close code for a client whose message went over
	// the tunnel's bound: the message is too big to process (RFC 6455,
	// 7.4.1).
	closeTooBig = 1009
)

// tunnel joins a hijacked client connection and the upgraded connection to
// the dev server.
type tunnel struct {
	up        io.ReadWriteCloser
	ws        bool
	onTraffic func() // Options.OnTraffic, or nil

	mu      sync.Mutex // orders attach against shutdown
	client  net.Conn
	cr      *bufio.Reader // the client's bytes, starting with those the server buffered
	closing atomic.Bool   // Close is ending the tunnel
	ending  atomic.Bool   // the upstream side is done; the client may still answer

	// clientClosed is set once a whole close frame came from the client:
	// after that it sends nothing, and the tunnel need not wait for it.
	clientClosed atomic.Bool

	// tooBig is set when a client's message went over the bound of
	// fromClientFrames: the dev server got nothing of it, and the client
	// gets a 1009 close.
	tooBig atomic.Bool

	// Owned by the goroutine in run (toClient).
	toClientFrames frameTracker
	broken         bool // a write to the client failed

	// Owned by the goroutine of toUpstream.
	fromClientFrames frameTracker
}

// attach hands the client connection to the tunnel. It reports false when
// Close has already ended the tunnel.
func (t *tunnel) attach(c net.Conn, r *bufio.Reader) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.client, t.cr = c, r
	return !t.closing.Load()
}

// shutdown makes run end: it closes the upstream side, which ends the copy to
// the client, and bounds a write that a client is not reading.
func (t *tunnel) shutdown() {
	t.mu.Lock()
	t.closing.Store(true)
	c := t.client
	t.mu.Unlock()
	if c != nil {
		c.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	}
	t.up.Close()
}

// run copies both ways and returns when both copies have ended and both
// connections are closed.
func (t *tunnel) run() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.toUpstream()
	}()
	t.toClient()

	t.ending.Store(true)
	switch {
	case t.closing.Load():
		t.closeClient(closeGoingAway, "proxy closed")
	case t.tooBig.Load():
		t.closeClient(closeTooBig, "message too big")
	}
	// Send the client everything up to the end, then the end (FIN), and
	// read its last bytes, the answer to a close frame, before closing: a
	// close with unread data resets the connection, and a reset can make
	// the client drop what it has not read yet. A browser that has answered
	// the close waits for the server to close first (RFC 6455, 7.1.1), so
	// once its close frame is in there is nothing to wait for.
	if cw, ok := t.client.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	linger := time.Now().Add(lingerTimeout)
	if t.clientClosed.Load() {
		linger = time.Now()
	}
	t.client.SetReadDeadline(linger)
	t.up.Close()
	<-done
	t.client.Close()
}

// toClient copies the dev server's bytes to the client until the upstream
// ends, fails or is closed.
func (t *tunnel) toClient() {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		n, err := t.up.Read(buf)
		if n > 0 {
			if t.onTraffic != nil {
				t.onTraffic()
			}
			if t.ws {
				t.toClientFrames.feed(buf[:n])
			}
			if _, werr := t.client.Write(buf[:n]); werr != nil {
				t.broken = true
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// toUpstream copies the client's bytes to the dev server until the client
// ends or fails, then closes the upstream side, which ends toClient. Once
// the upstream side is gone it keeps reading the client's answer until its
// close frame is in or run's deadline passes.
//
// On a WebSocket the bytes go on a whole frame header at a time, and a
// frame that makes its message go over the bound goes nowhere: the dev
// server's connection is closed before any byte of it, which ends the
// tunnel with a 1009 close to the client. A dev server buffers a message
// until it is whole (Vite's ws library up to 100 MiB), so a bound here is
// one on its memory.
func (t *tunnel) toUpstream() {
	defer t.up.Close()
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	f := &t.fromClientFrames
	var held [maxFrameHeader]byte // the start of a header that is not whole yet
	upOpen := true
	for {
		n, err := t.cr.Read(buf)
		if n > 0 {
			if t.onTraffic != nil {
				t.onTraffic()
			}
			out := buf[:n]
			var prefix []byte
			if t.ws {
				h := copy(held[:], f.hdr[:f.n])
				k := f.feed(out)
				if f.closed && f.atBoundary() {
					t.clientClosed.Store(true)
				}
				prefix, out = held[:h], out[:k]
				if k == 0 {
					prefix = nil // still part of an unfinished header, or too big
				}
				if f.tooBig && upOpen {
					// What came before the frame goes on; then the dev
					// server's side ends, and with it toClient.
					t.tooBig.Store(true)
					t.write(prefix, out)
					t.up.Close()
					upOpen = false
				}
			}
			if upOpen && !t.write(prefix, out) {
				if !t.ending.Load() && !t.closing.Load() {
					return
				}
				upOpen = false
			}
		}
		if err != nil || t.ending.Load() && t.clientClosed.Load() {
			return
		}
	}
}

// write sends a and then b to the dev server and reports whether it could.
func (t *tunnel) write(a, b []byte) bool {
	for _, p := range [][]byte{a, b} {
		if len(p) == 0 {
			continue
		}
		if _, err := t.up.Write(p); err != nil {
			return false
		}
	}
	return true
}

// closeClient sends the client a close frame with code and reason when that
// is allowed: between frames, and when no close frame went to it yet.
func (t *tunnel) closeClient(code uint16, reason string) {
	if !t.ws || t.broken || !t.toClientFrames.atBoundary() || t.toClientFrames.closed {
		return
	}
	t.client.Write(closeFrame(code, reason))
}

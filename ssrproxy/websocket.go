package ssrproxy

// The WebSocket leg. The handshake is relayed like any request (same
// Transport, same rewrite of URL, Host and X-Forwarded-*); the browser gets a
// 101 only after the dev server sent one, and a refusal is relayed with its
// status. After the 101 the tunnel copies bytes both ways untouched, so
// subprotocols, extensions, frames, pings and close codes pass through as the
// two ends wrote them.
//
// Why not httputil.ReverseProxy's own upgrade tunnel, which relays the same
// bytes: Close must end every tunnel with a close frame to the client, and a
// close frame may only go between two frames. Here the upstream-to-client
// copy knows where frames end (frameTracker); ReverseProxy's io.Copy into the
// hijacked connection does not, and could be observed only through how it
// writes the 101 (internals). ReverseProxy also returns as soon as one
// direction ends without waiting for the other copy goroutine
// (net/http/httputil handleUpgradeResponse, Go 1.26), so a Close built on it
// could not wait for all goroutines; and it drops bytes the client sent
// right behind the handshake that the server had already buffered.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vitehost/vitehost/hotfile"
)

const (
	// handshakeTimeout bounds the wait for the dev server's answer to a
	// handshake. Vite with a handed-over HMR server leaves an upgrade it does
	// not handle (another path or subprotocol) unanswered forever
	// (hmrServerWsListener in vite/src/node/server/ws.ts, Vite 8.3).
	handshakeTimeout = 10 * time.Second

	// closeWriteTimeout is how long Close lets a write to a client that does
	// not read go on.
	closeWriteTimeout = time.Second

	// lingerTimeout is how long an ending tunnel keeps reading from the
	// client (its answer to a close frame) before it closes the connection.
	lingerTimeout = time.Second

	// closeGoingAway is the close code Close sends: the endpoint is going
	// away (RFC 6455, 7.4.1).
	closeGoingAway = 1001
)

// isUpgrade reports whether h asks to switch protocols.
func isUpgrade(h http.Header) bool {
	return len(h.Values("Upgrade")) > 0 && hasToken(h.Values("Connection"), "upgrade", true)
}

// isViteSocket reports whether a WebSocket handshake is Vite's client: its
// Sec-WebSocket-Protocol lists vite-hmr (the HMR channel) or vite-ping (the
// "is the server back?" probe). Subprotocol names are compared exactly, as
// Vite does.
func isViteSocket(h http.Header) bool {
	v := h.Values("Sec-WebSocket-Protocol")
	return hasToken(v, "vite-hmr", false) || hasToken(v, "vite-ping", false)
}

// tokens yields the elements of comma-separated header values, without the
// spaces and tabs around them and without empty elements.
func tokens(values []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range values {
			for v != "" {
				var elem string
				elem, v, _ = strings.Cut(v, ",")
				elem = strings.Trim(elem, " \t")
				if elem != "" && !yield(elem) {
					return
				}
			}
		}
	}
}

// hasToken reports whether token is an element of the comma-separated
// values, compared ASCII case-insensitively when fold is set.
func hasToken(values []string, token string, fold bool) bool {
	for elem := range tokens(values) {
		if elem == token || fold && strings.EqualFold(elem, token) {
			return true
		}
	}
	return false
}

// hopHeaders are the headers that describe one connection, not the request
// (RFC 9110, 7.6.1).
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopHeaders deletes the hop-by-hop headers of h and the headers that
// its Connection header names.
func removeHopHeaders(h http.Header) {
	for name := range tokens(h.Values("Connection")) {
		h.Del(name)
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// validUpgrade reports whether an Upgrade value is a printable ASCII token
// that can be sent on.
func validUpgrade(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// serveUpgrade relays a handshake and, once the dev server switched
// protocols, tunnels the connection until one side ends or Close.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, t hotfile.Targets) {
	upType := r.Header.Get("Upgrade")
	ws := strings.EqualFold(upType, "websocket")
	target := t.HTTP
	if ws && t.HMR != nil && isViteSocket(r.Header) {
		target = t.HMR
	}
	if target == nil {
		p.fail(w, r, ErrNoTarget)
		return
	}
	if !validUpgrade(upType) {
		http.Error(w, "invalid Upgrade header", http.StatusBadRequest)
		return
	}

	// The timer covers the wait for the answer only: the context must stay
	// alive while a refusal's body is relayed.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	timer := time.AfterFunc(handshakeTimeout, cancel)
	res, err := p.transport.RoundTrip(p.handshakeRequest(r.WithContext(ctx), target, upType))
	if !timer.Stop() && err != nil && r.Context().Err() == nil {
		err = fmt.Errorf("vitehost/ssrproxy: no answer to the WebSocket handshake within %s: %w", handshakeTimeout, err)
	}
	if err != nil {
		p.handleError(w, r, err)
		return
	}
	if p.modify != nil {
		if err := p.modify(res); err != nil {
			res.Body.Close()
			p.handleError(w, r, err)
			return
		}
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		p.relayRefusal(w, res)
		return
	}
	resType := res.Header.Get("Upgrade")
	up, ok := res.Body.(io.ReadWriteCloser)
	switch {
	case !strings.EqualFold(resType, upType) || !validUpgrade(resType):
		err = fmt.Errorf("vitehost/ssrproxy: dev server switched to protocol %q when %q was asked for", resType, upType)
	case !ok:
		err = fmt.Errorf("vitehost/ssrproxy: transport %T does not hand over upgraded connections", p.transport)
	}
	if err != nil {
		res.Body.Close()
		p.handleError(w, r, err)
		return
	}

	tun := &tunnel{up: up, ws: ws}
	if !p.track(tun) {
		up.Close()
		p.fail(w, r, ErrClosed)
		return
	}
	defer p.untrack(tun)
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		p.handleError(w, r, fmt.Errorf("vitehost/ssrproxy: cannot take over the client connection: %w", err))
		return
	}
	// The server's read and write timeouts were meant for one request.
	conn.SetDeadline(time.Time{})
	if !tun.attach(conn, brw.Reader) {
		// Close came between the handshake and here: refuse instead of
		// sending a 101 that would be closed at once.
		up.Close()
		conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
		io.WriteString(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: 22\r\n\r\nproxy is shutting down")
		conn.Close()
		return
	}

	removeHopHeaders(res.Header)
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = append(h[k], vv...)
	}
	h.Set("Connection", "Upgrade")
	h.Set("Upgrade", resType)
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	h.Write(brw)
	brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		p.log.Debug("vitehost/ssrproxy: client gone before the 101", "url", r.URL.String(), "err", err)
		up.Close()
		conn.Close()
		return
	}
	tun.run()
}

// handshakeRequest is the handshake to send to target.
func (p *Proxy) handshakeRequest(r *http.Request, target *url.URL, upType string) *http.Request {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Close = false
	if out.ContentLength == 0 {
		out.Body = nil
	}
	removeHopHeaders(out.Header)
	// Like ReverseProxy with Rewrite: forwarding headers describe this hop
	// only, never what the client claimed.
	for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
		out.Header.Del(k)
	}
	out.Header.Set("Connection", "Upgrade")
	out.Header.Set("Upgrade", upType)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // no Go default in its place
	}
	p.rewrite(&httputil.ProxyRequest{In: r, Out: out}, target)
	return out
}

// relayRefusal sends the dev server's answer to a handshake it did not
// accept (Vite: 400 without the right token, 403 for a host it does not
// allow) to the client as it is.
func (p *Proxy) relayRefusal(w http.ResponseWriter, res *http.Response) {
	defer res.Body.Close()
	removeHopHeaders(res.Header)
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = append(h[k], vv...)
	}
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
}

// tunnel joins a hijacked client connection and the upgraded connection to
// the dev server.
type tunnel struct {
	up io.ReadWriteCloser
	ws bool

	mu      sync.Mutex // orders attach against shutdown
	client  net.Conn
	cr      *bufio.Reader // the client's bytes, starting with those the server buffered
	closing atomic.Bool   // Close is ending the tunnel
	ending  atomic.Bool   // the upstream side is done; the client may still answer

	// clientClosed is set once a whole close frame came from the client:
	// after that it sends nothing, and the tunnel need not wait for it.
	clientClosed atomic.Bool

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
	if t.closing.Load() {
		t.goingAway()
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
func (t *tunnel) toUpstream() {
	defer t.up.Close()
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	upOpen := true
	for {
		n, err := t.cr.Read(buf)
		if n > 0 {
			if t.ws {
				f := &t.fromClientFrames
				f.feed(buf[:n])
				if f.closed && f.atBoundary() {
					t.clientClosed.Store(true)
				}
			}
			if upOpen {
				if _, werr := t.up.Write(buf[:n]); werr != nil {
					if !t.ending.Load() && !t.closing.Load() {
						return
					}
					upOpen = false
				}
			}
		}
		if err != nil || t.ending.Load() && t.clientClosed.Load() {
			return
		}
	}
}

// goingAway sends the client a close frame with code 1001 when that is
// allowed: between frames, and when no close frame went to it yet.
func (t *tunnel) goingAway() {
	if !t.ws || t.broken || !t.toClientFrames.atBoundary() || t.toClientFrames.closed {
		return
	}
	t.client.Write(closeFrame(closeGoingAway, "proxy closed"))
}

// closeFrame returns an unmasked close frame (server to client) with code
// and a reason of at most 123 bytes.
func closeFrame(code uint16, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	b := make([]byte, 0, 4+len(reason))
	b = append(b, 0x80|opClose, byte(2+len(reason)), byte(code>>8), byte(code))
	return append(b, reason...)
}

const opClose = 0x8

// maxFrameHeader is the longest WebSocket frame header: 2 bytes, an 8-byte
// extended length and a 4-byte mask.
const maxFrameHeader = 14

// frameTracker follows the frames in a stream of WebSocket bytes, fed in
// pieces of any size, to tell whether the stream is between two frames
// (RFC 6455, 5.2). It reads the headers only; payloads are skipped.
type frameTracker struct {
	hdr    [maxFrameHeader]byte // the header being read
	n      int                  // how many bytes of it have been fed
	left   uint64               // payload bytes of the current frame still to come
	closed bool                 // a close frame went by
}

// feed advances the tracker over p.
func (f *frameTracker) feed(p []byte) {
	for len(p) > 0 {
		if f.left > 0 {
			k := f.left
			if uint64(len(p)) < k {
				k = uint64(len(p))
			}
			f.left -= k
			p = p[k:]
			continue
		}
		f.hdr[f.n] = p[0]
		f.n++
		p = p[1:]
		if f.n < 2 || f.n < frameHeaderLen(f.hdr[1]) {
			continue
		}
		f.left = framePayloadLen(f.hdr[:f.n])
		if f.hdr[0]&0x0f == opClose {
			f.closed = true
		}
		f.n = 0
	}
}

// atBoundary reports whether everything fed so far ends with a whole frame.
func (f *frameTracker) atBoundary() bool { return f.n == 0 && f.left == 0 }

// frameHeaderLen returns the length of a frame header from its second byte.
func frameHeaderLen(b1 byte) int {
	n := 2
	switch b1 & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if b1&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

// framePayloadLen returns the payload length of a complete frame header.
func framePayloadLen(h []byte) uint64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return uint64(h[2])<<8 | uint64(h[3])
	case 127:
		var n uint64
		for _, b := range h[2:10] {
			n = n<<8 | uint64(b)
		}
		return n
	default:
		return uint64(l)
	}
}

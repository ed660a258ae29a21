package ssrproxy

// The WebSocket leg. The handshake is relayed like any request (same
// Transport, same rewrite of URL, Host and X-Forwarded-*); the browser gets a
// 101 only after the dev server sent one, and a refusal is relayed with its
// status. After the 101 the tunnel copies bytes both ways untouched, so
// subprotocols, extensions, frames, pings and close codes pass through as the
// two ends wrote them; the one exception is a client message over the bound
// (Options.MaxViteMessage, MaxAppMessage), which ends the tunnel instead.
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
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/vitehost/vitehost/hotfile"
)

// handshakeTimeout bounds the wait for the dev server's answer to a
// handshake. Vite with a handed-over HMR server leaves an upgrade it does not
// handle (another path or subprotocol) unanswered forever
// (hmrServerWsListener in vite/src/node/server/ws.ts, Vite 8.3).
const handshakeTimeout = 10 * time.Second

// serveUpgrade relays a handshake and, once the dev server switched
// protocols, tunnels the connection until one side ends or Close.
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, t hotfile.Targets) {
	upType := r.Header.Get("Upgrade")
	ws := strings.EqualFold(upType, "websocket")
	target := t.HTTP
	vite := ws && isViteSocket(r.Header)
	if vite && t.HMR != nil {
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
	res, err := p.transport.RoundTrip(p.handshakeRequest(r.WithContext(ctx), upstreamOf(target), upType))
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

	tun := &tunnel{up: up, ws: ws, onTraffic: p.onTraffic}
	tun.fromClientFrames.max = p.maxApp
	if vite {
		tun.fromClientFrames.max = p.maxVite
	}
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
	if tun.tooBig.Load() {
		p.log.Info("vitehost/ssrproxy: closed a WebSocket whose client sent a message over the bound", "url", r.URL.Path, "max", tun.fromClientFrames.max)
	}
}

// handshakeRequest is the handshake to send to up.
func (p *Proxy) handshakeRequest(r *http.Request, up upstream, upType string) *http.Request {
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
	pr := &httputil.ProxyRequest{In: r, Out: out}
	p.rewrite(pr, up)
	return pr.Out
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

package preview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/internal/closing"
	"github.com/vitehost/vitehost/internal/hop"
)

// This file is where a node of several sends a request for a session that
// another node runs to that node: preview pages, modules and HMR sockets
// (the router) and API calls alike. A forward is one RoundTrip on the
// forwarding transport, whose error says whether the node is there; the
// node's answer is copied to the client, and the 101 of a WebSocket
// handshake becomes a tunnel between the two connections.

// ForwardedHeader marks a request that a node forwarded to the node that
// runs its session; its value is the sender's NodeID. A node never forwards
// such a request again: when it does not run the session, it answers 404.
const ForwardedHeader = "X-Vitehost-Forwarded"

// closedHeader marks the 503 of a closed Manager, so that a node forwarding
// to it takes the session over at once instead of relaying the 503.
const closedHeader = "X-Vitehost-Closed"

// serviceHeaderPrefix begins the headers that nodes set for one another.
const serviceHeaderPrefix = "X-Vitehost-"

// dropServiceHeaders removes the service's own headers from a response of a
// session's dev server. A project's code may set any header: a 503 with
// closedHeader, forwarded to another node, would make that node take the
// session over from its live owner at once.
func dropServiceHeaders(res *http.Response) error {
	for k := range res.Header {
		if strings.HasPrefix(k, serviceHeaderPrefix) {
			delete(res.Header, k)
		}
	}
	return nil
}

// closeWriteTimeout bounds a write to a client of a forward that the
// forwarder's close cut, so that a client that stopped reading does not
// hold the close.
const closeWriteTimeout = 2 * time.Second

// Reasons a forward wrote nothing: the caller decides what comes next.
var (
	// errOwnerGone: nothing accepts connections at the node's address, or
	// the node is shutting down. visit locates the session again, with
	// that node counted as dead.
	errOwnerGone = errors.New("vitehost/preview: the session's node is gone")
	// errOwnerSilent: the node accepted the connection but did not answer
	// within ForwardTimeout (it hangs, or it is stopped).
	errOwnerSilent = errors.New("vitehost/preview: the session's node does not answer")
)

// errForwarded is what an operation returns once another node answered
// the request: the client has its answer, and the API counts it as
// "forwarded".
var errForwarded = errors.New("vitehost/preview: the session's node answered the request")

// forwardTo returns what the API does with a request for a session that
// another node runs: relay r there, with body (when not nil) as its body.
func (m *Manager) forwardTo(w http.ResponseWriter, r *http.Request, body []byte) func(location) error {
	return func(loc location) error { return m.relay(w, r, loc, body) }
}

// relay forwards r to the node that runs the session at loc and returns
// errForwarded once the client has that node's answer. A node that does
// not answer counts as gone once its lease has run out: relay then returns
// an error that wraps errOwnerGone, having written nothing, and visit takes
// the session over. body is the request's body, read beforehand so that it
// can be sent again; nil streams the request's own body (a request that
// then cannot be sent twice). A request that a node forwarded is never
// forwarded again: it is errUnknown.
func (m *Manager) relay(w http.ResponseWriter, r *http.Request, loc location, body []byte) error {
	id := loc.rec.ID
	if r.Header.Get(ForwardedHeader) != "" {
		// The sender thought this node runs the session; it does not.
		return fmt.Errorf("%w: %s", errUnknown, id)
	}
	err := m.forwardNodes.forward(w, r, loc.rec.OwnerAddr, body)
	switch {
	case err == nil:
		return errForwarded
	case errors.Is(err, errOwnerGone):
	case errors.Is(err, errOwnerSilent) && m.awaitLeaseEnd(r.Context(), loc.rec.Owner):
		err = fmt.Errorf("%w: its lease ran out: %w", errOwnerGone, err)
	case errors.Is(err, errOwnerSilent):
		return fmt.Errorf("%w: session %s: node %s holds its lease but does not answer", ErrUnavailable, id, loc.rec.Owner)
	default:
		return err
	}
	m.log.Warn("vitehost/preview: the session's node is gone; taking the session over",
		"session", id, "owner", loc.rec.Owner, "addr", loc.rec.OwnerAddr, "err", err)
	if body == nil && r.Body != nil && r.Body != http.NoBody {
		return fmt.Errorf("%w: session %s: its node failed while the request's body was sent", ErrUnavailable, id)
	}
	return err
}

// awaitLeaseEnd waits, at most LeaseTTL, for node's lease to run out, and
// reports whether it did.
func (m *Manager) awaitLeaseEnd(ctx context.Context, node string) bool {
	ctx, cancel := context.WithTimeout(ctx, m.opts.LeaseTTL)
	defer cancel()
	t := time.NewTicker(max(m.opts.LeaseTTL/12, 10*time.Millisecond))
	defer t.Stop()
	for {
		alive, err := m.store.LeaseAlive(ctx, node)
		if err == nil && !alive {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// forwarder sends requests to the other nodes of a cluster. Its close ends
// the forwards in flight, WebSocket tunnels included, and waits for them.
type forwarder struct {
	transport *http.Transport
	node      string // this node's id, the value of ForwardedHeader
	log       *slog.Logger
	ctx       context.Context // ends at close
	cancel    context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // the forwards in flight
}

// newForwarder returns the forwarder of node, whose requests go through
// transport (its ResponseHeaderTimeout is ForwardTimeout).
func newForwarder(transport *http.Transport, node string, log *slog.Logger) *forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	return &forwarder{transport: transport, node: node, log: log, ctx: ctx, cancel: cancel}
}

// close ends the forwards in flight and returns when they have returned.
// It is safe to call more than once.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	f.transport.CloseIdleConnections()
}

// enter registers a forward, or reports false once the forwarder is closed.
func (f *forwarder) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

// forward relays r to the node at addr, with body (when not nil) as its
// body, and copies the node's answer to w. It returns nil once w has an
// answer: the node's, or a 502 when the node failed otherwise than the
// ways below. Having written nothing, it returns an error that wraps
// errOwnerGone when nothing accepts connections at addr or the node is
// shutting down, errOwnerSilent when the node did not answer within
// ForwardTimeout, ErrClosed when the forwarder is closed, and the
// request's context error when the client went away.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, addr string, body []byte) error {
	if !f.enter() {
		return ErrClosed
	}
	defer f.wg.Done()
	// close cancels the forward; a write to a client that stopped reading
	// gives up soon after.
	ctx, done := closing.Bind(r, w, f.ctx, &f.wg, closeWriteTimeout)
	defer done()

	res, err := f.transport.RoundTrip(f.outbound(ctx, r, addr, body))
	switch {
	case err == nil:
	case r.Context().Err() != nil:
		return fmt.Errorf("vitehost/preview: forward: %w", r.Context().Err())
	case f.ctx.Err() != nil:
		return ErrClosed
	case notListening(err):
		return fmt.Errorf("%w: %w", errOwnerGone, err)
	case timedOut(err):
		return fmt.Errorf("%w: %w", errOwnerSilent, err)
	default:
		// The cause names the node's internal address: it is for the log.
		f.log.Warn("vitehost/preview: forward to the session's node failed", "host", r.Host, "url", r.URL.String(), "err", err)
		http.Error(w, "bad gateway: the session's node failed", http.StatusBadGateway)
		return nil
	}
	if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get(closedHeader) != "" {
		res.Body.Close()
		return fmt.Errorf("%w: it is shutting down", errOwnerGone)
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		f.tunnel(ctx, w, r, res)
		return nil
	}
	f.copyResponse(w, r, res)
	return nil
}

// outbound is r as it goes to the node at addr: the same method, host
// name (the node's router finds the session by it), path, query and
// headers but the hop-by-hop ones, marked with ForwardedHeader.
func (f *forwarder) outbound(ctx context.Context, r *http.Request, addr string, body []byte) *http.Request {
	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", addr
	out.Close = false
	switch {
	case len(body) > 0:
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.TransferEncoding = nil
	case body != nil, r.ContentLength == 0:
		out.Body, out.ContentLength, out.TransferEncoding = nil, 0, nil
	}
	upgrade := ""
	if hop.HasToken(r.Header["Connection"], "upgrade", true) {
		upgrade = r.Header.Get("Upgrade")
	}
	trailers := hop.HasToken(r.Header["Te"], "trailers", true)
	hop.Remove(out.Header)
	if upgrade != "" {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", upgrade)
	}
	if trailers {
		out.Header.Set("Te", "trailers")
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // Go's own is not the client's
	}
	// As httputil.ProxyRequest.SetXForwarded.
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	} else {
		out.Header.Del("X-Forwarded-For")
	}
	out.Header.Set("X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		out.Header.Set("X-Forwarded-Proto", "http")
	} else {
		out.Header.Set("X-Forwarded-Proto", "https")
	}
	out.Header.Set(ForwardedHeader, f.node)
	return out
}

// copyResponse writes res to w: its status, headers and body, flushed as
// it comes when it streams (server-sent events, a body of unknown length).
// A body that fails midway aborts the answer, so that the client does not
// take a part for the whole.
func (f *forwarder) copyResponse(w http.ResponseWriter, r *http.Request, res *http.Response) {
	defer res.Body.Close()
	hop.Remove(res.Header)
	h := w.Header()
	for k, vv := range res.Header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	if len(res.Trailer) > 0 {
		names := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			names = append(names, k)
		}
		h.Add("Trailer", strings.Join(names, ", "))
	}
	w.WriteHeader(res.StatusCode)
	mediaType, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	streams := res.ContentLength == -1 || mediaType == "text/event-stream"
	rc := http.NewResponseController(w)
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	for {
		n, rerr := res.Body.Read(*buf)
		if n > 0 {
			if _, err := w.Write((*buf)[:n]); err != nil {
				return // the client went away, or close cut it
			}
			if streams {
				rc.Flush()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if r.Context().Err() == nil && f.ctx.Err() == nil {
				f.log.Warn("vitehost/preview: the session's node failed while it answered", "host", r.Host, "url", r.URL.String(), "err", rerr)
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
	for k, vv := range res.Trailer {
		for _, v := range vv {
			h.Add(http.TrailerPrefix+k, v)
		}
	}
}

// copyBuffers are the buffers of copyResponse: a page load forwarded to
// another node is dozens of responses.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// tunnel completes a WebSocket handshake that the node accepted: it hands
// the 101 to the client on the connection it takes over, and copies bytes
// both ways until either side closes or ctx ends (the client went away,
// or close), then closes both and waits for both directions.
func (f *forwarder) tunnel(ctx context.Context, w http.ResponseWriter, r *http.Request, res *http.Response) {
	back, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		f.log.Warn("vitehost/preview: forward: a 101 without a connection", "host", r.Host, "url", r.URL.String())
		http.Error(w, "bad gateway: the session's node failed", http.StatusBadGateway)
		return
	}
	defer back.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.log.Warn("vitehost/preview: forward: cannot take the client's connection over", "host", r.Host, "err", err)
		http.Error(w, "bad gateway: the connection cannot switch protocols", http.StatusBadGateway)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{}) // the server's timeouts were meant for one request
	stop := context.AfterFunc(ctx, func() {
		conn.Close()
		back.Close()
	})
	defer stop()
	h := w.Header()
	for k, vv := range res.Header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	res.Header, res.Body = h, nil
	if err := res.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst io.WriteCloser, src io.Reader) {
		io.Copy(dst, src)
		conn.Close() // ends the other direction too
		back.Close()
		done <- struct{}{}
	}
	go pipe(back, brw.Reader) // what the client sent after the handshake is buffered there
	go pipe(conn, back)
	<-done
	<-done
}

// notListening reports whether err says that the connection to the node
// could not be made: nothing is there (any more). Errors on an
// established connection are not this kind.
func notListening(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// timedOut reports whether err is a wait for the other node that ran out:
// the transport's ResponseHeaderTimeout (ForwardTimeout), a WebSocket
// handshake's included.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

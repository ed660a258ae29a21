// Package ssrproxy is the http.Handler that puts a front-end dev server behind
// a Go app: plain HTTP goes to the dev server's port, Vite's HMR WebSockets
// (subprotocols vite-hmr and vite-ping) go to its HMR port when it has one,
// and every other WebSocket goes to the dev server's port.
//
// A Go app mounts a Proxy as the catch-all behind its own routes; the browser
// then only ever talks to the Go port and HMR still works, provided the dev
// server tells its client to connect to that port (Vite's server.ws.clientPort).
// What a client sends on Vite's sockets is bounded (Options.MaxViteMessage,
// 1 MiB by default), so that anyone who can open a page cannot make the dev
// server buffer hundreds of megabytes; what the dev server sends is not.
// While the dev server is starting or restarting, page navigations get a small
// page that reloads itself once the dev server answers, and everything else a
// 503, so that Vite's reconnect logic sees a refused handshake and waits.
//
// A target is an http or https URL, or, for a dev server that listens on a
// Unix socket (one in a sandbox without a network), a unix URL whose path is
// the socket: unix:///run/dev/http.sock, as hotfile.UnixURL makes it. The
// proxy then speaks plain HTTP (and WebSocket) over the socket with the
// request's own path and the Host header localhost, which Vite's host check
// accepts; this needs the transport of NewTransport. NewRequest builds a
// request that reaches a target of either kind the way the proxy does.
package ssrproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/closing"
)

// TargetSource gives the URLs a Proxy sends requests to. Targets is called
// once per request and must be cheap: *hotfile.Watcher answers with one
// atomic load. A nil HTTP URL means the dev server is not running; a nil HMR
// URL means HMR shares the HTTP port.
type TargetSource interface {
	Targets() hotfile.Targets
}

// Static returns a TargetSource with fixed URLs, for callers that already
// know where the dev server listens: http or https URLs, or unix URLs
// (hotfile.UnixURL). hmrURL may be nil. The URLs are copied.
func Static(httpURL, hmrURL *url.URL) TargetSource {
	return &staticSource{t: hotfile.Targets{HTTP: cloneURL(httpURL), HMR: cloneURL(hmrURL)}}
}

type staticSource struct{ t hotfile.Targets }

func (s *staticSource) Targets() hotfile.Targets { return s.t }

func cloneURL(u *url.URL) *url.URL {
	if u == nil {
		return nil
	}
	c := *u
	if u.User != nil {
		user := *u.User
		c.User = &user
	}
	return &c
}

// Options configures a Proxy. A nil *Options means the defaults; New copies
// the struct and never modifies it.
type Options struct {
	// KeepHost sends the client's Host header to the dev server. By default
	// the Host is rewritten to the target's (localhost for a Unix socket),
	// so that Vite's allowed-hosts check (403 "Blocked request" for unknown
	// hosts) passes without configuring server.allowedHosts for the public
	// domain.
	KeepHost bool

	// Transport performs the requests, the WebSocket handshakes included; a
	// handshake needs a transport that returns the upgraded connection as
	// the body of a 101 response, as *http.Transport does, and a unix target
	// needs the DialContext of NewTransport. Nil means one transport shared
	// by every Proxy of the process, made by NewTransport. Close does not
	// close its idle connections.
	Transport http.RoundTripper

	// ModifyResponse, if not nil, is called with every response of the dev
	// server, WebSocket handshake answers included, before it is relayed. An
	// error makes the request fail with 502 through ErrorHandler.
	ModifyResponse func(*http.Response) error

	// ErrorHandler, if not nil, answers the requests that could not be
	// relayed. Its error wraps ErrUnavailable (ErrNoTarget is one) when the
	// dev server is not running and ErrClosed after Close. Nil means the
	// default: 503 for those (a page that reloads itself for a browser
	// navigation, a short plain-text reason otherwise), 502 with the error
	// of ModifyResponse, and for any other error 502 with a fixed text and
	// the error in the log (it names addresses and socket paths, which the
	// client need not see).
	ErrorHandler func(http.ResponseWriter, *http.Request, error)

	// OnTraffic, if not nil, is called each time bytes pass through a
	// tunnelled connection (a WebSocket after its handshake), in either
	// direction, from the tunnel's goroutines: a way to tell that a
	// long-lived connection is in use, for an idle timer. It must be cheap
	// and must not block.
	OnTraffic func()

	// MaxViteMessage bounds what a client may send on a vite-hmr or
	// vite-ping WebSocket: the payload of a message, in bytes, whether it
	// comes as one frame or as fragments. A frame that goes over it is not
	// relayed: the dev server's connection closes before any byte of it
	// and the client gets a close with status 1009 (message too big). Zero
	// means DefaultMaxViteMessage; a negative value means no bound. What
	// the dev server sends is never bounded.
	MaxViteMessage int64

	// MaxAppMessage is the same bound for every other WebSocket (the app's
	// own, relayed to the HTTP target). Zero means no bound.
	MaxAppMessage int64

	// Logger receives upstream errors (at Error level) and the requests
	// answered with 503 (at Debug level). Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultMaxViteMessage is the default of Options.MaxViteMessage: 1 MiB.
// Vite's client sends small JSON messages: a ping, vite:invalidate (a
// module path and a reason), vite:forward-console (Vite 8.4+, a console
// line cut at 10,000 characters), and the custom events a project's code
// sends with import.meta.hot.send. The largest of vitehost's own, a page's
// runtime error (vite.Options.ClientErrors: message, stack and page cut at
// 4,000, 16,000 and 2,000 characters) is 122,113 bytes when every
// character of message and stack needs a six-byte JSON escape, 22 KB when
// none does. 1 MiB is eight times the worst of it,
// and keeps what anonymous clients can make Vite's ws library buffer (it
// takes messages up to 100 MiB) to a megabyte a socket.
const DefaultMaxViteMessage = 1 << 20

// Proxy is an http.Handler that relays requests to a dev server. Create it
// with New; its methods may be called from any number of goroutines.
type Proxy struct {
	src          TargetSource
	keepHost     bool
	transport    http.RoundTripper
	modify       func(*http.Response) error
	errorHandler func(http.ResponseWriter, *http.Request, error)
	onTraffic    func()
	maxVite      uint64 // Options.MaxViteMessage; 0 means no bound
	maxApp       uint64 // Options.MaxAppMessage; 0 means no bound
	log          *slog.Logger
	errLog       *log.Logger // ReverseProxy's own messages, at Debug level

	// route caches the ReverseProxy for the last HTTP target seen, so that
	// a request costs no allocation for routing while the target is stable.
	route atomic.Pointer[route]

	// ctx ends with Close: it cancels in-flight requests and handshakes.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.RWMutex // read-locked by every request, locked by Close
	closed  bool
	tunnels map[*tunnel]struct{}
	wg      sync.WaitGroup // ServeHTTP calls in flight and their AfterFuncs

	closeOnce sync.Once
}

// inboundKey is the context key of the request as the Proxy received it.
type inboundKey struct{}

type route struct {
	target *url.URL
	rp     *httputil.ReverseProxy
}

// New returns a Proxy that relays to the targets of src. opts may be nil.
func New(src TargetSource, opts *Options) *Proxy {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Transport == nil {
		o.Transport = sharedTransport()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch {
	case o.MaxViteMessage == 0:
		o.MaxViteMessage = DefaultMaxViteMessage
	case o.MaxViteMessage < 0:
		o.MaxViteMessage = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		src:       src,
		keepHost:  o.KeepHost,
		transport: o.Transport,
		modify:    refusals(o.ModifyResponse),
		onTraffic: o.OnTraffic,
		maxVite:   uint64(o.MaxViteMessage),
		maxApp:    uint64(max(o.MaxAppMessage, 0)),
		log:       o.Logger,
		ctx:       ctx,
		cancel:    cancel,
		tunnels:   make(map[*tunnel]struct{}),
	}
	// ReverseProxy logs mid-body copy errors itself; most are a browser
	// that stopped loading a page, so they go to Debug.
	p.errLog = slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug)
	p.errorHandler = o.ErrorHandler
	if p.errorHandler == nil {
		p.errorHandler = p.defaultErrorHandler
	}
	return p
}

// ServeHTTP relays r to the dev server: a WebSocket handshake whose
// Sec-WebSocket-Protocol lists vite-hmr or vite-ping to the HMR target when
// there is one, every other request to the HTTP target. The request path and
// query are kept; an http target's own path is joined in front of the path
// (a unix target's path is its socket).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.enter() {
		p.fail(w, r, ErrClosed)
		return
	}
	defer p.wg.Done()

	// Close cancels what is in flight: a streamed response (SSE) or a
	// handshake would otherwise hold Close for as long as it lasts, and so
	// would a write to a client that stopped reading.
	ctx, done := closing.Bind(r, w, p.ctx, &p.wg, closeWriteTimeout)
	defer done()
	// ReverseProxy hands its ErrorHandler the outbound request (rewritten
	// URL, probe header gone); the context keeps the inbound one for it.
	r = r.WithContext(context.WithValue(ctx, inboundKey{}, r))

	t := p.src.Targets()
	if isUpgrade(r.Header) {
		p.serveUpgrade(w, r, t)
		return
	}
	if t.HTTP == nil {
		p.fail(w, r, ErrNoTarget)
		return
	}
	r, err := withoutEmptyBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.reverseProxy(t.HTTP).ServeHTTP(w, r)
}

// Close ends every tunnelled WebSocket (with a 1001 "going away" close frame
// to the client when the tunnel is between frames), cancels the requests in
// flight, and returns when every ServeHTTP call and goroutine of the Proxy has
// ended; a client that neither reads nor answers the close frame holds it
// about 2 s at most. Requests that arrive later get 503. Nothing in it can
// fail, so it reports nothing, like httptest.Server.Close. It is safe to call
// more than once.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		tunnels := make([]*tunnel, 0, len(p.tunnels))
		for t := range p.tunnels {
			tunnels = append(tunnels, t)
		}
		p.mu.Unlock()
		p.cancel()
		for _, t := range tunnels {
			t.shutdown()
		}
		p.wg.Wait()
	})
}

// Tunnels returns the number of WebSocket tunnels open through the Proxy,
// for metrics.
func (p *Proxy) Tunnels() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.tunnels)
}

// enter counts a ServeHTTP call in flight, unless the Proxy is closed.
func (p *Proxy) enter() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// track registers a tunnel for Close, unless the Proxy is closed.
func (p *Proxy) track(t *tunnel) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.tunnels[t] = struct{}{}
	return true
}

func (p *Proxy) untrack(t *tunnel) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.tunnels, t)
}

// reverseProxy returns the ReverseProxy for target, reusing the last one
// while the target stays the same.
func (p *Proxy) reverseProxy(target *url.URL) *httputil.ReverseProxy {
	if c := p.route.Load(); c != nil && (c.target == target || *c.target == *target) {
		return c.rp
	}
	up := upstreamOf(target)
	rp := &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { p.rewrite(pr, up) },
		Transport:      p.transport,
		BufferPool:     copyBuffers,
		ModifyResponse: p.modify,
		ErrorHandler:   p.handleError,
		ErrorLog:       p.errLog,
		// FlushInterval stays 0: ReverseProxy already flushes every write of
		// a response of unknown length or of type text/event-stream, which
		// is what streams; a module with a Content-Length goes out in full
		// buffers.
	}
	p.route.Store(&route{target: target, rp: rp})
	return rp
}

// rewrite points the outbound request at up; it may replace pr.Out. The same
// rules serve plain requests (through ReverseProxy) and WebSocket handshakes.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest, up upstream) {
	up.apply(pr) // joins the target's path in front; Host becomes the target's
	pr.SetXForwarded()
	if p.keepHost {
		pr.Out.Host = pr.In.Host
	}
	pr.Out.Header.Del(probeHeader)
}

// withoutEmptyBody returns r without a body when r is a GET or HEAD whose
// body is empty, so that it goes out without Transfer-Encoding: chunked:
// Vite answers 400 to a GET that announces a body
// (https://github.com/litestar-org/litestar-vite/issues/242). ReverseProxy
// drops a body of length 0 itself; this covers a client that sent an empty
// chunked body, whose length is unknown until the first read.
func withoutEmptyBody(r *http.Request) (*http.Request, error) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || r.ContentLength != -1 || r.Body == nil {
		return r, nil
	}
	var b [1]byte
	n, err := io.ReadFull(r.Body, b[:])
	out := *r
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		out.Body = http.NoBody
		out.ContentLength = 0
		out.TransferEncoding = nil
	case n == 1:
		out.Body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(b[:]), r.Body), Closer: r.Body}
	default:
		return r, fmt.Errorf("vitehost/ssrproxy: reading the request body: %w", err)
	}
	return &out, nil
}

type prefixedBody struct {
	io.Reader
	io.Closer
}

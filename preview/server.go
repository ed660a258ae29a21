package preview

import (
	"context"
	"io"
	"net"
	"net/http"
	"time"
)

// This file is the HTTP server that an Internet-facing preview service
// needs in front of Router and API. With net/http's defaults nothing bounds
// what an anonymous client holds open: idle keep-alive connections stay
// for ever, a body trickled one byte at a time holds its handler, a client
// that stops reading holds its response, and enough connections exhaust
// the process's file descriptors, after which /healthz and every preview
// stop answering (issue 19).

// Defaults of ServerOptions.
const (
	// DefaultReadHeaderTimeout bounds the reading of a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultBodyTimeout bounds the reading of a request's body: a
	// 35 MiB update at 1 MB/s fits.
	DefaultBodyTimeout = 2 * time.Minute
	// DefaultWriteTimeout bounds each write of a response.
	DefaultWriteTimeout = time.Minute
	// DefaultConnIdleTimeout is how long a keep-alive connection may wait
	// for its next request.
	DefaultConnIdleTimeout = time.Minute
	// DefaultMaxConns bounds the connections a Server holds at once,
	// unless half the process's file descriptor limit is lower.
	DefaultMaxConns = 8192
)

// ServerOptions configures NewServer. Zero fields take the defaults named
// beside them.
type ServerOptions struct {
	// ReadHeaderTimeout bounds the reading of a request's headers, from
	// the moment the connection opens or its previous response ended.
	// Zero means DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// BodyTimeout bounds the reading of a request's body, from the moment
	// its handler starts reading it (or starts, for a body it never
	// reads); a body not read to its end by then fails, and its
	// connection closes. Zero means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// WriteTimeout bounds each write of a response, not the response as a
	// whole: a client that stops reading is cut off, while an event stream
	// or a long create that keeps its client reading is not. WebSockets
	// are not bounded by it once upgraded. Zero means DefaultWriteTimeout.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request before it is closed. Zero means DefaultConnIdleTimeout.
	IdleTimeout time.Duration
	// MaxConns bounds the connections the Server holds at once, WebSockets
	// included. A connection that comes when MaxConns are open takes the
	// place of the one that has waited longest without a request in
	// progress (idle keep-alive, or headers not complete yet); when every
	// connection is serving a request or a WebSocket, it is closed at once.
	// Zero means DefaultMaxConns, or half the soft RLIMIT_NOFILE when that
	// is lower: each proxied WebSocket holds a second descriptor, to its
	// dev server.
	MaxConns int
}

// Server is an http.Server with the bounds a public preview service needs:
// the timeouts of ServerOptions and a cap on its connections. Its
// Handler is usually m.Router(api).
type Server struct {
	// HTTP is the underlying server. Its fields other than ConnState,
	// which the connection cap uses, may be changed before Serve (TLSConfig,
	// BaseContext, ErrorLog); Serve and Shutdown go through Server.
	HTTP *http.Server

	conns *connLimiter
}

// NewServer returns a Server that serves h with the bounds of opts (nil
// means the defaults). Serve it with Server.Serve: a listener passed to
// HTTP.Serve directly would bypass the connection cap.
func NewServer(h http.Handler, opts *ServerOptions) *Server {
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultConnIdleTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
		if n := fileLimit() / 2; n > 0 && n < uint64(o.MaxConns) {
			o.MaxConns = int(n)
		}
	}
	conns := newConnLimiter(o.MaxConns)
	return &Server{
		HTTP: &http.Server{
			Handler:           boundRequests(h, o.BodyTimeout, o.WriteTimeout),
			ReadHeaderTimeout: o.ReadHeaderTimeout,
			IdleTimeout:       o.IdleTimeout,
			// ReadTimeout and WriteTimeout stay zero: they bound a request
			// as a whole (a read deadline that passes while a handler runs
			// even cancels its context), which would cut the event streams
			// and every create that waits for npm.
			ConnState: conns.track,
		},
		conns: conns,
	}
}

// Serve accepts connections on ln, at most ServerOptions.MaxConns at once
// over every listener of s, and serves them until Shutdown or Close. Like
// http.Server.Serve it always returns a non-nil error. For TLS, use
// ServeTLS: a TLS listener passed here would hide the connections' TLS
// state from the handlers.
func (s *Server) Serve(ln net.Listener) error {
	return s.HTTP.Serve(&limitListener{Listener: ln, lim: s.conns})
}

// ServeTLS is Serve over TLS with the certificate and key in the named
// files (empty when HTTP.TLSConfig holds them), as
// http.Server.ServeTLS, HTTP/2 included.
func (s *Server) ServeTLS(ln net.Listener, certFile, keyFile string) error {
	return s.HTTP.ServeTLS(&limitListener{Listener: ln, lim: s.conns}, certFile, keyFile)
}

// Shutdown stops s gracefully, as http.Server.Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error { return s.HTTP.Shutdown(ctx) }

// Close closes s's listeners and connections, as http.Server.Close does.
func (s *Server) Close() error { return s.HTTP.Close() }

// boundRequests gives each request of h a deadline for its body and one
// for each write of its response (ServerOptions.BodyTimeout and
// WriteTimeout).
func boundRequests(h http.Handler, bodyTimeout, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody && rc.SetReadDeadline(time.Now().Add(bodyTimeout)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, timeout: bodyTimeout}
		}
		// The deadline is set again after the handler returns, before the
		// server writes what it left in the buffer: a handler may have
		// worked on for longer than the timeout after its last write.
		pw := &progressWriter{ResponseWriter: w, rc: rc, timeout: writeTimeout}
		pw.extend()
		h.ServeHTTP(pw, r)
		pw.extend()
	})
}

// deadlineBody is a request body read under a deadline. The deadline runs
// from the handler's start, for a body that the handler never reads (the
// server reads up to 256 KiB of it after the handler), and again from the
// first read, so that a handler may wait before it reads (the API waits
// for its share of Limits.MaxBytesInFlight). It is lifted once the body
// has been read to its end: the server then watches the connection for
// the client going away, and a deadline passing there would cancel the
// request's context while its handler still works.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	reading bool // the first read came
	lifted  bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.reading {
		b.reading = true
		b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// progressWriter is a ResponseWriter whose every write must end within
// timeout: a response goes on for as long as its client reads it.
type progressWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

// extend gives the next write the whole timeout. On a hijacked
// connection it does nothing (the WebSocket tunnel owns its deadlines).
func (w *progressWriter) extend() { w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) }

func (w *progressWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(p)
}

// FlushError flushes within the write timeout; http.ResponseController
// calls it.
func (w *progressWriter) FlushError() error {
	w.extend()
	return w.rc.Flush()
}

// Flush is FlushError for callers that assert http.Flusher.
func (w *progressWriter) Flush() { w.FlushError() }

// Unwrap lets http.ResponseController reach the connection (WebSocket
// tunnels hijack it).
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

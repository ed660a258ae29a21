package ssrproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
)

var (
	// ErrUnavailable is wrapped by the errors that mean the dev server is not
	// running: there is no target, or nothing accepts connections at it (it
	// is starting or restarting). The default ErrorHandler answers them with
	// 503.
	ErrUnavailable = errors.New("vitehost/ssrproxy: dev server unavailable")

	// ErrNoTarget means the TargetSource has no URL for the request; it
	// wraps ErrUnavailable.
	ErrNoTarget = fmt.Errorf("%w: no target", ErrUnavailable)

	// ErrClosed is the error of requests that arrive at, or are cut by, a
	// closed Proxy. The default ErrorHandler answers it with 503.
	ErrClosed = errors.New("vitehost/ssrproxy: proxy closed")
)

// handleError is ReverseProxy's ErrorHandler: it names the failure, then
// lets the configured handler answer.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if in, ok := r.Context().Value(inboundKey{}).(*http.Request); ok && in != r {
		r = in.WithContext(r.Context())
	}
	p.fail(w, r, p.classify(err))
}

// fail answers a request that could not be relayed.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.errorHandler(w, r, err)
}

// classify wraps err in the sentinel that says what happened.
func (p *Proxy) classify(err error) error {
	switch {
	case errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed):
		return err
	case p.ctx.Err() != nil && errors.Is(err, context.Canceled):
		return ErrClosed
	case notListening(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// notListening reports whether err says that the connection to the dev
// server could not be made: the server is not there (yet, or any more).
// Errors on an established connection are not this kind: they are 502s.
func notListening(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// defaultErrorHandler answers 503 while the dev server is not running and
// 502 for any other failure.
func (p *Proxy) defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		p.log.Debug("vitehost/ssrproxy: dev server unavailable", "method", r.Method, "url", r.URL.String(), "err", err)
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Retry-After", "1")
		if isNavigation(r) {
			writeBootPage(w)
			return
		}
		reason := "dev server is not running (starting or restarting)"
		if errors.Is(err, ErrClosed) {
			reason = "proxy is shutting down"
		}
		http.Error(w, reason, http.StatusServiceUnavailable)
	case r.Context().Err() != nil:
		// The client went away, or Close cut the request: nobody reads the
		// answer, and nothing went wrong at the dev server.
		p.log.Debug("vitehost/ssrproxy: request canceled", "method", r.Method, "url", r.URL.String(), "err", err)
		w.WriteHeader(http.StatusBadGateway)
	default:
		p.log.Error("vitehost/ssrproxy: upstream error", "method", r.Method, "url", r.URL.String(), "err", err)
		var refused *refusal
		if errors.As(err, &refused) {
			http.Error(w, "bad gateway: "+err.Error(), http.StatusBadGateway)
			return
		}
		// A transport's error names addresses and socket paths: the client
		// may be anyone who reaches the proxy, and the log has it.
		http.Error(w, "bad gateway: the dev server's answer failed", http.StatusBadGateway)
	}
}

// refusal is an error of Options.ModifyResponse: the caller's own words,
// which the default ErrorHandler may show the client.
type refusal struct{ err error }

func (e *refusal) Error() string { return e.err.Error() }
func (e *refusal) Unwrap() error { return e.err }

// refusals wraps the errors of modify, when there is one, in *refusal.
func refusals(modify func(*http.Response) error) func(*http.Response) error {
	if modify == nil {
		return nil
	}
	return func(res *http.Response) error {
		if err := modify(res); err != nil {
			return &refusal{err}
		}
		return nil
	}
}

package preview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/vitehost/vitehost/ssrproxy"
)

// This file is where a node of several sends a request for a session that
// another node runs to that node: preview pages, modules and HMR sockets
// (the router) and API calls alike, through one ssrproxy.Proxy per node.

// ForwardedHeader marks a request that a node forwarded to the node that
// runs its session; its value is the sender's NodeID. A node never forwards
// such a request again: when it does not run the session, it answers 404.
const ForwardedHeader = "X-Vitehost-Forwarded"

// closedHeader marks the 503 of a closed Manager, so that a node forwarding
// to it takes the session over at once instead of relaying the 503.
const closedHeader = "X-Vitehost-Closed"

// Reasons a forward wrote nothing: the caller decides what comes next.
var (
	// errOwnerGone: nothing accepts connections at the node's address, or
	// the node is shutting down.
	errOwnerGone = errors.New("vitehost/preview: the session's node is gone")
	// errOwnerSilent: the node accepted the connection but did not answer
	// within ForwardTimeout (it hangs, or it is stopped).
	errOwnerSilent = errors.New("vitehost/preview: the session's node does not answer")
	// errOwnerClosed is a forward answered by a Manager that is closing.
	errOwnerClosed = errors.New("vitehost/preview: the session's node is shutting down")
)

// reach finds where session id is for the request r (resolve) and, when
// another node runs it, forwards r there. It returns the location of a
// session of this node (or, without adopt, of a record that no live node
// owns), or forwarded true when another node has answered the request, or
// the error to answer. A node that does not answer a forward counts as gone
// once its lease has run out, and resolve then takes the session over.
// body is the request's body, read beforehand so that it can be sent again;
// nil streams the request's own body (a request that then cannot be sent
// twice).
func (m *Manager) reach(w http.ResponseWriter, r *http.Request, id string, body []byte, adopt bool) (loc location, forwarded bool, err error) {
	wasForwarded := r.Header.Get(ForwardedHeader) != ""
	gone := ""
	for range maxAttempts {
		loc, err := m.resolve(r.Context(), id, adopt, gone)
		switch {
		case err != nil:
			return location{}, false, err
		case !loc.remote:
			return loc, false, nil
		case wasForwarded:
			// The sender thought this node runs the session; it does not.
			return location{}, false, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		err = m.forward(w, r, loc.rec.OwnerAddr, body)
		switch {
		case err == nil:
			return location{}, true, nil
		case errors.Is(err, errOwnerGone):
		case errors.Is(err, errOwnerSilent) && m.awaitLeaseEnd(r.Context(), loc.rec.Owner):
		case errors.Is(err, errOwnerSilent):
			return location{}, false, fmt.Errorf("%w: session %s: node %s holds its lease but does not answer", ErrUnavailable, id, loc.rec.Owner)
		default:
			return location{}, false, err
		}
		m.log.Warn("vitehost/preview: the session's node is gone; taking the session over",
			"session", id, "owner", loc.rec.Owner, "addr", loc.rec.OwnerAddr, "err", err)
		if body == nil && r.Body != nil && r.Body != http.NoBody {
			return location{}, false, fmt.Errorf("%w: session %s: its node failed while the request's body was sent", ErrUnavailable, id)
		}
		gone = loc.rec.Owner
	}
	return location{}, false, errMoving(id)
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

// forwarder returns the proxy to the node at addr, or nil once the Manager
// is closed.
func (m *Manager) forwarder(addr string) *ssrproxy.Proxy {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	if p := m.forwarders[addr]; p != nil {
		return p
	}
	p := ssrproxy.New(ssrproxy.Static(&url.URL{Scheme: "http", Host: addr}, nil), &ssrproxy.Options{
		// The owner's router finds the session by the preview host name.
		KeepHost:  true,
		Transport: m.fwdTransport,
		Logger:    m.log,
		ModifyResponse: func(res *http.Response) error {
			if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get(closedHeader) != "" {
				return errOwnerClosed
			}
			return nil
		},
		ErrorHandler: m.forwardError,
	})
	m.forwarders[addr] = p
	return p
}

// forwardWriter is the ResponseWriter a forward hands the proxy: the
// proxy's ErrorHandler (forwardError) leaves in it why the node could not
// serve the request, when it wrote nothing, and forward returns that.
type forwardWriter struct {
	http.ResponseWriter
	down error
}

// Unwrap lets http.ResponseController reach the connection (WebSocket
// tunnels hijack it).
func (w *forwardWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// forward relays r to the node at addr, with body (when not nil) as its
// body. It returns errOwnerGone or errOwnerSilent, having written nothing
// to w, when the node cannot serve the request, and ErrClosed when this
// Manager is closed.
func (m *Manager) forward(w http.ResponseWriter, r *http.Request, addr string, body []byte) error {
	p := m.forwarder(addr)
	if p == nil {
		return ErrClosed
	}
	out := r.Clone(r.Context())
	out.Header.Set(ForwardedHeader, m.nodeID)
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.TransferEncoding = nil
	}
	fw := &forwardWriter{ResponseWriter: w}
	p.ServeHTTP(fw, out)
	return fw.down
}

// forwardError is the forwarders' ErrorHandler. When the owner cannot serve
// the request it writes nothing and leaves the reason for forward.
func (m *Manager) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	fw, _ := w.(*forwardWriter)
	switch {
	case fw != nil && r.Context().Err() == nil && (errors.Is(err, errOwnerClosed) || errors.Is(err, ssrproxy.ErrUnavailable) && !errors.Is(err, ssrproxy.ErrNoTarget)):
		fw.down = fmt.Errorf("%w: %w", errOwnerGone, err)
	case fw != nil && r.Context().Err() == nil && timedOut(err):
		fw.down = fmt.Errorf("%w: %w", errOwnerSilent, err)
	case errors.Is(err, ssrproxy.ErrClosed):
		w.Header().Set(closedHeader, "1")
		http.Error(w, "the service is shutting down", http.StatusServiceUnavailable)
	case r.Context().Err() != nil:
		w.WriteHeader(http.StatusBadGateway) // the client went away
	default:
		// The cause names the node's internal address: it is for the log.
		m.log.Warn("vitehost/preview: forward to the session's node failed", "host", r.Host, "url", r.URL.String(), "err", err)
		http.Error(w, "bad gateway: the session's node failed", http.StatusBadGateway)
	}
}

// timedOut reports whether err is a wait for the other node that ran out:
// the transport's ResponseHeaderTimeout, or a WebSocket handshake's.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

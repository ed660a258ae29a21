package preview

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/vitehost/vitehost/ssrproxy"
)

// This file is where a node of several sends a request for a session that
// another node runs to that node: preview pages, modules and HMR sockets
// (the router) and API calls alike, through one ssrproxy.Proxy per node. A
// node that cannot be reached has its session taken over (takeover.go).

// ForwardedHeader marks a request that a node forwarded to the node that
// runs its session; its value is the sender's NodeID. A node never forwards
// such a request again: when it does not run the session, it answers 404.
const ForwardedHeader = "X-Vitehost-Forwarded"

// closedHeader marks the 503 of a closed Manager, so that a node forwarding
// to it takes the session over at once instead of relaying the 503.
const closedHeader = "X-Vitehost-Closed"

// errOwnerClosed is a forward answered by a Manager that is closing.
var errOwnerClosed = errors.New("vitehost/preview: the session's node is shutting down")

// forwardState carries, in a forwarded request's context, the reason the
// owner node could not be reached, for dispatch to read.
type forwardState struct{ down error }

type forwardKey struct{}

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

// ownerGone reports whether a forward failed because the owner node is not
// there: nothing accepts connections at its address, or it is closing. An
// error on an established connection is not this: the node may still run
// the session.
func ownerGone(err error) bool {
	return errors.Is(err, errOwnerClosed) || errors.Is(err, ssrproxy.ErrUnavailable) && !errors.Is(err, ssrproxy.ErrNoTarget)
}

// forwardError is the forwarders' ErrorHandler. When the owner is gone it
// writes nothing and leaves the reason for dispatch, which takes over.
func (m *Manager) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	if st, ok := r.Context().Value(forwardKey{}).(*forwardState); ok && ownerGone(err) {
		st.down = err
		return
	}
	switch {
	case errors.Is(err, ssrproxy.ErrClosed):
		w.Header().Set(closedHeader, "1")
		http.Error(w, "the service is shutting down", http.StatusServiceUnavailable)
	case r.Context().Err() != nil:
		w.WriteHeader(http.StatusBadGateway) // the client went away
	default:
		m.log.Warn("vitehost/preview: forward to the session's node failed", "host", r.Host, "url", r.URL.String(), "err", err)
		http.Error(w, "bad gateway: the session's node failed: "+err.Error(), http.StatusBadGateway)
	}
}

// forward relays r to the node at addr, with body (when not nil) as its
// body. It returns the reason when the node is gone, and then has written
// nothing to w.
func (m *Manager) forward(w http.ResponseWriter, r *http.Request, addr string, body []byte) error {
	p := m.forwarder(addr)
	if p == nil {
		return ErrClosed
	}
	st := &forwardState{}
	out := r.Clone(context.WithValue(r.Context(), forwardKey{}, st))
	out.Header.Set(ForwardedHeader, m.nodeID)
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		out.TransferEncoding = nil
	}
	p.ServeHTTP(w, out)
	return st.down
}

// route is what dispatch needs to serve a request for one session.
type route struct {
	id string
	// body is the request's body, read beforehand so that it can be sent
	// again after a failed forward; nil streams the request's own body.
	body []byte
	// adopt: take the session over (start it here) when its node is gone.
	// Without it the record is only claimed (a delete needs no dev server).
	adopt bool
	// here serves the request on this node: s runs the session, or is nil
	// when this node has only a record to go by (or none).
	here func(s *session)
	// fail answers an error.
	fail func(error)
}

// dispatch serves a request for a session that does not run here (or may
// not): it asks the store where the session runs and forwards the request
// there; when that node is gone, it takes the session over and serves the
// request here, or forwards it to the node that took it over first.
func (m *Manager) dispatch(w http.ResponseWriter, r *http.Request, rt route) {
	forwarded := r.Header.Get(ForwardedHeader) != ""
	for range maxAttempts {
		p, err := m.find(r.Context(), rt.id)
		switch {
		case err != nil:
			rt.fail(err)
			return
		case p.s != nil:
			rt.here(p.s)
			return
		case p.orphan && !rt.adopt:
			rt.here(nil)
			return
		case p.orphan:
			if err := m.takeover(r.Context(), p.rec); err != nil && !errors.Is(err, errLost) {
				rt.fail(err)
				return
			}
			continue
		case !p.remote || forwarded:
			// The sender thought this node runs the session; it does not.
			rt.fail(ErrNotFound)
			return
		}
		down := m.forward(w, r, p.rec.OwnerAddr, rt.body)
		if down == nil {
			return
		}
		if errors.Is(down, ErrClosed) {
			rt.fail(down)
			return
		}
		m.log.Warn("vitehost/preview: the session's node is gone; taking the session over",
			"session", rt.id, "owner", p.rec.Owner, "addr", p.rec.OwnerAddr, "err", down)
		take := m.claim
		if rt.adopt {
			take = m.takeover
		}
		if err := take(r.Context(), p.rec); err != nil && !errors.Is(err, errLost) {
			rt.fail(err)
			return
		}
	}
	rt.fail(errMoving(rt.id))
}

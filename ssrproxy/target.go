package ssrproxy

// Where a request goes. A target is an http or https URL, the dev server's
// address with an optional base path, or a unix URL whose path is the dev
// server's Unix socket (hotfile.UnixURL). *http.Transport knows only host
// names, so a request to a socket goes out as an http request to a host name
// that stands for the socket, and its context tells the dialer of
// NewTransport which socket to dial:
//
//   - the host name is derived from the socket path and differs for every
//     socket, so the transport's pool, keyed by host, never hands a
//     connection to one socket to a request for another;
//   - the dialer dials a socket only for a request that carries one in its
//     context, which only this package puts there, so a URL that merely looks
//     like a socket's (from a client, a redirect) cannot make the transport
//     dial a local socket; such a URL names a host under .invalid, which never
//     resolves (RFC 6761).

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/vitehost/vitehost/hotfile"
)

const (
	// socketHostSuffix ends the host name that stands for a Unix socket.
	socketHostSuffix = ".unix.invalid"

	// socketRequestHost is the Host header of a request to a Unix socket:
	// Vite's host check (403 "Blocked request") accepts localhost without
	// server.allowedHosts.
	socketRequestHost = "localhost"
)

// socketKey is the context key of the Unix socket an outbound request is for.
type socketKey struct{}

// upstream is where the requests for one target go.
type upstream struct {
	url    *url.URL // the URL the transport is asked for
	socket string   // the Unix socket's path, or "" for an address
}

// upstreamOf returns where the requests for target go.
func upstreamOf(target *url.URL) upstream {
	if target.Scheme != hotfile.UnixScheme {
		return upstream{url: target}
	}
	return upstream{
		url:    &url.URL{Scheme: "http", Host: socketHost(target.Path)},
		socket: target.Path,
	}
}

// socketHost returns the host name that stands for the Unix socket at path:
// its bytes in hex, so that no two sockets share one.
func socketHost(path string) string {
	return hex.EncodeToString([]byte(path)) + socketHostSuffix
}

// apply points pr.Out at u: the URL becomes u's, with u's path joined in
// front of the request's path and the query kept, and the Host header that
// of u's URL, or localhost for a socket.
func (u upstream) apply(pr *httputil.ProxyRequest) {
	pr.SetURL(u.url)
	if u.socket != "" {
		pr.Out = pr.Out.WithContext(context.WithValue(pr.Out.Context(), socketKey{}, u.socket))
		pr.Out.Host = socketRequestHost
	}
}

// dialContext returns a DialContext that dials addr with d, or the Unix
// socket of a request to a unix target (see upstream).
func dialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if path, ok := ctx.Value(socketKey{}).(string); ok {
			// Only for the host the request was made for: a context that
			// reaches another dial (a proxy in between) does not redirect it.
			if host, _, err := net.SplitHostPort(addr); err == nil && host == socketHost(path) {
				return d.DialContext(ctx, "unix", path)
			}
		}
		return d.DialContext(ctx, network, addr)
	}
}

// NewRequest returns a request for ref, a path with an optional query such
// as "/src/main.tsx?t=1", to the dev server at target, for an http.Client
// whose transport NewTransport made. The request goes where the Proxy would
// send it: target's path is joined in front of ref's, and for a unix target
// (hotfile.UnixURL) the transport dials the socket and the Host header is
// localhost. Code beside a Proxy (a readiness probe, a warm-up) reaches a dev
// server through it whatever kind of target it has.
func NewRequest(ctx context.Context, method string, target *url.URL, ref string, body io.Reader) (*http.Request, error) {
	if target == nil {
		return nil, errors.New("vitehost/ssrproxy: NewRequest: no target")
	}
	req, err := http.NewRequestWithContext(ctx, method, ref, body)
	if err != nil {
		return nil, fmt.Errorf("vitehost/ssrproxy: NewRequest: %w", err)
	}
	if req.URL.Scheme != "" || req.URL.Host != "" || !strings.HasPrefix(req.URL.Path, "/") {
		return nil, fmt.Errorf("vitehost/ssrproxy: NewRequest: %q is not an absolute path", ref)
	}
	pr := &httputil.ProxyRequest{In: req, Out: req}
	upstreamOf(target).apply(pr)
	return pr.Out, nil
}

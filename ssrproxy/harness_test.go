package ssrproxy_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
)

// deadline bounds every wait of the tests; nothing is expected to take it.
const deadline = 15 * time.Second

// serve puts a new Proxy behind an httptest server. The Proxy is closed
// before the server, so that the server does not wait for tunnels.
func serve(t *testing.T, src ssrproxy.TargetSource, opts *ssrproxy.Options) (*ssrproxy.Proxy, *httptest.Server) {
	t.Helper()
	p := ssrproxy.New(src, opts)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { p.Close() })
	return p, srv
}

// upstream starts a stand-in dev server.
func upstream(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// refusedURL is an address where nothing listens: a dev server that is not
// running.
func refusedURL(t *testing.T) *url.URL {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return mustURL(t, "http://"+addr)
}

// dialWS opens a WebSocket with a deadline.
func dialWS(t *testing.T, rawURL string, h http.Header) (*testenv.WSConn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, res, err := testenv.DialWebSocket(ctx, rawURL, h)
	if c != nil {
		t.Cleanup(func() { c.Close() })
		c.Conn.SetDeadline(time.Now().Add(deadline))
	}
	return c, res, err
}

// protocols is a Sec-WebSocket-Protocol header, or none for "".
func protocols(p string) http.Header {
	h := http.Header{}
	if p != "" {
		h.Set("Sec-WebSocket-Protocol", p)
	}
	return h
}

// get sends a request and returns the response with its body read.
func get(t *testing.T, c *http.Client, method, rawURL string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	require.NoError(t, err)
	for k, vv := range h {
		req.Header[k] = vv
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// logBuffer collects the records of a text slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// wsEcho is a stand-in server for WebSockets: it accepts with the first
// subprotocol offered, sends "<name> <request URI>", then echoes frames
// until the client closes. Plain requests get "<name>".
func wsEcho(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			io.WriteString(w, name)
			return
		}
		proto, _, _ := strings.Cut(r.Header.Get("Sec-WebSocket-Protocol"), ",")
		c, err := testenv.AcceptWebSocket(w, r, strings.TrimSpace(proto), nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.Conn.SetDeadline(time.Now().Add(deadline))
		if c.WriteText(name+" "+r.URL.RequestURI()) != nil {
			return
		}
		for {
			op, p, err := c.ReadFrame()
			if err != nil {
				return
			}
			if c.WriteFrame(op, p) != nil || op == testenv.OpClose {
				return
			}
		}
	})
}

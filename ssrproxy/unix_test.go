package ssrproxy_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
)

// socketDir returns a new directory for Unix sockets. Not t.TempDir: a
// socket path must fit in 108 bytes, and subtest names make those long.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ssrproxy-sock-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serveUnix serves h on a new Unix socket at path until the test ends.
func serveUnix(t *testing.T, path string, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		assert.ErrorIs(t, <-served, http.ErrServerClosed)
	})
}

// devServer is a stand-in dev server for sockets: plain requests get
// "<name> <Host> <request URI> <X-Forwarded-Host>", WebSockets wsEcho's.
func devServer(name string) http.Handler {
	ws := wsEcho(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			ws.ServeHTTP(w, r)
			return
		}
		fmt.Fprintf(w, "%s %s %s %s", name, r.Host, r.URL.RequestURI(), r.Header.Get("X-Forwarded-Host"))
	})
}

// A dev server in a sandbox listens on Unix sockets, one for HTTP and one for
// HMR: pages, modules and the app's WebSockets reach the first, vite-hmr and
// vite-ping the second, each with its path and query as the browser sent
// them, and with Host localhost, which Vite accepts.
func TestUnixTargets(t *testing.T) {
	dir := socketDir(t)
	httpSock, hmrSock := filepath.Join(dir, "http.sock"), filepath.Join(dir, "hmr.sock")
	serveUnix(t, httpSock, devServer("http"))
	serveUnix(t, hmrSock, devServer("hmr"))
	src := ssrproxy.Static(hotfile.UnixURL(httpSock), hotfile.UnixURL(hmrSock))

	t.Run("HTTP", func(t *testing.T) {
		_, srv := serve(t, src, nil)
		host := mustURL(t, srv.URL).Host
		for _, uri := range []string{"/", "/src/main.tsx?import&t=1", "/@fs/x%20y.js?v=a%2Bb"} {
			res, body := get(t, srv.Client(), "GET", srv.URL+uri, nil)
			assert.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, "http localhost "+uri+" "+host, body)
		}
	})

	t.Run("KeepHost", func(t *testing.T) {
		_, srv := serve(t, src, &ssrproxy.Options{KeepHost: true})
		host := mustURL(t, srv.URL).Host
		_, body := get(t, srv.Client(), "GET", srv.URL+"/x?y", nil)
		assert.Equal(t, "http "+host+" /x?y "+host, body)
	})

	t.Run("WebSockets", func(t *testing.T) {
		_, srv := serve(t, src, nil)
		tests := []struct{ protocol, want string }{
			{"vite-hmr", "hmr"},
			{"vite-ping", "hmr"},
			{"", "http"},           // the app's own socket
			{"graphql-ws", "http"}, // likewise
		}
		for _, tt := range tests {
			c, res, err := dialWS(t, srv.URL+"/hmr?token=a%2Bb&x=1", protocols(tt.protocol))
			require.NoError(t, err, tt.protocol)
			assert.Equal(t, tt.protocol, res.Header.Get("Sec-WebSocket-Protocol"))
			msg, err := c.ReadMessage()
			require.NoError(t, err)
			assert.Equal(t, tt.want+" /hmr?token=a%2Bb&x=1", string(msg), "%q goes to the %s socket, query kept", tt.protocol, tt.want)
			require.NoError(t, c.WriteText("ping over "+tt.want))
			msg, err = c.ReadMessage()
			require.NoError(t, err)
			assert.Equal(t, "ping over "+tt.want, string(msg))
			require.NoError(t, c.WriteClose(1000, ""))
			_, err = c.ReadMessage()
			var closed *testenv.CloseError
			require.ErrorAs(t, err, &closed)
			assert.Equal(t, uint16(1000), closed.Code)
		}
	})
}

// Proxies that share a transport share its pool of idle connections: a
// connection to one socket must never carry a request for another.
func TestUnixTargetsKeepTheirOwnConnections(t *testing.T) {
	dir := socketDir(t)
	transport := ssrproxy.NewTransport()
	t.Cleanup(transport.CloseIdleConnections)
	var urls []string
	for _, name := range []string{"a", "b", "c"} {
		sock := filepath.Join(dir, name+".sock")
		serveUnix(t, sock, devServer(name))
		_, srv := serve(t, ssrproxy.Static(hotfile.UnixURL(sock), nil), &ssrproxy.Options{Transport: transport})
		urls = append(urls, srv.URL)
	}
	tcp := upstream(t, devServer("tcp"))
	_, srv := serve(t, ssrproxy.Static(mustURL(t, tcp.URL), nil), &ssrproxy.Options{Transport: transport})
	urls = append(urls, srv.URL)

	want := []string{"a localhost", "b localhost", "c localhost", "tcp " + mustURL(t, tcp.URL).Host}
	for round := range 5 {
		for i, u := range urls {
			_, body := get(t, http.DefaultClient, "GET", u+"/m.js", nil)
			assert.Contains(t, body, want[i]+" /m.js", "round %d", round)
		}
	}
}

// A socket that does not exist yet, or whose server is gone, is a dev server
// that is not running: a browser gets the page that waits for it, and a
// vite-ping a refused handshake. Once the server listens, requests go through.
func TestUnixTargetNotListening(t *testing.T) {
	dir := socketDir(t)
	missing := filepath.Join(dir, "missing.sock")
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	require.NoError(t, err)
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // a server that crashed leaves its socket file
	require.NoError(t, ln.Close())
	require.FileExists(t, stale)

	navigation := http.Header{"Accept": {"text/html"}}
	for _, sock := range []string{missing, stale} {
		t.Run(filepath.Base(sock), func(t *testing.T) {
			seen := make(chan error, 2)
			_, srv := serve(t, ssrproxy.Static(hotfile.UnixURL(sock), hotfile.UnixURL(sock)), &ssrproxy.Options{
				ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
					seen <- err
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
				},
			})
			res, body := get(t, srv.Client(), "GET", srv.URL+"/", navigation)
			assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
			assert.Contains(t, body, sock, "the error names the socket")
			_, res, err := dialWS(t, srv.URL+"/hmr", protocols("vite-ping"))
			require.ErrorIs(t, err, testenv.ErrHandshake)
			assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
			for range 2 {
				assert.ErrorIs(t, <-seen, ssrproxy.ErrUnavailable)
			}
		})
	}

	// The default answer, then the dev server comes up at the same path.
	_, srv := serve(t, ssrproxy.Static(hotfile.UnixURL(stale), nil), nil)
	res, body := get(t, srv.Client(), "GET", srv.URL+"/", navigation)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body, "The dev server is starting")
	require.NoError(t, os.Remove(stale))
	serveUnix(t, stale, devServer("up"))
	res, body = get(t, srv.Client(), "GET", srv.URL+"/", navigation)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "up localhost /")
}

// NewRequest reaches a dev server of either kind through NewTransport, the
// way the proxy does.
func TestNewRequest(t *testing.T) {
	dir := socketDir(t)
	sock := filepath.Join(dir, "http.sock")
	serveUnix(t, sock, devServer("unix"))
	tcp := upstream(t, devServer("tcp"))
	base := mustURL(t, tcp.URL+"/build")
	client := &http.Client{Transport: ssrproxy.NewTransport()}
	t.Cleanup(client.CloseIdleConnections)

	tests := []struct {
		target *url.URL
		ref    string
		want   string
	}{
		{hotfile.UnixURL(sock), "/", "unix localhost / "},
		{hotfile.UnixURL(sock), "/src/App.tsx?t=1700000000000", "unix localhost /src/App.tsx?t=1700000000000 "},
		{base, "/src/App.tsx?t=1", "tcp " + base.Host + " /build/src/App.tsx?t=1 "},
	}
	for _, tt := range tests {
		req, err := ssrproxy.NewRequest(t.Context(), "GET", tt.target, tt.ref, nil)
		require.NoError(t, err)
		res, err := client.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(body))
	}

	for _, ref := range []string{"", "src/App.tsx", "http://evil.test/", "//evil.test/x", "%zz"} {
		_, err := ssrproxy.NewRequest(t.Context(), "GET", base, ref, nil)
		assert.Error(t, err, "ref %q", ref)
	}
	_, err := ssrproxy.NewRequest(t.Context(), "GET", nil, "/", nil)
	assert.Error(t, err)

	// Another transport does not know the socket: it fails to connect, and
	// it reaches nothing else.
	req, err := ssrproxy.NewRequest(t.Context(), "GET", hotfile.UnixURL(sock), "/", nil)
	require.NoError(t, err)
	_, err = (&http.Client{Transport: &http.Transport{}}).Do(req)
	var dnsErr *net.DNSError
	assert.True(t, errors.As(err, &dnsErr), "%v", err)
}

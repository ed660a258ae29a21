package ssrproxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/ssrproxy"
)

func TestRouting(t *testing.T) {
	httpUp := upstream(t, wsEcho("http"))
	hmrUp := upstream(t, wsEcho("hmr"))
	withHMR := ssrproxy.Static(mustURL(t, httpUp.URL), mustURL(t, hmrUp.URL))
	withoutHMR := ssrproxy.Static(mustURL(t, httpUp.URL), nil)

	tests := []struct {
		name     string
		src      ssrproxy.TargetSource
		ws       bool
		protocol string
		want     string
	}{
		{"plain request", withHMR, false, "", "http"},
		{"app websocket", withHMR, true, "", "http"},
		{"app websocket with its own protocol", withHMR, true, "graphql-ws", "http"},
		{"vite-hmr", withHMR, true, "vite-hmr", "hmr"},
		{"vite-ping", withHMR, true, "vite-ping", "hmr"},
		{"vite-hmr among other protocols", withHMR, true, "graphql-ws, vite-hmr", "hmr"},
		{"protocol names are case-sensitive", withHMR, true, "Vite-HMR", "http"},
		{"vite-hmr without an HMR target", withoutHMR, true, "vite-hmr", "http"},
		{"vite-ping without an HMR target", withoutHMR, true, "vite-ping", "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := serve(t, tt.src, nil)
			if !tt.ws {
				res, body := get(t, srv.Client(), "GET", srv.URL+"/src/main.js", nil)
				assert.Equal(t, http.StatusOK, res.StatusCode)
				assert.Equal(t, tt.want, body)
				return
			}
			c, res, err := dialWS(t, srv.URL+"/hmr?token=t", protocols(tt.protocol))
			require.NoError(t, err)
			first, _, _ := strings.Cut(tt.protocol, ",")
			assert.Equal(t, first, res.Header.Get("Sec-WebSocket-Protocol"))
			msg, err := c.ReadMessage()
			require.NoError(t, err)
			assert.Equal(t, tt.want+" /hmr?token=t", string(msg))
		})
	}
}

func TestForwardedRequest(t *testing.T) {
	type seen struct {
		uri, host, xff, xfh, xfp, cookie, secret, keepAlive, proxyAuth string
	}
	got := make(chan seen, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{
			uri: r.URL.RequestURI(), host: r.Host,
			xff: r.Header.Get("X-Forwarded-For"), xfh: r.Header.Get("X-Forwarded-Host"), xfp: r.Header.Get("X-Forwarded-Proto"),
			cookie: r.Header.Get("Cookie"), secret: r.Header.Get("X-Secret"),
			keepAlive: r.Header.Get("Keep-Alive"), proxyAuth: r.Header.Get("Proxy-Authorization"),
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "no", http.StatusForbidden) // the handshake itself is what is checked
		}
	}))
	upHost := mustURL(t, up.URL).Host

	tests := []struct {
		name     string
		target   string
		keepHost bool
		ws       bool
		wantURI  string
		wantHost string
	}{
		{"host rewritten", up.URL, false, false, "/src/a.js?v=1&x=%2F", upHost},
		{"client host kept", up.URL, true, false, "/src/a.js?v=1&x=%2F", "app.test"},
		{"target path joined in front", up.URL + "/build", false, false, "/build/src/a.js?v=1&x=%2F", upHost},
		{"handshake: host rewritten", up.URL, false, true, "/src/a.js?v=1&x=%2F", upHost},
		{"handshake: client host kept", up.URL, true, true, "/src/a.js?v=1&x=%2F", "app.test"},
		{"handshake: target path joined in front", up.URL + "/build", false, true, "/build/src/a.js?v=1&x=%2F", upHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := serve(t, ssrproxy.Static(mustURL(t, tt.target), nil), &ssrproxy.Options{KeepHost: tt.keepHost})
			conn, err := net.Dial("tcp", mustURL(t, srv.URL).Host)
			require.NoError(t, err)
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(deadline))
			upgrade := ""
			if tt.ws {
				upgrade = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			}
			connection := "Connection: X-Secret, Keep-Alive"
			if tt.ws {
				connection += ", Upgrade"
			}
			fmt.Fprintf(conn, "GET /src/a.js?v=1&x=%%2F HTTP/1.1\r\nHost: app.test\r\n%s\r\n%sX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eDp5\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.test\r\nCookie: sid=abc\r\n\r\n", connection, upgrade)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			res.Body.Close()

			s := <-got
			assert.Equal(t, tt.wantURI, s.uri)
			assert.Equal(t, tt.wantHost, s.host)
			assert.Equal(t, "127.0.0.1", s.xff, "X-Forwarded-For names this hop's client only")
			assert.Equal(t, "app.test", s.xfh)
			assert.Equal(t, "http", s.xfp)
			assert.Equal(t, "sid=abc", s.cookie)
			assert.Empty(t, s.secret, "a header named in Connection is hop-by-hop")
			assert.Empty(t, s.keepAlive)
			assert.Empty(t, s.proxyAuth)
		})
	}
}

// A GET or HEAD without a body must reach the dev server without one and
// without Transfer-Encoding: chunked, or Vite answers 400
// (https://github.com/litestar-org/litestar-vite/issues/242).
func TestRequestBodies(t *testing.T) {
	type seen struct {
		te   []string
		cl   int64
		body string
	}
	got := make(chan seen, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.TransferEncoding, r.ContentLength, string(b)}
	}))
	_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), nil)

	tests := []struct {
		name    string
		request string
		want    seen
	}{
		{"GET without body", "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", seen{nil, 0, ""}},
		{"HEAD without body", "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", seen{nil, 0, ""}},
		{"GET with an empty chunked body", "GET /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", seen{nil, 0, ""}},
		{"HEAD with an empty chunked body", "HEAD /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", seen{nil, 0, ""}},
		{"GET with a chunked body", "GET /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", seen{[]string{"chunked"}, -1, "hello"}},
		{"POST with a body", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", seen{nil, 3, "abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", mustURL(t, srv.URL).Host)
			require.NoError(t, err)
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(deadline))
			_, err = io.WriteString(conn, tt.request)
			require.NoError(t, err)
			res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: strings.Fields(tt.request)[0]})
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, tt.want, <-got)
		})
	}
}

// Streamed responses reach the client piece by piece: the upstream sends
// its second piece only after the client has read the first.
func TestStreaming(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
	}{
		{"server-sent events", "text/event-stream"},
		{"chunked response of unknown length", "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, "data: one\n\n")
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "data: two\n\n")
			}))
			_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), nil)
			res, err := srv.Client().Get(srv.URL + "/events")
			require.NoError(t, err)
			defer res.Body.Close()
			require.Equal(t, int64(-1), res.ContentLength, "a streamed response has no length")

			br := bufio.NewReader(res.Body)
			first := make(chan string, 1)
			go func() {
				line, _ := br.ReadString('\n')
				first <- line
			}()
			select {
			case line := <-first:
				assert.Equal(t, "data: one\n", line)
			case <-time.After(deadline):
				t.Fatal("the first event did not arrive before the upstream sent the second: the proxy buffers")
			}
			close(release)
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			assert.Equal(t, "\ndata: two\n\n", string(rest))
		})
	}
}

func TestRetargetsWhenTheHotFileChanges(t *testing.T) {
	a := upstream(t, wsEcho("a"))
	b := upstream(t, wsEcho("b"))
	hmr := upstream(t, wsEcho("hmr"))
	hot := filepath.Join(t.TempDir(), "public", "hot")
	require.NoError(t, hotfile.Write(hot, mustURL(t, a.URL)))
	w, err := hotfile.Watch(hot, &hotfile.WatchOptions{Debounce: time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	_, srv := serve(t, w, nil)

	body := func() string {
		res, body := get(t, srv.Client(), "GET", srv.URL+"/", nil)
		return fmt.Sprint(res.StatusCode, " ", strings.TrimSpace(body))
	}
	hmrGoesTo := func() string {
		c, _, err := dialWS(t, srv.URL+"/hmr", protocols("vite-hmr"))
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		msg, _ := c.ReadMessage()
		return string(msg)
	}
	changes, cancel := w.Subscribe()
	defer cancel()
	waitFor := func(want func(hotfile.Targets) bool) {
		t.Helper()
		for !want(w.Targets()) {
			select {
			case <-changes:
			case <-time.After(deadline):
				t.Fatalf("targets did not change: %+v", w.Targets())
			}
		}
	}

	assert.Equal(t, "200 a", body())
	assert.Equal(t, "a /hmr", hmrGoesTo())

	require.NoError(t, hotfile.Write(hot, mustURL(t, b.URL)))
	waitFor(func(t hotfile.Targets) bool { return t.HTTP != nil && t.HTTP.String() == b.URL })
	assert.Equal(t, "200 b", body())

	require.NoError(t, hotfile.Write(hotfile.HMRPath(hot), mustURL(t, hmr.URL)))
	waitFor(func(t hotfile.Targets) bool { return t.HMR != nil })
	assert.Equal(t, "hmr /hmr", hmrGoesTo())
	assert.Equal(t, "200 b", body())

	require.NoError(t, hotfile.Remove(hot))
	waitFor(func(t hotfile.Targets) bool { return t.HTTP == nil })
	assert.Equal(t, "503 dev server is not running (starting or restarting)", body())
}

// A page load fires many module requests at once; they must reuse the
// connections to the dev server instead of opening one each (Go's default
// transport keeps 2 idle connections per host).
func TestConnectionsAreReused(t *testing.T) {
	var opened atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 4096))
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), &ssrproxy.Options{Transport: ssrproxy.NewTransport()})
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64

	const workers, rounds = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				res, err := client.Get(srv.URL + "/module.js")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, opened.Load(), int64(2*workers), "connections opened for %d requests", workers*rounds)
}

func TestNewTransport(t *testing.T) {
	tr := ssrproxy.NewTransport()
	assert.Nil(t, tr.Proxy, "a dev server is never reached through HTTP_PROXY")
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 64)
	assert.True(t, tr.DisableCompression, "bodies pass through as the dev server encoded them")
	assert.False(t, tr.ForceAttemptHTTP2, "WebSocket handshakes need HTTP/1.1")
	assert.NotSame(t, tr, ssrproxy.NewTransport(), "each call returns a transport of its own")
}

func TestUpstreamErrorAfterConnecting(t *testing.T) {
	hangUp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close() // connected, then no answer at all
		}
	})
	wrongProtocol := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "h2c")
		w.WriteHeader(http.StatusSwitchingProtocols)
	})
	tests := []struct {
		name     string
		upstream http.Handler
		ws       bool
		wantLog  string
	}{
		{"request", hangUp, false, "EOF"},
		{"handshake", hangUp, true, "EOF"},
		{"handshake switched to another protocol", wrongProtocol, true, `switched to protocol \"h2c\"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := upstream(t, tt.upstream)
			log, logs := newLogger()
			_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), &ssrproxy.Options{Logger: log})
			var status int
			var body string
			if tt.ws {
				_, res, err := dialWS(t, srv.URL+"/ws", nil)
				require.Error(t, err)
				require.NotNil(t, res)
				status = res.StatusCode
				b, _ := io.ReadAll(res.Body)
				body = string(b)
			} else {
				res, b := get(t, srv.Client(), "GET", srv.URL+"/x.js", nil)
				status, body = res.StatusCode, b
			}
			assert.Equal(t, http.StatusBadGateway, status)
			assert.Contains(t, body, "bad gateway: ")
			assert.Contains(t, logs.String(), "level=ERROR")
			assert.Contains(t, logs.String(), "vitehost/ssrproxy: upstream error")
			assert.Contains(t, logs.String(), tt.wantLog)
		})
	}
}

func TestModifyResponse(t *testing.T) {
	up := upstream(t, wsEcho("up"))
	log, _ := newLogger()
	opts := &ssrproxy.Options{Logger: log, ModifyResponse: func(res *http.Response) error {
		if res.Request.URL.Path == "/fail" {
			return errors.New("modify says no")
		}
		res.Header.Set("X-Modified", res.Status)
		return nil
	}}
	_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), opts)

	res, body := get(t, srv.Client(), "GET", srv.URL+"/ok", nil)
	assert.Equal(t, "200 OK", res.Header.Get("X-Modified"))
	assert.Equal(t, "up", body)

	_, wsRes, err := dialWS(t, srv.URL+"/ws", nil)
	require.NoError(t, err)
	assert.Equal(t, "101 Switching Protocols", wsRes.Header.Get("X-Modified"), "handshake answers go through ModifyResponse too")

	res, body = get(t, srv.Client(), "GET", srv.URL+"/fail", nil)
	assert.Equal(t, http.StatusBadGateway, res.StatusCode)
	assert.Contains(t, body, "modify says no")
}

func TestErrorHandlerGetsSentinels(t *testing.T) {
	up := upstream(t, wsEcho("up"))
	type call struct {
		path string
		err  error
	}
	tests := []struct {
		name  string
		src   ssrproxy.TargetSource
		ws    bool
		close bool
		is    []error
		isNot []error
	}{
		{"no target", ssrproxy.Static(nil, nil), false, false, []error{ssrproxy.ErrNoTarget, ssrproxy.ErrUnavailable}, []error{ssrproxy.ErrClosed}},
		{"no target, handshake", ssrproxy.Static(nil, nil), true, false, []error{ssrproxy.ErrNoTarget, ssrproxy.ErrUnavailable}, nil},
		{"connection refused", ssrproxy.Static(refusedURL(t), nil), false, false, []error{ssrproxy.ErrUnavailable}, []error{ssrproxy.ErrNoTarget}},
		{"connection refused, handshake", ssrproxy.Static(mustURL(t, up.URL), refusedURL(t)), true, false, []error{ssrproxy.ErrUnavailable}, []error{ssrproxy.ErrNoTarget}},
		{"closed proxy", ssrproxy.Static(mustURL(t, up.URL), nil), false, true, []error{ssrproxy.ErrClosed}, []error{ssrproxy.ErrUnavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := make(chan call, 1)
			p, srv := serve(t, tt.src, &ssrproxy.Options{ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				calls <- call{r.RequestURI, err}
				w.WriteHeader(http.StatusTeapot)
			}})
			if tt.close {
				p.Close()
			}
			var status int
			if tt.ws {
				_, res, err := dialWS(t, srv.URL+"/hmr?x=1", protocols("vite-hmr"))
				require.Error(t, err)
				status = res.StatusCode
			} else {
				res, _ := get(t, srv.Client(), "GET", srv.URL+"/hmr?x=1", nil)
				status = res.StatusCode
			}
			assert.Equal(t, http.StatusTeapot, status)
			c := <-calls
			assert.Equal(t, "/hmr?x=1", c.path, "the handler gets the request as the client sent it")
			for _, target := range tt.is {
				assert.ErrorIs(t, c.err, target)
			}
			for _, target := range tt.isNot {
				assert.NotErrorIs(t, c.err, target)
			}
			assert.True(t, strings.HasPrefix(c.err.Error(), "vitehost/ssrproxy: "), c.err.Error())
		})
	}
}

func TestOptionsAreNotModified(t *testing.T) {
	opts := &ssrproxy.Options{KeepHost: true}
	p := ssrproxy.New(ssrproxy.Static(nil, nil), opts)
	defer p.Close()
	assert.Nil(t, opts.Transport)
	assert.Nil(t, opts.Logger)
	assert.Nil(t, opts.ErrorHandler)
	assert.True(t, opts.KeepHost)

	u := mustURL(t, "http://127.0.0.1:5173/build")
	src := ssrproxy.Static(u, nil)
	u.Path = "/changed"
	assert.Equal(t, "/build", src.Targets().HTTP.Path, "Static copies the URLs")
}

// A custom source may hand out new URL values on every call.
type freshURLs struct{ s string }

func (f freshURLs) Targets() hotfile.Targets {
	u, _ := url.Parse(f.s)
	return hotfile.Targets{HTTP: u}
}

func TestSourceWithFreshURLs(t *testing.T) {
	up := upstream(t, wsEcho("up"))
	_, srv := serve(t, freshURLs{up.URL}, nil)
	for range 3 {
		res, body := get(t, srv.Client(), "GET", srv.URL+"/", nil)
		assert.Equal(t, http.StatusOK, res.StatusCode)
		assert.Equal(t, "up", body)
	}
}

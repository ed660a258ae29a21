package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/phayes/freeport"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/storetest"
	"github.com/vitehost/vitehost/ssrproxy"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// wait bounds every wait for the browser: a deadline, not a measurement.
const wait = 60 * time.Second

type server struct {
	api    string // http://localhost:port/kontext/preview
	token  string
	client *http.Client
}

// startServer runs the example in this process with its real flags, the
// way go run ./examples/previewserver does, on a free port.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	port, err := freeport.GetFreePort()
	require.NoError(t, err)
	dir := testenv.TempDir(t)
	// The dependency cache is kept between runs, like the fixtures', where
	// the sandbox's user can read it.
	cache := filepath.Join(os.TempDir(), "vitehost-test-preview-deps")
	require.NoError(t, os.MkdirAll(cache, 0o755))
	require.NoError(t, os.Symlink(cache, filepath.Join(dir, "deps")))
	args := append([]string{
		"-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"-public", fmt.Sprintf("http://localhost:%d", port),
		"-dir", dir,
		"-token", "t0ken",
		"-sandbox-env", testenv.OwnerEnv(), // for the leak check
	}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, testenv.Writer(t), ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("previewserver: %v", err)
	}
	t.Cleanup(func() {
		cancel() // what SIGINT does
		require.NoError(t, <-done)
		assert.Empty(t, testenv.NodeProcesses(), "every Vite process is stopped before run returns")
	})
	return &server{
		api:    fmt.Sprintf("http://localhost:%d/kontext/preview", port),
		token:  "t0ken",
		client: &http.Client{Timeout: 2 * wait},
	}
}

func (s *server) post(t *testing.T, path string, body any) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest("POST", s.api+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "POST %s: %s", path, raw)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

func app(title string) map[string]any {
	return map[string]any{"name": "src/App.tsx", "content": fmt.Sprintf(`import './app.css'

export default function App() {
  return <main><h1 id="title">%s</h1></main>
}
`, title)}
}

func css(color string) map[string]any {
	return map[string]any{"name": "src/app.css", "content": fmt.Sprintf("h1 { color: %s; }\n", color)}
}

func text(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)
}

// waitJS polls a JavaScript expression in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	require.NoError(t, chromedp.Run(ctx, chromedp.Poll(expr, nil, chromedp.WithPollingInterval(20*time.Millisecond))), "waiting for %s", what)
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	var v T
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(expr, &v)))
	return v
}

// TestPreviewInBrowser is the seed's promise, checked in a real browser: an
// update reaches the open page by HMR, without a reload.
func TestPreviewInBrowser(t *testing.T) {
	srv := startServer(t)
	browser := testenv.NewBrowser(t)
	ctx := browser.Ctx

	created := srv.post(t, "", map[string]any{"files": []any{app("Hello v1"), css("rgb(0, 0, 255)")}})
	previewURL := created["previewUrl"].(string)
	id := created["sessionId"].(string)
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(previewURL)))
	waitJS(t, ctx, text("#title")+` === "Hello v1"`, "the first render")
	assert.Equal(t, "rgb(0, 0, 255)", eval[string](t, ctx, `getComputedStyle(document.querySelector("#title")).color`))

	// A marker on window survives HMR and dies with a reload.
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker = 42`, nil)))

	upd := srv.post(t, "/"+id+"/update", map[string]any{"files": []any{app("Hello v2")}})
	assert.Equal(t, true, upd["hmrTriggered"])
	waitJS(t, ctx, text("#title")+` === "Hello v2"`, "the updated text")
	assert.Equal(t, 42.0, eval[float64](t, ctx, `window.__vitehostMarker`), "HMR, not a reload")

	srv.post(t, "/"+id+"/update", map[string]any{"files": []any{css("rgb(255, 0, 0)")}})
	waitJS(t, ctx, `getComputedStyle(document.querySelector("#title")).color === "rgb(255, 0, 0)"`, "the new CSS")
	assert.Equal(t, 42.0, eval[float64](t, ctx, `window.__vitehostMarker`), "CSS applied without a reload")

	broken := map[string]any{"name": "src/App.tsx", "content": "export default function App() {\n  return <main><h1>oops</h1>\n}\n"}
	bad := srv.post(t, "/"+id+"/update", map[string]any{"files": []any{broken}})
	hmr, _ := bad["hmr"].(map[string]any)
	assert.NotNil(t, hmr["error"], "the API reports the compile error: %v", bad)
	waitJS(t, ctx, `!!document.querySelector("vite-error-overlay")`, "Vite's error overlay")

	srv.post(t, "/"+id+"/update", map[string]any{"files": []any{app("Hello v3")}})
	waitJS(t, ctx, text("#title")+` === "Hello v3" && !document.querySelector("vite-error-overlay")`, "the fixed app without the overlay")

	sockets := browser.WebSockets()
	require.NotEmpty(t, sockets)
	wsURL := created["wsUrl"].(string)
	for _, s := range sockets {
		assert.True(t, strings.HasPrefix(s, wsURL+"?token="), "the page's HMR socket %s goes to wsUrl %s", s, wsURL)
	}
}

// TestPreviewServerWithRedis runs the example with -redis: sessions are
// kept in Redis, and the API works the same.
func TestPreviewServerWithRedis(t *testing.T) {
	testenv.Short(t)
	redis := storetest.Redis(t)
	srv := startServer(t, "-redis", redis.URL("", 3))
	created := srv.post(t, "", map[string]any{"files": []any{app("Hello from Redis")}})
	id := created["sessionId"].(string)

	req, _ := http.NewRequest("GET", srv.api+"/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+srv.token)
	res, err := srv.client.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"status":"active"`)

	opts, err := goredis.ParseURL(redis.URL("", 3))
	require.NoError(t, err)
	rc := goredis.NewClient(opts)
	defer rc.Close()
	keys, err := rc.Keys(context.Background(), "*"+id+"*").Result()
	require.NoError(t, err)
	assert.NotEmpty(t, keys, "the session's record is in Redis, db 3")
}

func (s *server) do(t *testing.T, method, path, token string, body []byte, header map[string]string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if h := header["Host"]; h != "" {
		req.Host = h // Go's resolver does not map *.localhost to loopback as browsers do
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(raw, &out)
	if out == nil {
		out = map[string]any{"raw": string(raw)}
	}
	return resp.StatusCode, out
}

// TestSeedSessionID is the seed's request with a session id of the
// client's, "abc123", through the example server and a real browser:
// create, the page at preview-abc123.<domain>, an update that reaches the
// page by HMR, status, a create again (an update), delete. The probes and
// the metrics are on the API host.
func TestSeedSessionID(t *testing.T) {
	srv := startServer(t)
	browser := testenv.NewBrowser(t)
	ctx := browser.Ctx
	base := strings.TrimSuffix(srv.api, "/kontext/preview")

	created := srv.post(t, "", map[string]any{
		"sessionId": "abc123",
		"files":     []any{app("Hello abc123"), css("rgb(0, 0, 255)")},
	})
	assert.Equal(t, "abc123", created["sessionId"])
	assert.Equal(t, true, created["created"])
	previewURL := created["previewUrl"].(string)
	assert.Equal(t, strings.Replace(base, "://localhost", "://preview-abc123.localhost", 1), previewURL)

	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(previewURL)))
	waitJS(t, ctx, text("#title")+` === "Hello abc123"`, "the first render")
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker = 7`, nil)))

	upd := srv.post(t, "/abc123/update", map[string]any{"files": []any{app("Hello again")}})
	assert.Equal(t, true, upd["hmrTriggered"], "%v", upd)
	waitJS(t, ctx, text("#title")+` === "Hello again"`, "the update")
	assert.Equal(t, 7.0, eval[float64](t, ctx, `window.__vitehostMarker`), "HMR, not a reload")

	status, st := srv.do(t, "GET", srv.api+"/abc123", srv.token, nil, nil)
	require.Equal(t, 200, status, "%v", st)
	assert.Equal(t, "active", st["status"])
	assert.Equal(t, previewURL, st["previewUrl"])

	// The seed's client sends its create again with the same id: an update.
	again := srv.post(t, "", map[string]any{"sessionId": "abc123", "files": []any{app("Hello a third time")}})
	assert.Equal(t, false, again["created"])
	assert.Equal(t, true, again["hmrTriggered"], "%v", again)
	waitJS(t, ctx, text("#title")+` === "Hello a third time"`, "the create that updated")
	assert.Equal(t, 7.0, eval[float64](t, ctx, `window.__vitehostMarker`))

	// Cross-site rules on the example server: a form-like body, a page of
	// another site.
	status, res := srv.do(t, "POST", srv.api+"/abc123/update", srv.token, []byte(`{"files":[]}`), map[string]string{"Content-Type": "text/plain"})
	assert.Equal(t, 415, status, "%v", res)
	status, res = srv.do(t, "POST", srv.api+"/abc123/update", srv.token, []byte(`{"files":[]}`),
		map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"})
	assert.Equal(t, 403, status, "%v", res)

	// The probes and the metrics.
	status, _ = srv.do(t, "GET", base+"/healthz", "", nil, nil)
	assert.Equal(t, 200, status)
	require.Eventually(t, func() bool {
		status, _ := srv.do(t, "GET", base+"/readyz", "", nil, nil)
		return status == 200
	}, wait, 50*time.Millisecond, "ready once the template's packages are installed")
	status, _ = srv.do(t, "GET", base+"/metrics", "", nil, nil)
	assert.Equal(t, 401, status, "the metrics are behind the token")
	status, metrics := srv.do(t, "GET", base+"/metrics", srv.token, nil, nil)
	require.Equal(t, 200, status)
	assert.Contains(t, metrics["raw"], `vitehost_preview_sessions{status="active"} 1`)
	assert.Contains(t, metrics["raw"], `vitehost_preview_api_requests_total{code="unsupported_media_type",operation="update"} 1`)

	status, del := srv.do(t, "DELETE", srv.api+"/abc123", srv.token, nil, nil)
	require.Equal(t, 200, status, "%v", del)
	status, _ = srv.do(t, "GET", srv.api+"/abc123", srv.token, nil, nil)
	assert.Equal(t, 404, status)
	status, _ = srv.do(t, "GET", base+"/", "", nil, map[string]string{"Host": strings.TrimPrefix(previewURL, "http://")})
	assert.Equal(t, 404, status, "the page is gone")
}

// TestRefusesToExposeWithoutToken: the server does not serve an address
// other than loopback without a token, unless told so.
func TestRefusesToExposeWithoutToken(t *testing.T) {
	dir := testenv.TempDir(t)
	for _, addr := range []string{"0.0.0.0:0", ":0"} {
		err := run(context.Background(), []string{"-addr", addr, "-dir", dir}, testenv.Writer(t), nil)
		require.Error(t, err, addr)
		assert.Contains(t, err.Error(), "refusing to listen")
		assert.Contains(t, err.Error(), "-insecure-no-token")
	}

	for _, args := range [][]string{
		{"-addr", "127.0.0.1:0"},
		{"-addr", "0.0.0.0:0", "-token", "s3cret"},
		{"-addr", "0.0.0.0:0", "-insecure-no-token"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- run(ctx, append(args, "-dir", dir), testenv.Writer(t), ready) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("%v: %v", args, err)
		}
		cancel()
		require.NoError(t, <-done, "%v", args)
	}
}

// TestIdleSessionsSleep runs the example with -idle: a session that
// nothing reaches hibernates, its status says so, and a page request wakes
// it.
func TestIdleSessionsSleep(t *testing.T) {
	srv := startServer(t, "-idle", "1s")
	base := strings.TrimSuffix(srv.api, "/kontext/preview")
	created := srv.post(t, "", map[string]any{"files": []any{app("Asleep"), css("teal")}})
	id := created["sessionId"].(string)
	host := strings.TrimPrefix(created["previewUrl"].(string), "http://")
	status := func() string {
		_, st := srv.do(t, "GET", srv.api+"/"+id, srv.token, nil, nil)
		s, _ := st["status"].(string)
		return s
	}
	require.Eventually(t, func() bool { return status() == "hibernated" }, wait, 20*time.Millisecond, "the session sleeps")

	// A navigation waits for the wake, or gets the page that reloads
	// itself until the dev server is back, as a browser would follow it.
	deadline := time.Now().Add(wait)
	for {
		code, page := srv.do(t, "GET", base+"/", "", nil, map[string]string{"Host": host, "Accept": "text/html"})
		if code == 200 {
			assert.Contains(t, page["raw"], "/@vite/client")
			break
		}
		require.Equal(t, 503, code, "%v", page)
		require.True(t, time.Now().Before(deadline), "the page never came back")
	}
	code, mod := srv.do(t, "GET", base+"/src/App.tsx", "", nil, map[string]string{"Host": host})
	require.Equal(t, 200, code, "%v", mod)
	assert.Contains(t, mod["raw"], "Asleep")
}

// TestSandboxLimitFlags reads -sandbox-memory in the units an operator
// writes, and refuses what is not a size.
func TestSandboxLimitFlags(t *testing.T) {
	for in, want := range map[string]int64{"2GiB": 2 << 30, "1536MiB": 1536 << 20, "2G": 2 << 30, "512m": 512 << 20, "1048576": 1 << 20, "-1": -1, "3gib": 3 << 30} {
		c, err := parseFlags([]string{"-sandbox-memory", in, "-sandbox-pids", "300"}, io.Discard)
		require.NoError(t, err, in)
		assert.Equal(t, want, c.sandboxMemory, in)
		assert.Equal(t, 300, c.sandboxPids)
	}
	for _, in := range []string{"", "GiB", "2TB", "-2G", "1.5G", "x"} {
		_, err := parseFlags([]string{"-sandbox-memory", in}, io.Discard)
		assert.Error(t, err, in)
	}
	c, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, int64(preview.DefaultSessionMemory), c.sandboxMemory)
}

// TestWebSocketMessageFlag reads -max-websocket-message into the
// service's Limits, and leaves ssrproxy's default without it.
func TestWebSocketMessageFlag(t *testing.T) {
	c, err := parseFlags([]string{"-max-websocket-message", "65536"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, int64(65536), c.limits.MaxWebSocketMessage)
	c, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, int64(ssrproxy.DefaultMaxViteMessage), c.limits.MaxWebSocketMessage)
}

// TestServerBounds runs the example with short connection timeouts: an
// idle keep-alive connection and a silent one are closed, and a POST
// without the token that trickles its body gets its 401 at once (issue 19).
func TestServerBounds(t *testing.T) {
	srv := startServer(t, "-conn-idle-timeout", "300ms", "-read-header-timeout", "300ms", "-max-conns", "64")
	addr := strings.TrimPrefix(strings.TrimSuffix(srv.api, "/kontext/preview"), "http://")
	dial := func(req string) net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = io.WriteString(c, req)
		require.NoError(t, err)
		c.SetReadDeadline(time.Now().Add(wait))
		return c
	}
	closed := func(c net.Conn, what string) {
		t.Helper()
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "%s: still open", what)
	}

	silent := dial("")
	idle := dial("GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	br := bufio.NewReader(idle)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)
	closed(silent, "a connection that sends nothing")
	closed(idle, "an idle keep-alive connection")

	trickle := dial("POST /kontext/preview HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
	res, err = http.ReadResponse(bufio.NewReader(trickle), nil)
	require.NoError(t, err, "an answer before the body")
	res.Body.Close()
	assert.Equal(t, 401, res.StatusCode)
	closed(trickle, "the refused POST")
}

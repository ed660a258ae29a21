package preview_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/internal/launch"
)

const (
	wait      = 60 * time.Second // a deadline, never a measurement
	pollEvery = 20 * time.Millisecond
)

// service is a preview manager behind a real listener, the way the example
// server runs it: the router for preview hosts, the API for the rest.
type service struct {
	m      *preview.Manager
	srv    *http.Server
	addr   string // 127.0.0.1:port
	public string // http://localhost:port
	client *http.Client
	dialer *websocket.Dialer
	base   string
}

// depsCache is where the tests keep dependency installs between runs (like
// the fixtures): the template's set installs once per machine.
func depsCache(t *testing.T) string {
	// Not under the fixture cache (~/.cache): the sandbox's user must reach
	// the installs it mounts.
	dir := filepath.Join(os.TempDir(), "vitehost-test-preview-deps")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func startService(t *testing.T, opts preview.Options) *service {
	t.Helper()
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	t.Cleanup(func() { assert.Empty(t, testenv.NodeProcesses(), "no node process outlives Close") })
	return startNode(t, opts, false)
}

// startNode starts a manager behind a listener of its own. With cluster set
// the manager is one node of several: its NodeAddr is its listener. An
// empty PublicURL means http://localhost:<port>.
func startNode(t *testing.T, opts preview.Options, cluster bool) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	if opts.PublicURL == "" {
		opts.PublicURL = fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	}
	if cluster {
		opts.NodeAddr = addr
	}
	if opts.BaseDir == "" {
		opts.BaseDir = testenv.TempDir(t)
	}
	// The leak check finds the sandboxed processes by this mark.
	opts.Sandbox.Env = append(opts.Sandbox.Env, testenv.OwnerEnv())
	if opts.CacheDir == "" {
		opts.CacheDir = depsCache(t)
	}
	if opts.Logger == nil {
		opts.Logger = testenv.Logger(t)
	}
	if opts.Spares == 0 {
		// The tests count a session's node processes; a spare runner is
		// one more, so those that use spares say so.
		opts.Spares = -1
	}
	m, err := preview.New(&opts)
	require.NoError(t, err)
	srv := &http.Server{Handler: m.Router(m.API())}
	go srv.Serve(ln)
	svc := &service{m: m, srv: srv, addr: addr, public: opts.PublicURL, base: opts.BaseDir}
	t.Cleanup(svc.kill)
	// Every host name reaches this listener, as *.localhost does in a browser.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	svc.client = &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 2 * wait}
	svc.dialer = &websocket.Dialer{NetDialContext: dial, Subprotocols: []string{"vite-hmr"}, HandshakeTimeout: wait}
	return svc
}

// kill closes the manager and then the server with every connection, the
// way a node that goes away looks to the others. It is safe to call twice.
func (s *service) kill() {
	s.m.Close(context.Background())
	s.srv.Close()
	s.client.CloseIdleConnections()
}

func (s *service) api(t *testing.T, method, path string, body any) (int, apiResponse) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, s.public+"/kontext/preview"+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out apiResponse
	require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	out.Raw = raw
	return resp.StatusCode, out
}

func (s *service) get(t *testing.T, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html,*/*")
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

var wsToken = regexp.MustCompile(`const wsToken = "([^"]*)"`)

// hmrSocket opens the session's HMR socket the way the page's Vite client
// does: through the router, at wsUrl, with the token from /@vite/client.
func (s *service) hmrSocket(t *testing.T, created apiResponse) *websocket.Conn {
	t.Helper()
	status, client := s.get(t, created.PreviewURL+"/@vite/client")
	require.Equal(t, 200, status)
	m := wsToken.FindStringSubmatch(client)
	require.NotNil(t, m, "no wsToken in /@vite/client")
	u := created.WSURL + "?token=" + url.QueryEscape(m[1])
	h := http.Header{"Origin": {created.PreviewURL}}
	conn, resp, err := s.dialer.Dial(u, h)
	require.NoError(t, err, "dial %s", u)
	resp.Body.Close()
	assert.Equal(t, "vite-hmr", conn.Subprotocol())
	t.Cleanup(func() { conn.Close() })
	msg := readHMR(t, conn, func(m map[string]any) bool { return true })
	require.Equal(t, "connected", msg["type"])
	return conn
}

// readHMR returns the first message on conn that match accepts.
func readHMR(t *testing.T, conn *websocket.Conn, match func(map[string]any) bool) map[string]any {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	defer conn.SetReadDeadline(time.Time{})
	for {
		_, data, err := conn.ReadMessage()
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(data, &m))
		if match(m) {
			return m
		}
	}
}

func appTSX(text string) map[string]any {
	return map[string]any{"name": "src/App.tsx", "content": fmt.Sprintf(`import { useState } from 'react'

export default function App() {
  const [n, setN] = useState(0)
  return <main><h1 id="title">%s</h1><button onClick={() => setN(n + 1)}>{n}</button></main>
}
`, text)}
}

func TestPreviewEndToEnd(t *testing.T) {
	t.Run("sandbox", func(t *testing.T) { testPreviewEndToEnd(t, false) })
	t.Run("no sandbox", func(t *testing.T) { testPreviewEndToEnd(t, true) })
}

func testPreviewEndToEnd(t *testing.T, noSandbox bool) {
	svc := startService(t, preview.Options{NoSandbox: noSandbox})
	start := time.Now()
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("Hello v1")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	require.True(t, created.Success)
	require.NotNil(t, created.Created, "body: %s", created.Raw)
	assert.True(t, *created.Created)
	id := created.SessionID
	assert.True(t, preview.ValidID(id), id)
	assert.Equal(t, fmt.Sprintf("http://preview-%s.%s", id, strings.TrimPrefix(svc.public, "http://")), created.PreviewURL)
	assert.Equal(t, strings.Replace(created.PreviewURL, "http://", "ws://", 1)+"/hmr", created.WSURL)
	assert.InDelta(t, start.Add(preview.DefaultTTL).UnixMilli(), created.ExpiresAt, float64(time.Minute.Milliseconds()))
	t.Logf("create took %s", time.Since(start))
	assert.DirExists(t, filepath.Join(svc.base, "preview-"+id))

	// The page, through the router.
	status, page := svc.get(t, created.PreviewURL+"/")
	require.Equal(t, 200, status)
	assert.Contains(t, page, `<div id="root">`)
	assert.Contains(t, page, "/@vite/client")
	status, app := svc.get(t, created.PreviewURL+"/src/App.tsx")
	require.Equal(t, 200, status)
	assert.Contains(t, app, "Hello v1")

	// Endpoints that act on the host, not on the preview, are not served.
	for _, p := range []string{"/__open-in-editor?file=src/App.tsx", "/__OPEN-IN-EDITOR?file=/etc/passwd", "//__open-in-editor/x"} {
		status, _ := svc.get(t, created.PreviewURL+p)
		assert.Equal(t, 404, status, p)
	}

	status, st := svc.api(t, "GET", "/"+id, nil)
	require.Equal(t, 200, status)
	assert.Equal(t, "active", st.Status)
	assert.Equal(t, created.PreviewURL, st.PreviewURL)
	assert.Equal(t, created.ExpiresAt, st.ExpiresAt)

	// The HMR socket, through the router, as the browser opens it.
	conn := svc.hmrSocket(t, created)

	status, upd := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("Hello v2")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.True(t, upd.Success)
	assert.Equal(t, []string{"src/App.tsx"}, upd.Updated)
	assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
	assert.Equal(t, preview.HMRUpdate, upd.HMR.Type)
	assert.Contains(t, upd.HMR.Paths, "/src/App.tsx")
	assert.Nil(t, upd.HMR.Error)
	msg := readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "update" })
	assert.Contains(t, fmt.Sprint(msg["updates"]), "/src/App.tsx", "the browser's socket saw the update")

	// The metrics saw the session, its start, the update's HMR message, the
	// proxied requests and the open HMR socket.
	metrics := scrapeText(t, svc.m.Metrics())
	for _, re := range []string{
		`vitehost_preview_sessions\{status="active"\} 1\n`,
		`vitehost_preview_start_duration_seconds_count 1\n`,
		`vitehost_preview_hmr_latency_seconds_count [1-9]`,
		`vitehost_preview_proxied_requests_total\{kind="http"\} [1-9]`,
		`vitehost_preview_proxied_requests_total\{kind="websocket"\} [1-9]`,
		`vitehost_preview_websocket_tunnels [1-9]`,
		`vitehost_preview_api_requests_total\{code="ok",operation="create"\} 1\n`,
		`vitehost_preview_api_requests_total\{code="ok",operation="update"\} 1\n`,
	} {
		assert.Regexp(t, re, metrics)
	}

	// A syntax error: the answer carries Vite's compile error.
	broken := map[string]any{"name": "src/App.tsx", "content": "export default function App() {\n  return <main><h1>oops</h1>\n}\n"}
	status, bad := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{broken}})
	require.Equal(t, 200, status, "body: %s", bad.Raw)
	require.NotNil(t, bad.HMR.Error, "body: %s", bad.Raw)
	assert.NotEmpty(t, bad.HMR.Error.Message)
	assert.Equal(t, "src/App.tsx", bad.HMR.Error.File, "relative to the project")
	assert.NotContains(t, bad.HMR.Error.Message, svc.base, "no server paths")
	assert.Positive(t, bad.HMR.Error.Line, "body: %s", bad.Raw)
	// The page learns of the error the way Vite tells it: its request for
	// the updated module fails, and Vite sends the error on the socket.
	msg = readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "update" })
	status, body := svc.get(t, created.PreviewURL+fmt.Sprintf("/src/App.tsx?t=%.0f", msg["updates"].([]any)[0].(map[string]any)["timestamp"]))
	t.Logf("the failed module request: %d %.200s", status, body)
	assert.GreaterOrEqual(t, status, 400, "%.200s", body)
	readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "error" })

	// Fixed again; a PNG (base64) and a deletion in the same update.
	// Without the sandbox, a vite.config is dropped: it would run on the
	// host (in the sandbox it runs: see the compatibility test).
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	files := []any{appTSX("Hello v3"), map[string]any{"name": "public/logo.png", "encoding": "base64", "content": base64.StdEncoding.EncodeToString(png)}}
	if noSandbox {
		files = append(files, map[string]any{"name": "vite.config.ts", "content": "throw new Error('never run')"})
	}
	status, fixed := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": files})
	require.Equal(t, 200, status, "body: %s", fixed.Raw)
	assert.True(t, fixed.HMRTriggered)
	assert.Nil(t, fixed.HMR.Error)
	if noSandbox {
		assert.Equal(t, []string{"vite.config.ts"}, fixed.Ignored)
		assert.NoFileExists(t, filepath.Join(svc.base, "preview-"+id, "vite.config.ts"))
	}
	status, logo := svc.get(t, created.PreviewURL+"/logo.png")
	require.Equal(t, 200, status)
	assert.Equal(t, string(png), logo)
	status, _ = svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{}, "delete": []string{"public/logo.png"}})
	require.Equal(t, 200, status)
	assert.NoFileExists(t, filepath.Join(svc.base, "preview-"+id, "public", "logo.png"))

	// Creating with the id of a live session updates it, and says so.
	status, again := svc.api(t, "POST", "", map[string]any{"sessionId": id, "files": []any{appTSX("Hello v4")}})
	require.Equal(t, 200, status, "body: %s", again.Raw)
	assert.Equal(t, id, again.SessionID)
	require.NotNil(t, again.Created, "body: %s", again.Raw)
	assert.False(t, *again.Created)
	assert.Equal(t, []string{"src/App.tsx"}, again.Updated)
	assert.True(t, again.HMRTriggered, "the answer carries the update's result: %s", again.Raw)
	_, app = svc.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Contains(t, app, "Hello v4")
	assert.Equal(t, 1, svc.m.NumSessions())
	// With the session's own dependencies too; with others it is a conflict.
	tmplPkg := map[string]any{"dependencies": map[string]string{"react": "^19.2.0", "react-dom": "^19.2.0"},
		"devDependencies": map[string]string{"@vitejs/plugin-react": "^6.0.0", "vite": "^8.0.0"}}
	status, again = svc.api(t, "POST", "", map[string]any{"sessionId": id, "files": []any{appTSX("Hello v5")}, "packageJson": tmplPkg})
	require.Equal(t, 200, status, "the template's own set: body: %s", again.Raw)
	tmplPkg["dependencies"].(map[string]string)["clsx"] = "^2.1.0"
	status, conflict := svc.api(t, "POST", "", map[string]any{"sessionId": id, "files": []any{appTSX("Hello v6")}, "packageJson": tmplPkg})
	assert.Equal(t, 409, status, "body: %s", conflict.Raw)
	assert.Equal(t, "conflict", conflict.Error.Code)
	_, app = svc.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Contains(t, app, "Hello v5", "a conflict writes nothing")

	// Delete: no process, no directory, 404 after.
	status, del := svc.api(t, "DELETE", "/"+id, nil)
	require.Equal(t, 200, status)
	assert.JSONEq(t, `{"success":true}`, string(del.Raw))
	assert.Empty(t, testenv.NodeProcesses(), "no node process after delete")
	assert.NoDirExists(t, filepath.Join(svc.base, "preview-"+id))
	status, gone := svc.api(t, "GET", "/"+id, nil)
	assert.Equal(t, 404, status)
	assert.Equal(t, "not_found", gone.Error.Code)
	status, _ = svc.get(t, created.PreviewURL+"/")
	assert.Equal(t, 404, status)
}

func TestPreviewExpiry(t *testing.T) {
	svc := startService(t, preview.Options{TTL: 4 * time.Second})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("short-lived")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	dir := filepath.Join(svc.base, "preview-"+created.SessionID)
	require.DirExists(t, dir)
	require.Eventually(t, func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err) && len(testenv.NodeProcesses()) == 0
	}, wait, pollEvery, "the janitor removes the expired session, its process and its files")
	status, resp := svc.api(t, "GET", "/"+created.SessionID, nil)
	assert.Equal(t, 404, status)
	assert.Equal(t, "not_found", resp.Error.Code)
	assert.Equal(t, 0, svc.m.NumSessions())
}

// TestPreviewDependencyCache creates sessions against an empty cache and
// counts the real npm installs.
func TestPreviewDependencyCache(t *testing.T) {
	count := filepath.Join(t.TempDir(), "installs")
	install := []string{"sh", "-c", `echo run >> "$0"; exec npm install --ignore-scripts --no-audit --no-fund --loglevel=error --prefer-offline`, count}
	svc := startService(t, preview.Options{CacheDir: testenv.TempDir(t), InstallCommand: install})
	installs := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "run")
	}

	var wg sync.WaitGroup
	ids := make([]string, 5)
	for i := range ids {
		wg.Go(func() {
			status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX(fmt.Sprintf("session %d", i))}})
			if assert.Equal(t, 200, status, "body: %s", created.Raw) {
				ids[i] = created.SessionID
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, installs(), "5 concurrent creations with one dependency set install once")
	for i, id := range ids {
		_, app := svc.get(t, svc.m.PreviewURL(id)+"/src/App.tsx")
		assert.Contains(t, app, fmt.Sprintf("session %d", i))
	}

	pkg := map[string]any{"dependencies": map[string]string{"react": "^19.2.0", "react-dom": "^19.2.0", "clsx": "^2.1.0"},
		"devDependencies": map[string]string{"vite": "^8.0.0", "@vitejs/plugin-react": "^6.0.0"}}
	uses := map[string]any{"name": "src/App.tsx", "content": "import clsx from 'clsx'\nexport default function App() { return <h1 className={clsx('a', 'b')}>with clsx</h1> }\n"}
	status, other := svc.api(t, "POST", "", map[string]any{"files": []any{uses, tmplFile("index.html"), tmplFile("src/main.tsx"), tmplFile("src/index.css")}, "packageJson": pkg})
	require.Equal(t, 200, status, "body: %s", other.Raw)
	assert.Equal(t, 2, installs(), "another set installs separately")
	status, page := svc.get(t, other.PreviewURL+"/")
	assert.Equal(t, 200, status)
	assert.Contains(t, page, `id="root"`)

	status, again := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("sixth")}})
	require.Equal(t, 200, status, "body: %s", again.Raw)
	assert.Equal(t, 2, installs(), "the first set is still cached")
}

// tmplFile returns the template's file name as a file of a request; it
// panics when the template has no such file (a mistake of the test's).
func tmplFile(name string) map[string]any {
	files, err := launch.TemplateFiles()
	for _, f := range files {
		if f.Name == name {
			return file(name, string(f.Data))
		}
	}
	panic(fmt.Sprintf("the template has no file %s (%v)", name, err))
}

// TestOptimizedDepsShared prepares the template (which optimizes its
// dependencies once, in a session of the service's own), then creates two
// sessions of the template's dependency set in the sandbox: each starts with
// those optimized dependencies, and Vite uses them as they are: it never
// replaces them (its optimizer writes a new directory and renames it into
// place) while the session's modules, dependencies included, are loaded.
func TestOptimizedDepsShared(t *testing.T) {
	svc := startService(t, preview.Options{})
	require.NoError(t, svc.m.Prepare(context.Background()))
	shared, err := filepath.Glob(filepath.Join(depsCache(t), "*", "optimized", "*", "_metadata.json"))
	require.NoError(t, err)
	require.NotEmpty(t, shared, "Prepare shares what its optimizer made")
	metadata := func(id string) (os.FileInfo, error) {
		return os.Stat(filepath.Join(svc.base, "preview-"+id, ".vite-cache", "deps", "_metadata.json"))
	}
	for _, text := range []string{"first", "second"} {
		status, c := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX(text)}})
		require.Equal(t, 200, status, "body: %s", c.Raw)
		seeded, err := metadata(c.SessionID)
		require.NoError(t, err, "the session starts with optimized dependencies")
		// Every module of the page loaded, the dependencies included (the
		// warm-up leaves those to the browser), and an update.
		svc.crawl(t, &evidence{}, c.PreviewURL)
		status, _ = svc.api(t, "POST", "/"+c.SessionID+"/update", map[string]any{"files": []any{appTSX(text + ", warm")}})
		require.Equal(t, 200, status)
		after, err := metadata(c.SessionID)
		require.NoError(t, err)
		assert.True(t, os.SameFile(seeded, after), "Vite used the shared copy instead of optimizing again")
	}
}

// scrapeText returns the text of the metrics handler h.
func scrapeText(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, rec.Code)
	return rec.Body.String()
}

// TestOptimizedDepsLinkTheirMaps loads a session's page and modules (real
// Vite, in the sandbox): each optimized dependency that has a source map
// comes with a link to it, not with a map inlined (which made react-dom's
// chunk three times its size), and the link serves the optimizer's map.
func TestOptimizedDepsLinkTheirMaps(t *testing.T) {
	svc := startService(t, preview.Options{})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("maps")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	bodies := svc.crawl(t, &evidence{}, created.PreviewURL)
	deps := 0
	for p, body := range bodies {
		name := strings.SplitN(p, "?", 2)[0]
		if !strings.HasPrefix(name, "/.vite-cache/deps/") || !strings.HasSuffix(name, ".js") {
			continue
		}
		if _, err := os.Stat(filepath.Join(svc.base, "preview-"+created.SessionID, filepath.FromSlash(name)+".map")); err != nil {
			continue // a re-export of a chunk, with no map of its own
		}
		deps++
		assert.NotContains(t, body, "sourceMappingURL=data:", "%s: no map inline", p)
		link := "//# sourceMappingURL=" + path.Base(name) + ".map"
		if assert.Contains(t, body, link, p) && name == "/.vite-cache/deps/react-dom_client.js" {
			status, m := svc.get(t, created.PreviewURL+name+".map")
			require.Equal(t, 200, status, m)
			var sm struct {
				Version  int      `json:"version"`
				Sources  []string `json:"sources"`
				Mappings string   `json:"mappings"`
			}
			require.NoError(t, json.Unmarshal([]byte(m), &sm))
			assert.Equal(t, 3, sm.Version)
			assert.NotEmpty(t, sm.Mappings)
			assert.True(t, slices.ContainsFunc(sm.Sources, func(s string) bool { return strings.Contains(s, "react-dom") }), "the map leads to react-dom's sources: %v", sm.Sources)
			assert.Less(t, len(body), 2*1024*1024, "react-dom's chunk comes as the optimizer wrote it (0.9 MB), not as 3 MB")
		}
	}
	assert.GreaterOrEqual(t, deps, 3, "the page imports optimized dependencies with maps: %v", slices.Collect(maps.Keys(bodies)))
}

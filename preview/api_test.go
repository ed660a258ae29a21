package preview_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
	"github.com/vitehost/vitehost/preview/storetest"
	"github.com/vitehost/vitehost/sandbox"
)

func TestMain(m *testing.M) {
	if runTestNode() {
		return
	}
	os.Exit(testenv.Main(m))
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// apiResponse is the union of the API's answers.
type apiResponse struct {
	Success      bool                      `json:"success"`
	SessionID    string                    `json:"sessionId"`
	PreviewURL   string                    `json:"previewUrl"`
	WSURL        string                    `json:"wsUrl"`
	Status       string                    `json:"status"`
	ExpiresAt    int64                     `json:"expiresAt"`
	Created      *bool                     `json:"created"`
	Updated      []string                  `json:"updated"`
	Ignored      []string                  `json:"ignored"`
	HMRTriggered bool                      `json:"hmrTriggered"`
	HMR          preview.HMR               `json:"hmr"`
	Dependencies *preview.DependencyChange `json:"dependencies"`
	Error        *apiError                 `json:"error"`
	Warnings     []preview.Warning         `json:"warnings"`
	Raw          json.RawMessage           `json:"-"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func call(t *testing.T, h http.Handler, method, path, token string, body any) (int, apiResponse) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Host = "localhost:8080"
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out apiResponse
	raw := rec.Body.Bytes()
	require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	out.Raw = raw
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	return rec.Code, out
}

// tree lists every path under dir (relative), for before/after comparisons.
func tree(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// TestAPIRejectsBadInput sends every kind of bad request to a manager and
// checks the status, the error code, and that nothing was written anywhere
// and no process was started.
func TestAPIRejectsBadInput(t *testing.T) {
	outer := testenv.TempDir(t)
	base := filepath.Join(outer, "base")
	m, err := preview.New(&preview.Options{
		PublicURL: "http://localhost:8080",
		BaseDir:   base,
		Token:     "s3cret",
		Logger:    quietLogger(),
		// Never reached: every request here fails validation first.
		InstallCommand: []string{"false"},
	})
	require.NoError(t, err)
	defer m.Close(context.Background())
	api := m.API()
	before := tree(t, outer)

	file := func(name, content string) map[string]any { return map[string]any{"name": name, "content": content} }
	files := func(fs ...map[string]any) map[string]any { return map[string]any{"files": fs} }
	many := make([]map[string]any, 10000)
	for i := range many {
		many[i] = file(fmt.Sprintf("src/f%d.ts", i), "x")
	}
	unknown := preview.NewID()

	tests := []struct {
		name, method, path, token string
		body                      any
		status                    int
		code                      string
	}{
		{"dot dot", "POST", "/kontext/preview", "s3cret", files(file("../x", "a")), 400, "bad_path"},
		{"absolute", "POST", "/kontext/preview", "s3cret", files(file("/etc/passwd", "a")), 400, "bad_path"},
		{"dot dot inside", "POST", "/kontext/preview", "s3cret", files(file("a/../../x", "a")), 400, "bad_path"},
		{"NUL", "POST", "/kontext/preview", "s3cret", files(file("src/a\x00.ts", "a")), 400, "bad_path"},
		{"windows drive", "POST", "/kontext/preview", "s3cret", files(file("C:\\x", "a")), 400, "bad_path"},
		{"node_modules", "POST", "/kontext/preview", "s3cret", files(file("node_modules/react/index.js", "a")), 400, "bad_path"},
		{"10 MB file", "POST", "/kontext/preview", "s3cret", files(file("big.txt", strings.Repeat("x", 10<<20))), 400, "too_large"},
		{"10 MB base64 file", "POST", "/kontext/preview", "s3cret", files(map[string]any{"name": "a.png", "encoding": "base64", "content": base64.StdEncoding.EncodeToString(make([]byte, 10<<20))}), 400, "too_large"},
		{"10000 files", "POST", "/kontext/preview", "s3cret", map[string]any{"files": many}, 400, "too_large"},
		{"git dependency", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "packageJson": map[string]any{"dependencies": map[string]string{"dep": "git+https://github.com/a/b.git"}}}, 400, "bad_dependency"},
		{"file dependency", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "packageJson": map[string]any{"dependencies": map[string]string{"dep": "file:.."}}}, 400, "bad_dependency"},
		{"package.json file with url", "POST", "/kontext/preview", "s3cret", files(file("package.json", `{"dependencies":{"x":"https://evil.example/x.tgz"}}`)), 400, "bad_dependency"},
		{"malformed JSON", "POST", "/kontext/preview", "s3cret", `{"files": [`, 400, "bad_json"},
		{"JSON of the wrong shape", "POST", "/kontext/preview", "s3cret", `{"files": "x"}`, 400, "bad_json"},
		{"bad base64", "POST", "/kontext/preview", "s3cret", files(map[string]any{"name": "a.png", "encoding": "base64", "content": "!!!"}), 400, "bad_encoding"},
		{"bad session id", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "sessionId": "../../etc"}, 400, "bad_id"},
		{"uppercase session id", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "sessionId": strings.ToUpper(unknown)}, 400, "bad_id"},
		{"session id with a dot", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "sessionId": "a.b"}, 400, "bad_id"},
		{"session id too long for a DNS label", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "sessionId": strings.Repeat("a", 56)}, 400, "bad_id"},
		{"session id with a leading hyphen", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "sessionId": "-abc"}, 400, "bad_id"},
		{"vite below 4.5", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "packageJson": map[string]any{"devDependencies": map[string]string{"vite": "4.4.9"}}}, 400, "vite_version"},
		{"vite 3 range", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "packageJson": map[string]any{"devDependencies": map[string]string{"vite": "^3.2.0"}}}, 400, "vite_version"},
		{"neither vite nor a framework", "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{}, "packageJson": map[string]any{"dependencies": map[string]string{"lodash": "^4.17.21"}}}, 400, "bad_dependency"},
		{"path deeper than the quota", "POST", "/kontext/preview", "s3cret", files(file(strings.Repeat("d/", 16)+"x.ts", "a")), 413, "quota_exceeded"},
		{"no token", "POST", "/kontext/preview", "", files(file("src/App.tsx", "a")), 401, "unauthorized"},
		{"wrong token", "POST", "/kontext/preview", "s3cres", files(file("src/App.tsx", "a")), 401, "unauthorized"},
		{"wrong token on status", "GET", "/kontext/preview/" + unknown, "nope", nil, 401, "unauthorized"},
		{"unknown id: status", "GET", "/kontext/preview/" + unknown, "s3cret", nil, 404, "not_found"},
		{"unknown id: update", "POST", "/kontext/preview/" + unknown + "/update", "s3cret", files(file("src/App.tsx", "a")), 404, "not_found"},
		{"unknown id: delete", "DELETE", "/kontext/preview/" + unknown, "s3cret", nil, 404, "not_found"},
		{"unknown id: events", "GET", "/kontext/preview/" + unknown + "/events", "s3cret", nil, 404, "not_found"},
		{"no token on events", "GET", "/kontext/preview/" + unknown + "/events", "", nil, 401, "unauthorized"},
		{"bad id: status", "GET", "/kontext/preview/x..y", "s3cret", nil, 400, "bad_id"},
		{"upper-case id: status", "GET", "/kontext/preview/ABC123", "s3cret", nil, 400, "bad_id"},
		{"client id: status", "GET", "/kontext/preview/abc123", "s3cret", nil, 404, "not_found"},
		{"uuid: status", "GET", "/kontext/preview/3fa85f64-5717-4562-b3fc-2c963f66afa6", "s3cret", nil, 404, "not_found"},
		{"bad path in update", "POST", "/kontext/preview/" + unknown + "/update", "s3cret", files(file("../../x", "a")), 400, "bad_path"},
		{"bad delete path", "POST", "/kontext/preview/" + unknown + "/update", "s3cret", map[string]any{"files": []any{}, "delete": []string{"/etc/passwd"}}, 400, "bad_path"},
		{"unknown endpoint", "GET", "/kontext/preview/" + unknown + "/files", "s3cret", nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, resp := call(t, api, tt.method, tt.path, tt.token, tt.body)
			assert.Equal(t, tt.status, status, "body: %s", resp.Raw)
			assert.False(t, resp.Success)
			require.NotNil(t, resp.Error, "body: %s", resp.Raw)
			assert.Equal(t, tt.code, resp.Error.Code, "message: %s", resp.Error.Message)
			assert.NotEmpty(t, resp.Error.Message)
			assert.Equal(t, before, tree(t, outer), "nothing was written")
			assert.Empty(t, testenv.Processes(), "no process was started")
		})
	}
	assert.Equal(t, 0, m.NumSessions())
}

func TestSessionLimit(t *testing.T) {
	m, err := preview.New(&preview.Options{
		PublicURL: "http://localhost:8080",
		BaseDir:   testenv.TempDir(t),
		Limits:    preview.Limits{MaxSessions: 1},
		Logger:    quietLogger(),
		// The first create hangs in its install; the second finds the limit.
		InstallCommand: []string{"sh", "-c", "sleep 30"},
		ResolveCommand: fakeResolve(t),
	})
	require.NoError(t, err)
	api := m.API()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequest("POST", "/kontext/preview", strings.NewReader(`{"files":[]}`))
		req.Header.Set("Content-Type", "application/json")
		api.ServeHTTP(httptest.NewRecorder(), req)
	}()
	require.Eventually(t, func() bool { return m.NumSessions() == 1 }, wait, pollEvery)
	status, resp := call(t, api, "POST", "/kontext/preview", "", map[string]any{"files": []any{}})
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "session_limit", resp.Error.Code)
	// Close stops the hanging create and its install.
	require.NoError(t, m.Close(context.Background()))
	<-done
	assert.Empty(t, testenv.Processes())
}

func TestPublicURLs(t *testing.T) {
	for _, tt := range []struct{ public, preview, ws string }{
		{"https://jsbundler.example.com", "https://preview-ID.jsbundler.example.com", "wss://preview-ID.jsbundler.example.com/hmr"},
		{"http://localhost:8080", "http://preview-ID.localhost:8080", "ws://preview-ID.localhost:8080/hmr"},
		{"https://example.com:8443/", "https://preview-ID.example.com:8443", "wss://preview-ID.example.com:8443/hmr"},
	} {
		m, err := preview.New(&preview.Options{PublicURL: tt.public, BaseDir: testenv.TempDir(t), Logger: quietLogger()})
		require.NoError(t, err)
		assert.Equal(t, tt.preview, m.PreviewURL("ID"))
		assert.Equal(t, tt.ws, m.WSURL("ID"))
		require.NoError(t, m.Close(context.Background()))
	}
	_, err := preview.New(&preview.Options{PublicURL: "jsbundler.example.com"})
	assert.ErrorContains(t, err, "absolute http or https URL")
}

func TestOneManagerPerBaseDir(t *testing.T) {
	dir := testenv.TempDir(t)
	m, err := preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: dir, Logger: quietLogger()})
	require.NoError(t, err)
	_, err = preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: dir, Logger: quietLogger()})
	assert.ErrorContains(t, err, "locked")
	require.NoError(t, m.Close(context.Background()))
	require.NoError(t, m.Close(context.Background()), "Close is idempotent")
	m2, err := preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: dir, Logger: quietLogger()})
	require.NoError(t, err, "the lock is released by Close")
	m2.Close(context.Background())
}

func TestRouterHosts(t *testing.T) {
	m, err := preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: testenv.TempDir(t), Logger: quietLogger()})
	require.NoError(t, err)
	defer m.Close(context.Background())
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fallback") })
	router := m.Router(fallback)
	for _, tt := range []struct {
		host   string
		status int
		body   string
	}{
		{"localhost:8080", 200, "fallback"},
		{"other.example.com", 200, "fallback"},
		{"preview-" + preview.NewID() + ".localhost:8080", 404, "Preview not found"},
		{"PREVIEW-" + strings.ToUpper(preview.NewID()) + ".LOCALHOST:8080", 404, "Preview not found"},
		{"preview-bad.localhost:8080", 404, "Preview not found"},
		{"preview-x.evil.com", 200, "fallback"},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		assert.Equal(t, tt.status, rec.Code, tt.host)
		assert.Contains(t, rec.Body.String(), tt.body, tt.host)
	}
}

// fakeNPM returns the fake resolve and install commands of
// testdata/fakenpm, logging to a file of t's, and the gate file: while it
// exists, installs wait.
func fakeNPM(t *testing.T) (resolve, install []string, hold string) {
	t.Helper()
	testenv.LookPath(t, "sh")
	dir := testenv.TempDir(t)
	scripts, err := filepath.Abs(filepath.Join("internal", "deps", "testdata", "fakenpm"))
	require.NoError(t, err)
	log, hold := filepath.Join(dir, "runs"), filepath.Join(dir, "hold")
	return []string{"sh", filepath.Join(scripts, "resolve.sh"), log},
		[]string{"sh", filepath.Join(scripts, "install.sh"), log, hold}, hold
}

func fakeResolve(t *testing.T) []string {
	resolve, _, _ := fakeNPM(t)
	return resolve
}

// newTestManager is a Manager whose npm is fake: nothing it does starts
// Vite.
func newTestManager(t *testing.T, opts preview.Options) *preview.Manager {
	t.Helper()
	resolve, install, _ := fakeNPM(t)
	opts.PublicURL = "http://localhost:8080"
	opts.BaseDir = testenv.TempDir(t)
	if opts.CacheDir == "" {
		opts.CacheDir = testenv.TempDir(t)
	}
	if opts.ResolveCommand == nil {
		opts.ResolveCommand = resolve
	}
	if opts.InstallCommand == nil {
		opts.InstallCommand = install
	}
	opts.Logger = testenv.Logger(t)
	m, err := preview.New(&opts)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// send serves one request to h and returns the status, the decoded answer
// and the headers.
func send(t *testing.T, h http.Handler, req *http.Request) (int, apiResponse, http.Header) {
	t.Helper()
	req.Host = "localhost:8080"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out apiResponse
	if rec.Body.Len() > 0 {
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), "body: %s", rec.Body.Bytes())
	}
	out.Raw = rec.Body.Bytes()
	return rec.Code, out, rec.Header()
}

// TestAPICrossSite checks the rules that keep pages of other sites from
// using the API through their visitors' browsers.
func TestAPICrossSite(t *testing.T) {
	m := newTestManager(t, preview.Options{AllowedOrigins: []string{"https://App.Example.com"}})
	api := m.API()
	// A body that passes the cross-site rules reaches validation: 400.
	const body = `{"files":[{"name":"../x","content":"a"}]}`
	post := func(contentType, origin string) *http.Request {
		req := httptest.NewRequest("POST", "/kontext/preview", strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		return req
	}
	for _, tt := range []struct {
		name, contentType, origin string
		status                    int
		code                      string
	}{
		{"text/plain, as a form or fetch sends without preflight", "text/plain", "", 415, "unsupported_media_type"},
		{"a form", "application/x-www-form-urlencoded", "", 415, "unsupported_media_type"},
		{"multipart", "multipart/form-data; boundary=x", "", 415, "unsupported_media_type"},
		{"no type (a Blob without one)", "", "", 415, "unsupported_media_type"},
		{"JSON", "application/json", "", 400, "bad_path"},
		{"JSON with a charset", "application/json; charset=utf-8", "", 400, "bad_path"},
		{"another site", "application/json", "https://evil.example", 403, "forbidden_origin"},
		{"another site with text/plain", "text/plain", "https://evil.example", 403, "forbidden_origin"},
		{"a preview page", "application/json", "http://preview-abc123.localhost:8080", 403, "forbidden_origin"},
		{"the opaque origin of a sandboxed frame", "application/json", "null", 403, "forbidden_origin"},
		{"the API's own origin", "application/json", "http://localhost:8080", 400, "bad_path"},
		{"an allowed origin", "application/json", "https://app.example.com", 400, "bad_path"},
		{"an allowed origin, its default port written", "application/json", "https://app.example.com:443", 400, "bad_path"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, resp, h := send(t, api, post(tt.contentType, tt.origin))
			assert.Equal(t, tt.status, status, "body: %s", resp.Raw)
			require.NotNil(t, resp.Error, "body: %s", resp.Raw)
			assert.Equal(t, tt.code, resp.Error.Code)
			if strings.HasPrefix(tt.origin, "https://app.example.com") {
				assert.Equal(t, tt.origin, h.Get("Access-Control-Allow-Origin"), "the allowed page may read the answer")
			} else {
				assert.Empty(t, h.Get("Access-Control-Allow-Origin"))
			}
		})
	}

	// GET and DELETE carry no body, but a page of another site is refused
	// all the same.
	req := httptest.NewRequest("DELETE", "/kontext/preview/abc123", nil)
	req.Header.Set("Origin", "https://evil.example")
	status, resp, _ := send(t, api, req)
	assert.Equal(t, 403, status)
	assert.Equal(t, "forbidden_origin", resp.Error.Code)

	// The preflight of an allowed page is granted, another one's is not.
	preflight := func(origin string) *http.Request {
		req := httptest.NewRequest("OPTIONS", "/kontext/preview", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		return req
	}
	status, _, h := send(t, api, preflight("https://app.example.com"))
	assert.Equal(t, 204, status)
	assert.Equal(t, "https://app.example.com", h.Get("Access-Control-Allow-Origin"))
	assert.Contains(t, h.Get("Access-Control-Allow-Headers"), "Content-Type")
	assert.Contains(t, h.Get("Access-Control-Allow-Methods"), "POST")
	status, resp, h = send(t, api, preflight("https://evil.example"))
	assert.Equal(t, 403, status)
	assert.Equal(t, "forbidden_origin", resp.Error.Code)
	assert.Empty(t, h.Get("Access-Control-Allow-Origin"))

	_, err := preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: testenv.TempDir(t), AllowedOrigins: []string{"app.example.com"}})
	assert.ErrorContains(t, err, "AllowedOrigins")
	assert.Empty(t, testenv.Processes(), "none of this started anything")
}

// TestAPIQuotaAtCreate counts the template's files with the client's.
func TestAPIQuotaAtCreate(t *testing.T) {
	m := newTestManager(t, preview.Options{Limits: preview.Limits{MaxSessionFiles: 5, MaxSessionDirs: 2}})
	api := m.API()
	file := func(name string) map[string]any { return map[string]any{"name": name, "content": "x"} }
	// The template has index.html, src/App.tsx, src/main.tsx, src/index.css.
	status, resp := call(t, api, "POST", "/kontext/preview", "", map[string]any{"files": []any{file("a.ts"), file("b.ts")}})
	assert.Equal(t, 413, status, "body: %s", resp.Raw)
	assert.Equal(t, "quota_exceeded", resp.Error.Code)
	assert.Contains(t, string(resp.Raw), `"limit":"files"`)
	assert.Contains(t, resp.Error.Message, "at most 5")
	status, resp = call(t, api, "POST", "/kontext/preview", "", map[string]any{"files": []any{file("x/y/z.ts")}})
	assert.Equal(t, 413, status, "body: %s", resp.Raw)
	assert.Contains(t, string(resp.Raw), `"limit":"directories"`, "src, x and x/y")
	assert.Equal(t, 0, m.NumSessions())
}

// TestAPIErrorsShowNoHostPaths makes npm fail in the ways that print
// paths and addresses: the client gets npm's code and reason only.
func TestAPIErrorsShowNoHostPaths(t *testing.T) {
	cache := testenv.TempDir(t)
	m := newTestManager(t, preview.Options{CacheDir: cache})
	api := m.API()
	create := func(dep string) (int, apiResponse) {
		return call(t, api, "POST", "/kontext/preview", "", map[string]any{"files": []any{},
			"packageJson": map[string]any{"dependencies": map[string]string{dep: "1.0.0", "vite": "^8.0.0"}}})
	}
	status, resp := create("fail-me")
	assert.Equal(t, 400, status, "a version that does not exist is the client's mistake: %s", resp.Raw)
	assert.Equal(t, "bad_dependency", resp.Error.Code)
	assert.Equal(t, "the dependencies cannot be resolved: npm ETARGET: No matching version found for fail-me@1.0.0.", resp.Error.Message)

	for _, dep := range []string{"nospace-me", "offline-me"} {
		status, resp = create(dep)
		assert.Equal(t, 502, status, "body: %s", resp.Raw)
		assert.Equal(t, "dev_server_failed", resp.Error.Code)
		assert.NotContains(t, resp.Error.Message, cache, "no host path")
		assert.NotContains(t, resp.Error.Message, "/root/", "no host path")
		assert.NotContains(t, resp.Error.Message, "https://", "no registry address")
		assert.NotContains(t, resp.Error.Message, "10.0.0.1", "no address")
		assert.Contains(t, resp.Error.Message, "npm E")
	}
	assert.Equal(t, 0, m.NumSessions(), "failed creates leave no session")
}

// TestAPICreateCancelStopsInstall has a client give up on a create while
// its install runs: the install stops, its processes die, and no session
// is left. Another create of the same set then installs it afresh.
func TestAPICreateCancelStopsInstall(t *testing.T) {
	resolve, install, hold := fakeNPM(t)
	require.NoError(t, os.WriteFile(hold, nil, 0o644)) // installs wait
	m := newTestManager(t, preview.Options{ResolveCommand: resolve, InstallCommand: install})
	srv := httptest.NewServer(m.API())
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/kontext/preview", strings.NewReader(`{"files":[]}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	installing := func() bool {
		for _, p := range testenv.Processes() {
			if strings.HasSuffix(p, " sh") {
				return true
			}
		}
		return false
	}
	require.Eventually(t, installing, wait, pollEvery, "the install runs")
	require.Equal(t, 1, m.NumSessions())
	cancel() // the client goes away
	require.ErrorIs(t, <-done, context.Canceled)
	require.Eventually(t, func() bool { return len(testenv.Processes()) == 0 && m.NumSessions() == 0 }, wait, pollEvery,
		"the install is stopped and the session removed: %v", testenv.Processes())
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, m.Metrics(), ""), `vitehost_preview_install_duration_seconds_count{result="canceled"} 1`)
	}, wait, pollEvery, "the install's end is measured")
}

// scrape returns the text of the metrics handler h.
func scrape(t *testing.T, h http.Handler, token string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, 200, rec.Code, "%s", rec.Body.String())
	return rec.Body.String()
}

func TestHealthAndReadiness(t *testing.T) {
	redis := storetest.Redis(t)
	store, err := redisstore.New(redis.URL("", 0)+"?dial_timeout=500ms&max_retries=0", &redisstore.Options{Logger: testenv.Logger(t)})
	require.NoError(t, err)
	defer store.Close()
	m := newTestManager(t, preview.Options{Store: store})
	ready := func() (int, map[string]any) {
		rec := httptest.NewRecorder()
		m.Readyz().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var out map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out), "%s", rec.Body.String())
		return rec.Code, out
	}
	rec := httptest.NewRecorder()
	m.Healthz().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, 200, rec.Code)

	status, out := ready()
	assert.Equal(t, 503, status, "the template's dependencies are not installed: %v", out)
	assert.Equal(t, false, out["ready"])
	assert.Equal(t, map[string]any{"store": "ok", "template": "the template's dependencies are not installed yet", "sandbox": "ok"}, out["checks"])
	assert.Contains(t, out["sandbox"], "bubblewrap")

	// The checks' results are reused for a few seconds (readiness.go).
	require.NoError(t, m.Prepare(context.Background()))
	require.Eventually(t, func() bool { status, out = ready(); return status == 200 }, wait, pollEvery)
	assert.Equal(t, true, out["ready"])

	redis.Stop()
	require.Eventually(t, func() bool { status, out = ready(); return status == 503 }, wait, pollEvery)
	assert.Equal(t, map[string]any{"store": "unreachable", "template": "ok", "sandbox": "ok"}, out["checks"], "what is wrong, without the address")
	require.NoError(t, redis.Start(context.Background()))
	require.Eventually(t, func() bool { s, _ := ready(); return s == 200 }, wait, pollEvery)

	require.NoError(t, m.Close(context.Background()))
	rec = httptest.NewRecorder()
	m.Healthz().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, 503, rec.Code)
	status, _ = ready()
	assert.Equal(t, 503, status)
}

// TestMetricsCountAPIAnswers checks the counters of the API's answers and
// that the metrics need the token when there is one; two Managers in one
// process have registries of their own.
func TestMetricsCountAPIAnswers(t *testing.T) {
	m := newTestManager(t, preview.Options{Token: "s3cret"})
	other := newTestManager(t, preview.Options{})
	api := m.API()
	call(t, api, "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{map[string]any{"name": "../x", "content": "a"}}})
	call(t, api, "POST", "/kontext/preview", "s3cret", map[string]any{"files": []any{map[string]any{"name": "/x", "content": "a"}}})
	call(t, api, "GET", "/kontext/preview/abc123", "s3cret", nil)
	call(t, api, "GET", "/kontext/preview/abc123", "wrong", nil)

	rec := httptest.NewRecorder()
	m.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Equal(t, 401, rec.Code, "the metrics are behind the token")
	text := scrape(t, m.Metrics(), "s3cret")
	for _, line := range []string{
		`vitehost_preview_api_requests_total{code="bad_path",operation="create"} 2`,
		`vitehost_preview_api_requests_total{code="not_found",operation="status"} 1`,
		`vitehost_preview_api_requests_total{code="unauthorized",operation="status"} 1`,
		`vitehost_preview_sessions{status="active"} 0`,
		`vitehost_preview_websocket_tunnels 0`,
		`vitehost_preview_installs{state="queued"} 0`,
		`go_goroutines `,
	} {
		assert.Contains(t, text, line)
	}
	assert.NotContains(t, scrape(t, other.Metrics(), ""), `operation="create"`, "another Manager counts its own")
}

// TestReadinessWithoutSandbox checks what /readyz says when bubblewrap
// cannot start a sandbox (a Bwrap that is not there) and without the
// sandbox.
func TestReadinessWithoutSandbox(t *testing.T) {
	_, err := preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: testenv.TempDir(t),
		Sandbox: sandbox.Config{Bwrap: "/nonexistent/bwrap"}, Logger: quietLogger()})
	require.Error(t, err, "New refuses to run previews without the sandbox it cannot start")
	assert.ErrorContains(t, err, "NoSandbox")

	m := newTestManager(t, preview.Options{NoSandbox: true})
	rec := httptest.NewRecorder()
	m.Readyz().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var out map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	assert.NotContains(t, out["checks"], "sandbox")
	assert.Contains(t, out["sandbox"], "off")
}

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
	Success      bool            `json:"success"`
	SessionID    string          `json:"sessionId"`
	PreviewURL   string          `json:"previewUrl"`
	WSURL        string          `json:"wsUrl"`
	Status       string          `json:"status"`
	ExpiresAt    int64           `json:"expiresAt"`
	Updated      []string        `json:"updated"`
	Ignored      []string        `json:"ignored"`
	HMRTriggered bool            `json:"hmrTriggered"`
	HMR          preview.HMR     `json:"hmr"`
	Error        *apiError       `json:"error"`
	Raw          json.RawMessage `json:"-"`
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
	outer := t.TempDir()
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
		{"no token", "POST", "/kontext/preview", "", files(file("src/App.tsx", "a")), 401, "unauthorized"},
		{"wrong token", "POST", "/kontext/preview", "s3cres", files(file("src/App.tsx", "a")), 401, "unauthorized"},
		{"wrong token on status", "GET", "/kontext/preview/" + unknown, "nope", nil, 401, "unauthorized"},
		{"unknown id: status", "GET", "/kontext/preview/" + unknown, "s3cret", nil, 404, "not_found"},
		{"unknown id: update", "POST", "/kontext/preview/" + unknown + "/update", "s3cret", files(file("src/App.tsx", "a")), 404, "not_found"},
		{"unknown id: delete", "DELETE", "/kontext/preview/" + unknown, "s3cret", nil, 404, "not_found"},
		{"unknown id: events", "GET", "/kontext/preview/" + unknown + "/events", "s3cret", nil, 404, "not_found"},
		{"no token on events", "GET", "/kontext/preview/" + unknown + "/events", "", nil, 401, "unauthorized"},
		{"bad id: status", "GET", "/kontext/preview/x..y", "s3cret", nil, 400, "bad_id"},
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
		BaseDir:   t.TempDir(),
		Limits:    preview.Limits{MaxSessions: 1},
		Logger:    quietLogger(),
		// The first create hangs in its install; the second finds the limit.
		InstallCommand: []string{"sh", "-c", "sleep 30"},
	})
	require.NoError(t, err)
	api := m.API()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequest("POST", "/kontext/preview", strings.NewReader(`{"files":[]}`))
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
		m, err := preview.New(&preview.Options{PublicURL: tt.public, BaseDir: t.TempDir(), Logger: quietLogger()})
		require.NoError(t, err)
		assert.Equal(t, tt.preview, m.PreviewURL("ID"))
		assert.Equal(t, tt.ws, m.WSURL("ID"))
		require.NoError(t, m.Close(context.Background()))
	}
	_, err := preview.New(&preview.Options{PublicURL: "jsbundler.example.com"})
	assert.ErrorContains(t, err, "absolute http or https URL")
}

func TestOneManagerPerBaseDir(t *testing.T) {
	dir := t.TempDir()
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
	m, err := preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: t.TempDir(), Logger: quietLogger()})
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

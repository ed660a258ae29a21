package preview_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawGet sends a GET whose request target is exactly target (no client
// cleans or encodes it) to the preview host of previewURL, and returns
// the status and body.
func (s *service) rawGet(t *testing.T, previewURL, target string) (int, string) {
	t.Helper()
	u, err := url.Parse(previewURL)
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", s.addr, wait)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	_, err = fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\nConnection: close\r\n\r\n", target, u.Host)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "target %q", target)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// deniedFileTargets are the shapes of Vite's file-read advisories (see
// fsdeny.go) aimed at the project's .env, its key and its git directory,
// and at /@fs/ paths outside it.
var deniedFileTargets = []string{
	"/.env", "/.env?raw", "/.env?raw??", "/.env?import&raw??", "/.env?import&raw", "/.env?url", "/.env?inline",
	"/.env.local?raw", "/%2eenv?raw", "/%252eenv?raw", "/.ENV?raw", "/.env/.", "/.env.?raw", "/.env::$DATA?raw",
	"/.env%00.js", "/src/..%2f.env?raw", "/src/%2e%2e/.env?raw", "/src\\..\\.env?raw", "/.env?.svg?.wasm?init",
	"/@fs/project/.env?raw", "/@fs/project/.env?import&raw??", "/@fs/project/src/#/../../.env?raw",
	"/certs/key.pem", "/certs/key.pem?raw", "/certs/KEY.PEM?raw", "/.git/config", "/.git/config?raw",
	"/@fs/etc/passwd", "/@fs/etc/passwd?raw", "/@fs/etc/passwd?import&raw??", "/@fs/project/../etc/passwd?raw",
	"//@fs/etc/passwd?raw", "/@fs/proc/self/environ?raw", "/@fs/project/#/../../etc/passwd",
}

// TestRouterRefusesFileReadAdvisories asks a running session, through the
// router, for its own .env, key and git config, and for files outside it,
// in every shape of the advisories: each answers 403, and nothing of the
// files comes back; the page and its modules are still served. Once on the
// template (Vite 8), once on open-lovable's template (Vite 4.5, which the
// advisories affect).
func TestRouterRefusesFileReadAdvisories(t *testing.T) {
	h := startHostile(t)
	t.Run("vite8", func(t *testing.T) { refusesFileReads(t, h, []any{benignApp}, nil, "/src/App.tsx") })
	t.Run("vite4.5", func(t *testing.T) {
		files, pkg := readProject(t, "testdata/realprojects/openlovable")
		refusesFileReads(t, h, files, pkg, "/src/App.jsx")
	})
}

// refusesFileReads creates a session of project (and pkg, its
// package.json, when not nil) with secrets of its own, and attacks it.
func refusesFileReads(t *testing.T, h *hostile, project []any, pkg []byte, module string) {
	secret := randomMarker("DOTENVSECRET")
	files := append(slices.Clone(project),
		file(".env", "VITE_SECRET="+secret+"\n"),
		file(".env.local", "VITE_LOCAL="+secret+"\n"),
		file("certs/key.pem", "-----BEGIN PRIVATE KEY-----\n"+secret+"\n-----END PRIVATE KEY-----\n"),
		file(".git/config", "[remote \"origin\"]\n\turl = https://"+secret+"@example.com/x.git\n"),
	)
	body := map[string]any{"files": files}
	if pkg != nil {
		body["packageJson"] = json.RawMessage(pkg)
	}
	status, created := h.svc.createLong(t, body)
	if status == 400 && strings.Contains(string(created.Raw), "bad_path") {
		// A .git directory is refused at the API: keep the rest.
		body["files"] = files[:len(files)-1]
		status, created = h.svc.createLong(t, body)
	}
	require.Equal(t, 200, status, "body: %s", created.Raw)

	code, page := h.svc.rawGet(t, created.PreviewURL, "/")
	require.Equal(t, 200, code, page)
	code, app := h.svc.rawGet(t, created.PreviewURL, module)
	require.Equal(t, 200, code, app)

	for _, target := range deniedFileTargets {
		code, body := h.svc.rawGet(t, created.PreviewURL, target)
		assert.Contains(t, []int{400, 403}, code, "%s: %s", target, body)
		assert.NotContains(t, body, secret, target)
		for _, s := range h.all() {
			assert.NotContains(t, body, s.value, "%s: %s", target, s.name)
		}
	}
}

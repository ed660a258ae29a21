package vite_test

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

// builtNuxt and builtSvelteKit build the fixtures once per test binary.
func builtNuxt(t *testing.T) string { return testenv.Built(t, "nuxt4", "nuxi", "build") }
func builtSvelteKit(t *testing.T) string {
	return testenv.Built(t, "sveltekit2", "vite", "build")
}
func builtAstro(t *testing.T) string {
	return testenv.Built(t, "astro5", "astro", "build", "--config", "astro.prod.config.mjs")
}
func builtReactRouter(t *testing.T) string {
	return testenv.Built(t, "reactrouter7", "react-router", "build")
}

// TestManifestOfRealBuild runs vite build --manifest on the vite8-prod
// fixture: the tags of its HTML entry are the ones Vite wrote into the
// built index.html, and the manifest is the one the unit tests read from
// testdata.
func TestManifestOfRealBuild(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Built(t, "vite8-prod", "vite", "build", "--manifest")
	dist := os.DirFS(filepath.Join(dir, "dist"))
	m, err := vite.ReadManifest(dist, nil)
	require.NoError(t, err)

	html, err := os.ReadFile(filepath.Join(dir, "dist", "index.html"))
	require.NoError(t, err)
	var want []string
	for _, tag := range regexp.MustCompile(`<(script|link)\b[^>]*>`).FindAllString(string(html), -1) {
		tag = strings.TrimSuffix(tag, "/>") // Vite writes no self-closing tags; keep the test honest if it does
		if strings.HasPrefix(tag, "<script") {
			tag += "</script>"
		}
		want = append(want, tag)
	}
	require.NotEmpty(t, want)
	got, err := m.Tags("", "index.html")
	require.NoError(t, err)
	assert.Equal(t, strings.Join(want, "\n"), string(got), "the tags Vite put into index.html")

	fresh, err := os.ReadFile(filepath.Join(dir, "dist", ".vite", "manifest.json"))
	require.NoError(t, err)
	committed, err := os.ReadFile(filepath.Join("testdata", "vite8-prod", "manifest.json"))
	require.NoError(t, err)
	var a, b any
	require.NoError(t, json.Unmarshal(fresh, &a))
	require.NoError(t, json.Unmarshal(committed, &b))
	assert.Equal(t, a, b, "testdata/vite8-prod/manifest.json is Vite's output for the fixture: copy the fresh one there")

	// Integrity computed from the built files.
	m, err = vite.ReadManifest(dist, &vite.ManifestOptions{Integrity: true})
	require.NoError(t, err)
	got, err = m.Tags("", "index.html", "src/theme.css")
	require.NoError(t, err)
	assert.Equal(t, 7, strings.Count(string(got), ` integrity="sha384-`))
}

// TestStartBuilt runs the built servers of Nuxt, SvelteKit (adapter-node),
// Astro (@astrojs/node standalone) and React Router (react-router-serve):
// they serve the server-rendered app on loopback, come back after a crash,
// and leave no process after Stop.
func TestStartBuilt(t *testing.T) {
	testenv.Short(t)
	for _, tc := range []struct {
		name  string
		build func(*testing.T) string
		fw    vite.Framework
		text  string
	}{
		{"nuxt4", builtNuxt, vite.Nuxt, "Hello from Nuxt"},
		{"sveltekit2", builtSvelteKit, vite.SvelteKit, "Hello from SvelteKit"},
		{"astro5", builtAstro, vite.Astro, "Rendered on the server"},
		{"reactrouter7", builtReactRouter, vite.ReactRouter, "Hello from React Router"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.build(t)
			fw, err := vite.DetectBuild(dir)
			require.NoError(t, err)
			require.Equal(t, tc.fw, fw)
			s := startBuilt(t, dir, nil)
			assert.Equal(t, tc.fw, s.Framework())
			tg := s.Targets()
			require.NotNil(t, tg.HTTP)
			assert.Nil(t, tg.HMR, "no HMR in production")
			assert.Equal(t, "127.0.0.1", tg.HTTP.Hostname())
			code, body := get(t, tg.HTTP.String()+"/")
			require.Equal(t, 200, code)
			assert.Contains(t, body, tc.text, "server-rendered")
			for _, l := range listeningPorts(t, s.PID()) {
				assert.True(t, strings.HasPrefix(l, "127.0.0.1:"), "the server listens on loopback only: %s", l)
			}
			checkHashedFiles(t, s, body, tc.fw != vite.Astro)
			assert.NoDirExists(t, filepath.Join(dir, ".vitehost"), "no hot file in production")

			// A crash: the server is restarted and answers again.
			changes, cancel := s.Subscribe()
			defer cancel()
			pid := s.PID()
			require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
			waitTargets(t, changes, func(tg hotfile.Targets) bool { return tg.HTTP == nil })
			waitTargets(t, changes, func(tg hotfile.Targets) bool { return tg.HTTP != nil })
			assert.NotEqual(t, pid, s.PID())
			code, body = get(t, s.Targets().HTTP.String()+"/")
			require.Equal(t, 200, code)
			assert.Contains(t, body, tc.text)

			pid = s.PID()
			ctx, cancelStop := context.WithTimeout(context.Background(), long)
			defer cancelStop()
			require.NoError(t, s.Stop(ctx))
			pids, err := vite.GroupPIDs(pid)
			require.NoError(t, err)
			assert.Empty(t, pids, "Stop ends the whole group")
		})
	}
}

// hashedFileRE finds the hashed files a page names, at / or relative to it
// (SvelteKit's "./_app/immutable/...").
var hashedFileRE = regexp.MustCompile(`"\.?(/(?:_nuxt|_app/immutable|_astro|assets)/[^"?#]+)"`)

// checkHashedFiles fetches the hashed files that page names from the built
// server and through s.HashedFiles: the same bytes and type, served by Go
// (the next handler answers 418) with the immutable Cache-Control. The page
// must name one when some is true (the Astro fixture's page has no client
// code).
func checkHashedFiles(t *testing.T, s *vite.Server, page string, some bool) {
	t.Helper()
	srv := httptest.NewServer(s.HashedFiles(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	defer srv.Close()
	matches := hashedFileRE.FindAllStringSubmatch(page, -1)
	if some {
		require.NotEmpty(t, matches, "the page names hashed files: %s", page)
	}
	for _, m := range matches {
		res, err := http.Get(s.Targets().HTTP.String() + m[1])
		require.NoError(t, err)
		want, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, m[1])
		res2, err := http.Get(srv.URL + m[1])
		require.NoError(t, err)
		got, err := io.ReadAll(res2.Body)
		res2.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res2.StatusCode, "%s served by Go", m[1])
		assert.Equal(t, want, got, m[1])
		assert.Equal(t, mediaType(res.Header.Get("Content-Type")), mediaType(res2.Header.Get("Content-Type")), m[1])
		assert.Equal(t, "public, max-age=31536000, immutable", res2.Header.Get("Cache-Control"), m[1])
	}
}

// mediaType returns the media type of a Content-Type, with Express's
// application/javascript as text/javascript, which RFC 9239 made the one
// name of JavaScript.
func mediaType(ct string) string {
	mt, _, _ := mime.ParseMediaType(ct)
	if mt == "application/javascript" {
		return "text/javascript"
	}
	return mt
}

// TestStartBuiltSocket runs SvelteKit's and Nuxt's built servers on a Unix
// socket, behind ssrproxy: no TCP listener at all.
func TestStartBuiltSocket(t *testing.T) {
	testenv.Short(t)
	for _, tc := range []struct {
		name  string
		build func(*testing.T) string
		text  string
	}{
		{"sveltekit2", builtSvelteKit, "Hello from SvelteKit"},
		{"nuxt4", builtNuxt, "Hello from Nuxt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(testenv.TempDir(t), "sock")
			s := startBuilt(t, tc.build(t), &vite.BuiltOptions{SocketDir: sock})
			tg := s.Targets()
			require.Equal(t, hotfile.UnixScheme, tg.HTTP.Scheme)
			assert.Equal(t, filepath.Join(sock, "http.sock"), tg.HTTP.Path)
			assert.Empty(t, listeningPorts(t, s.PID()), "no TCP listener")

			p := ssrproxy.New(s, nil)
			defer p.Close()
			front := httptest.NewServer(p)
			defer front.Close()
			code, body := get(t, front.URL+"/")
			require.Equal(t, 200, code)
			assert.Contains(t, body, tc.text)

			if tc.name == "sveltekit2" {
				// A form POST of the page, its Origin the Go app's: SvelteKit
				// sees the public origin (X-Forwarded-*) and lets it through
				// its CSRF check to the route, which has no action.
				req, err := http.NewRequest("POST", front.URL+"/", strings.NewReader("a=1"))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", front.URL)
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				assert.NotContains(t, string(b), "Cross-site POST form submissions are forbidden")
				assert.NotEqual(t, http.StatusForbidden, res.StatusCode, string(b))
			}
		})
	}
}

// TestBuiltParentKilled: a built server dies with its parent.
func TestBuiltParentKilled(t *testing.T) {
	testenv.Short(t)
	killParent(t, "built:"+builtSvelteKit(t))
}

func TestStartBuiltRefuses(t *testing.T) {
	empty := t.TempDir()
	_, err := vite.StartBuilt(context.Background(), empty, nil)
	require.ErrorIs(t, err, vite.ErrNoBuildOutput)

	astro := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(astro, "dist", "server"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(astro, "dist", "server", "entry.mjs"), nil, 0o644))
	fw, err := vite.DetectBuild(astro)
	require.NoError(t, err)
	assert.Equal(t, vite.Astro, fw)
	for _, o := range []*vite.BuiltOptions{
		{Host: "0.0.0.0"},
		{Host: "192.168.1.2"},
		{SocketDir: t.TempDir()}, // Astro's standalone server has no socket option
		{Port: 70000},
		{Framework: vite.Vite},
	} {
		_, err := vite.StartBuilt(context.Background(), astro, o)
		assert.ErrorIs(t, err, vite.ErrInvalidOptions, "%+v", o)
	}
	_, err = vite.StartBuilt(context.Background(), astro, &vite.BuiltOptions{Framework: vite.ReactRouter})
	assert.ErrorIs(t, err, vite.ErrNotInstalled)
}

// startBuilt starts the built server in dir and stops it when the test ends.
func startBuilt(t *testing.T, dir string, opts *vite.BuiltOptions) *vite.Server {
	t.Helper()
	o := vite.BuiltOptions{}
	if opts != nil {
		o = *opts
	}
	o.Logger = testLogger(t)
	s, err := vite.StartBuilt(context.Background(), dir, &o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), long)
		defer cancel()
		require.NoError(t, s.Stop(ctx))
	})
	return s
}

// waitTargets waits for a change of targets that ok accepts.
func waitTargets(t *testing.T, changes <-chan hotfile.Targets, ok func(hotfile.Targets) bool) {
	t.Helper()
	deadline := time.After(long)
	for {
		select {
		case tg, open := <-changes:
			require.True(t, open, "the subscription ended")
			if ok(tg) {
				return
			}
		case <-deadline:
			t.Fatal("no such change of the targets")
		}
	}
}

// TestManifestTagsInBrowser loads a page whose tags come from the manifest
// of a real build, with integrity computed from the files and a CSP that
// admits only scripts carrying the page's nonce (and what they import,
// 'strict-dynamic'): Chromium checks both, and the entry's script runs and
// its stylesheets apply.
func TestManifestTagsInBrowser(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Built(t, "vite8-prod", "vite", "build", "--manifest")
	root, err := os.OpenRoot(filepath.Join(dir, "dist"))
	require.NoError(t, err)
	defer root.Close()
	m, err := vite.ReadManifest(root.FS(), &vite.ManifestOptions{Integrity: true})
	require.NoError(t, err)
	const nonce = "bm9uY2UtZm9yLXRlc3Q"
	tags, err := m.Tags(nonce, "src/server-rendered.jsx", "src/theme.css")
	require.NoError(t, err)
	require.Contains(t, string(tags), `integrity="sha384-`)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "script-src 'nonce-"+nonce+"' 'strict-dynamic'; style-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><html><head>`+string(tags)+`</head><body>
<h1 id="go-title">rendered by Go</h1><p id="script"></p><div id="island"></div></body></html>`)
	})
	mux.Handle("/", vite.NewSPA(root.FS(), nil))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	browser := testenv.NewBrowser(t)
	ctx, cancel := context.WithTimeout(browser.Ctx, long)
	defer cancel()
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(srv.URL+"/page")))
	for _, expr := range []string{
		`(document.querySelector("#script")||{}).textContent === "Hello from the script of a Go page"`,
		`(document.querySelector("#island-text")||{}).textContent === "React island of a Go page"`,
		`getComputedStyle(document.querySelector("#go-title")).color === "rgb(30, 60, 200)"`,
		`getComputedStyle(document.documentElement).getPropertyValue("--theme").trim() === "#010203"`, // rgb(1, 2, 3), minified by the build,
	} {
		require.NoError(t, chromedp.Run(ctx, chromedp.Poll(expr, nil, chromedp.WithPollingInterval(20*time.Millisecond))), expr)
	}
}

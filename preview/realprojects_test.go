package preview_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

// realProject is a project of testdata/realprojects, of the shape an AI
// builder or a project generator makes, trimmed to a few components (the
// package.json keeps the generator's runtime and build dependencies, not
// its linters), and what a browser must see of it.
type realProject struct {
	dir   string
	style string   // a JS expression true once the page has its own styles
	file  string   // the file an edit changes
	from  string   // its text that the edit replaces with "Edited by HMR"
	warns []string // the codes of the create answer's warnings
}

var realProjects = []realProject{
	{
		// Lovable: Vite 5.4, @vitejs/plugin-react-swc 3, lovable-tagger,
		// shadcn/ui behind the @/ alias, Tailwind 3 through PostCSS with
		// the theme in CSS variables.
		dir:   "lovable",
		style: `getComputedStyle(document.querySelector("#title")).color === "rgb(15, 23, 42)" && getComputedStyle(document.querySelector("#cta")).backgroundColor === "rgb(15, 23, 42)" && getComputedStyle(document.querySelector("#cta")).borderTopLeftRadius === "6px"`,
		file:  "src/pages/Index.tsx", from: "Welcome to Your Blank App",
		warns: []string{preview.WarnViteAdvisories},
	},
	{
		// bolt.new's Vite template: Vite 5.4, @vitejs/plugin-react 4,
		// Tailwind 3, lucide-react left out of the optimizer.
		dir:   "bolt",
		style: `getComputedStyle(document.querySelector("#title")).color === "rgb(79, 70, 229)" && getComputedStyle(document.querySelector("#title")).fontSize === "30px"`,
		file:  "src/App.tsx", from: "Start prompting (or editing) to see magic happen :)",
		warns: []string{preview.WarnViteAdvisories},
	},
	{
		// open-lovable's sandbox template: Vite 4.5 (^4.3.9), JSX,
		// Tailwind 3, and server.hmr false in its config.
		dir:   "openlovable",
		style: `getComputedStyle(document.querySelector("#title")).color === "rgb(156, 163, 175)" && getComputedStyle(document.body).backgroundColor === "rgb(17, 24, 39)"`,
		file:  "src/App.jsx", from: "Sandbox Ready",
		warns: []string{preview.WarnViteAdvisories},
	},
	{
		// create-vue: Vite 6 (^6.0.11 resolves past 6.4.3: no warning),
		// @vitejs/plugin-vue, scoped styles.
		dir:   "vue",
		style: `getComputedStyle(document.querySelector("#title")).fontSize === "41.6px" && getComputedStyle(document.querySelector("#title")).color !== "rgb(0, 0, 0)"`,
		file:  "src/App.vue", from: "You did it!",
	},
	{
		// create-vite's Svelte 5 template: Vite 6, vite-plugin-svelte 5,
		// svelte.config.js with vitePreprocess.
		dir:   "svelte",
		style: `getComputedStyle(document.querySelector("#title")).color === "rgb(255, 62, 0)"`,
		file:  "src/App.svelte", from: "Vite + Svelte",
	},
	{
		// Tailwind 4 through @tailwindcss/vite, a theme color in @theme.
		dir:   "tailwind4",
		style: `getComputedStyle(document.querySelector("#title")).color === "rgb(18, 52, 86)" && getComputedStyle(document.querySelector("#title")).textDecorationLine === "underline"`,
		file:  "src/App.tsx", from: "Hello Tailwind 4",
	},
	{
		// TanStack Router's file routes: its Vite plugin writes
		// src/routeTree.gen.ts into the project, which main.tsx imports.
		dir:   "tanstack",
		style: `getComputedStyle(document.querySelector("#title")).color === "rgb(220, 38, 38)" && getComputedStyle(document.querySelector("#title")).fontSize === "24px"`,
		file:  "src/routes/index.tsx", from: "Welcome Home!",
	},
	{
		// A pnpm-made project whose dev dependency's peer range (React 18)
		// npm refuses next to React 19 (ERESOLVE); the node's pnpm store
		// installs it as pnpm did for its author, without a warning (with
		// npm commands, it is installed with --legacy-peer-deps and a
		// legacy_peer_deps warning: internal/deps TestDepCachePeerConflict).
		dir:   "pnpmpeers",
		style: `getComputedStyle(document.querySelector("#title")).color === "rgb(37, 99, 235)" && getComputedStyle(document.querySelector("#title")).letterSpacing === "2px"`,
		file:  "src/App.jsx", from: "Made with pnpm",
	},
}

// createLong is a create whose install may take minutes on a cold cache
// (the service's own dependency cache, kept between runs: depsCache).
func (s *service) createLong(t *testing.T, body any) (int, apiResponse) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", s.public+"/kontext/preview", bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: s.client.Transport}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out apiResponse
	require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	out.Raw = raw
	return resp.StatusCode, out
}

// TestRealProjects sends each project of testdata/realprojects to one
// service exactly as a builder's client would (every file, the project's
// package.json as packageJson) and looks at it in Chromium: the page
// renders with the project's own styles, and an edit of a component
// reaches the page by HMR, without a reload.
func TestRealProjects(t *testing.T) {
	testenv.LookPath(t, "bwrap")
	svc := startService(t, preview.Options{})
	browser := testenv.NewBrowser(t)
	for _, p := range realProjects {
		t.Run(p.dir, func(t *testing.T) {
			t.Parallel()
			files, pkg := readProject(t, filepath.Join("testdata", "realprojects", p.dir))
			status, created := svc.createLong(t, map[string]any{"files": files, "packageJson": pkg})
			require.Equal(t, 200, status, "body: %s", created.Raw)
			var codes []string
			for _, w := range created.Warnings {
				codes = append(codes, w.Code)
			}
			assert.ElementsMatch(t, p.warns, codes, "warnings: %s", created.Raw)

			ctx, cancel := chromedp.NewContext(browser.Ctx) // a tab of its own
			defer cancel()
			require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(created.PreviewURL)))
			waitJS(t, ctx, `!!document.querySelector("#title")`, "the first render")
			waitJS(t, ctx, p.style, "the project's own styles")
			require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__realMarker = 42`, nil)))

			src, err := os.ReadFile(filepath.Join("testdata", "realprojects", p.dir, p.file))
			require.NoError(t, err)
			require.Contains(t, string(src), p.from)
			edited := file(p.file, strings.Replace(string(src), p.from, "Edited by HMR", 1))
			status, upd := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": []any{edited}})
			require.Equal(t, 200, status, "body: %s", upd.Raw)
			assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
			waitJS(t, ctx, `document.querySelector("#title")?.textContent.includes("Edited by HMR")`, "the edit on the page")
			assert.Equal(t, 42.0, evalJS[float64](t, ctx, `window.__realMarker`), "HMR, not a reload")
			waitJS(t, ctx, p.style, "the styles after the edit")
			t.Logf("%s: memory peak of its sandbox %s", p.dir, sandboxPeak(created.SessionID))
		})
	}
}

// sandboxPeak reads the memory peak of session id's sandbox from its
// cgroup (v1 or v2), for the log: what real projects need.
func sandboxPeak(id string) string {
	for _, pattern := range []string{
		"/sys/fs/cgroup/memory/vitehost-" + id + "*/memory.max_usage_in_bytes",
		"/sys/fs/cgroup/memory/*/vitehost-" + id + "*/memory.max_usage_in_bytes",
		"/sys/fs/cgroup/memory/*/*/vitehost-" + id + "*/memory.max_usage_in_bytes",
		"/sys/fs/cgroup/vitehost-" + id + "*/memory.peak",
		"/sys/fs/cgroup/*/vitehost-" + id + "*/memory.peak",
	} {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err == nil {
				var n int64
				fmt.Sscan(string(b), &n)
				return fmt.Sprintf("%d MiB", n>>20)
			}
		}
	}
	return "unknown (no cgroup found)"
}

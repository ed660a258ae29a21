package main

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// requestLog records every URL the browser requests.
type requestLog struct {
	mu   sync.Mutex
	urls []string
}

func logRequests(ctx context.Context) *requestLog {
	l := &requestLog{}
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			l.mu.Lock()
			l.urls = append(l.urls, e.Request.URL)
			l.mu.Unlock()
		}
	})
	return l
}

// checkAll checks that every request went to base's port and none to a
// dev server's paths.
func (l *requestLog) checkAll(t *testing.T, base string) {
	t.Helper()
	goURL, _ := url.Parse(base)
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NotEmpty(t, l.urls)
	for _, s := range l.urls {
		u, err := url.Parse(s)
		require.NoError(t, err)
		assert.Equal(t, goURL.Port(), u.Port(), "%s goes to the Go port", s)
		for _, dev := range []string{"/@vite/", "/@react-refresh", "/@id/", "/src/", "/_nuxt/@vite"} {
			assert.NotContains(t, u.Path, dev, "%s is a request to a dev server", s)
		}
	}
}

func color(sel string) string {
	return `(() => { const e = document.querySelector(` + jsq(sel) + `); return e ? getComputedStyle(e).color : "" })()`
}

func jsq(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// TestHostAppProdVite serves a real vite build of the vite8-prod fixture by
// Go alone: the SPA renders with its CSS, calls the Go API, loads its
// dynamic import, reloads on a client route; the Go-rendered page's tags
// from the manifest load its script and CSS; no Node process runs and the
// browser asks for nothing of a dev server.
func TestHostAppProdVite(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Built(t, "vite8-prod", "vite", "build", "--manifest")
	base := startHostApp(t, dir, "-prod")
	assert.Empty(t, testenv.NodeProcesses(), "no Node process serves a Vite build")

	browser := testenv.NewBrowser(t)
	ctx := browser.Ctx
	reqs := logRequests(ctx)
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(base+"/")))
	waitJS(t, ctx, `(document.querySelector("#title")||{}).textContent === "Hello from the built SPA"`, "the page")
	waitJS(t, ctx, color("#title")+` === "rgb(10, 120, 30)"`, "the CSS of an imported chunk")
	waitJS(t, ctx, `getComputedStyle(document.body).backgroundColor === "rgb(250, 250, 240)"`, "the entry's CSS")
	waitJS(t, ctx, `((document.querySelector("#api")||{}).textContent||"").includes("Hello from the Go API")`, "the Go API")

	require.NoError(t, chromedp.Run(ctx, chromedp.Click("#lazy", chromedp.ByQuery)))
	waitJS(t, ctx, `(document.querySelector("#lazy-text")||{}).textContent === "lazy module loaded"`, "the dynamic import")
	waitJS(t, ctx, color("#lazy-text")+` === "rgb(120, 10, 30)"`, "the dynamic import's CSS")

	// A client route, then a reload on it: index.html again.
	require.NoError(t, chromedp.Run(ctx, chromedp.Click("#about-link", chromedp.ByQuery)))
	waitJS(t, ctx, `location.pathname === "/about" && document.querySelector("#route").textContent === "about page"`, "the client route")
	require.NoError(t, chromedp.Run(ctx, chromedp.Reload()))
	waitJS(t, ctx, `location.pathname === "/about" && (document.querySelector("#route")||{}).textContent === "about page"`, "the client route after a reload")
	waitJS(t, ctx, color("#title")+` === "rgb(10, 120, 30)"`, "the CSS after a reload")

	// The page Go renders, its tags from the manifest.
	status, html := get(t, base+"/server-rendered")
	require.Equal(t, 200, status)
	assert.Contains(t, html, "rendered by Go")
	assert.Contains(t, html, `<link rel="modulepreload"`, "the manifest's tags")
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(base+"/server-rendered")))
	waitJS(t, ctx, `(document.querySelector("#script")||{}).textContent === "Hello from the script of a Go page"`, "the entry's script")
	waitJS(t, ctx, `(document.querySelector("#island-text")||{}).textContent === "React island of a Go page"`, "the React island")
	waitJS(t, ctx, color("#go-title")+` === "rgb(30, 60, 200)"`, "the entry's CSS")
	assert.Empty(t, browser.WebSockets(), "no HMR socket in production")
	reqs.checkAll(t, base)
	assert.Empty(t, testenv.NodeProcesses(), "no Node process serves a Vite build")
}

// TestHostAppServerRenderedDev is the Go-rendered page in development: its
// tags come from the dev server through the Go port, the React preamble
// lets its component load, and CSS and component edits are hot updates.
func TestHostAppServerRenderedDev(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-prod")
	base := startHostApp(t, dir)
	status, html := get(t, base+"/server-rendered")
	require.Equal(t, 200, status)
	assert.Contains(t, html, "rendered by Go")
	assert.Contains(t, html, `src="/@vite/client"`)

	browser := testenv.NewBrowser(t)
	ctx := browser.Ctx
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(base+"/server-rendered")))
	waitJS(t, ctx, `(document.querySelector("#script")||{}).textContent === "Hello from the script of a Go page"`, "the entry's script")
	waitJS(t, ctx, `(document.querySelector("#island-text")||{}).textContent === "React island of a Go page"`, "the React island")
	waitJS(t, ctx, color("#go-title")+` === "rgb(30, 60, 200)"`, "the entry's CSS")
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker = 7`, nil)))
	require.Eventually(t, func() bool { return len(browser.WebSockets()) > 0 }, wait, 20*time.Millisecond, "the page opens its HMR socket")

	edit(t, filepath.Join(dir, "src", "server-rendered.css"), "rgb(30, 60, 200)", "rgb(200, 60, 30)")
	waitJS(t, ctx, color("#go-title")+` === "rgb(200, 60, 30)"`, "the edited CSS")
	edit(t, filepath.Join(dir, "src", "Island.jsx"), "React island of a Go page", "Edited island")
	waitJS(t, ctx, `(document.querySelector("#island-text")||{}).textContent === "Edited island"`, "the edited component")
	var marker float64
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker`, &marker)))
	assert.Equal(t, 7.0, marker, "HMR, not a reload")
	checkSocketsThroughGo(t, browser, base)
}

// TestHostAppProdSSR serves the server builds of Nuxt and SvelteKit
// (adapter-node) through the Go port: the page is server-rendered, it
// hydrates, and no HMR socket opens.
func TestHostAppProdSSR(t *testing.T) {
	testenv.Short(t)
	for _, tc := range []struct {
		name, fixture, text, hydrated string
		build                         []string
	}{
		{"nuxt4", "nuxt4", "Hello from Nuxt", `!!(document.querySelector("#__nuxt")||{}).__vue_app__`, []string{"nuxi", "build"}},
		// onMount runs in the browser only, after hydration.
		{"sveltekit2", "sveltekit2", "Hello from SvelteKit", `((document.querySelector("#api")||{}).textContent||"").includes("Hello from the Go API")`, []string{"vite", "build"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.Built(t, tc.fixture, tc.build[0], tc.build[1:]...)
			base := startHostApp(t, dir, "-prod")
			status, html := get(t, base+"/")
			require.Equal(t, 200, status)
			assert.Contains(t, html, tc.text, "server-rendered")
			status, api := get(t, base+"/api/hello")
			require.Equal(t, 200, status)
			assert.Contains(t, api, "Hello from the Go API")

			browser := testenv.NewBrowser(t)
			ctx := browser.Ctx
			reqs := logRequests(ctx)
			require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(base+"/")))
			waitJS(t, ctx, `(document.querySelector("#title")||{}).textContent === `+jsq(tc.text), "the page")
			waitJS(t, ctx, tc.hydrated, "hydration")
			assert.Empty(t, browser.WebSockets(), "no HMR socket in production")
			reqs.checkAll(t, base)
		})
	}
}

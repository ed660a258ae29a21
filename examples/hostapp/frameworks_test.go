package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestHostAppAstro serves the Astro 5 fixture through the Go port: the
// page is rendered by Astro's own dev server; a style-only edit of the
// .astro page is a hot update, any other edit of it makes the open page
// reload once, as Astro does without a proxy, after which it shows the
// edit. A module only the server imports does the same.
func TestHostAppAstro(t *testing.T) {
	testenv.Short(t)
	for _, fixture := range []string{"astro5", "astro7"} {
		t.Run(fixture, func(t *testing.T) { testHostAppAstro(t, fixture) })
	}
}

func testHostAppAstro(t *testing.T, fixture string) {
	dir := testenv.Fixture(t, fixture)
	base := startHostApp(t, dir)
	status, html := get(t, base+"/")
	require.Equal(t, 200, status)
	assert.Contains(t, html, "Hello from Astro", "the page is rendered by Astro")

	browser := testenv.NewBrowser(t)
	ctx := browser.Ctx
	var loads atomic.Int32 // documents the tab has requested
	chromedp.ListenTarget(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Type == network.ResourceTypeDocument {
			loads.Add(1)
		}
	})
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(base+"/")))
	waitJS(t, ctx, `(document.querySelector("#title")||{}).textContent === "Hello from Astro"`, "the page")
	waitJS(t, ctx, `((document.querySelector("#api")||{}).textContent||"").includes("Hello from the Go API")`, "the page's call to the Go API")
	require.Eventually(t, func() bool { return len(browser.WebSockets()) > 0 }, wait, 20*time.Millisecond, "the page opens its HMR socket")
	require.EqualValues(t, 1, loads.Load())

	// A style-only edit of the page is a hot update of its CSS.
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker = 7`, nil)))
	page := filepath.Join(dir, "src", "pages", "index.astro")
	edit(t, page, "rgb(10, 20, 30)", "rgb(200, 20, 30)")
	waitJS(t, ctx, `getComputedStyle(document.querySelector("#title")).color === "rgb(200, 20, 30)"`, "the edited style")
	var marker float64
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker`, &marker)))
	assert.Equal(t, 7.0, marker, "a style edit is HMR, not a reload")
	assert.EqualValues(t, 1, loads.Load())

	edit(t, page, "Hello from Astro", "Astro, edited while open")
	waitReloaded(t, ctx, `(document.querySelector("#title")||{}).textContent === "Astro, edited while open"`, "the edited page")
	assert.EqualValues(t, 2, loads.Load(), "one reload for the edit")
	status, html = get(t, base+"/")
	require.Equal(t, 200, status)
	assert.Contains(t, html, "Astro, edited while open", "the server-rendered page shows the edit")

	// The HMR socket of the reloaded page is open before the next edit.
	waitJS(t, ctx, `((document.querySelector("#api")||{}).textContent||"").includes("Hello from the Go API")`, "the reloaded page's scripts")
	require.Eventually(t, func() bool { return len(browser.WebSockets()) > 1 }, wait, 20*time.Millisecond, "the reloaded page opens its HMR socket")
	edit(t, filepath.Join(dir, "src", "lib", "message.js"), "Rendered on the server", "Edited on the server")
	waitReloaded(t, ctx, `(document.querySelector("#server")||{}).textContent === "Edited on the server"`, "the server module's edit")
	assert.EqualValues(t, 3, loads.Load(), "one reload for each edit, no loop")
	checkSocketsThroughGo(t, browser, base)
}

// TestHostAppSvelteKit serves the SvelteKit 2 fixture through the Go port:
// a component edit is a hot update of the open page, and an edit of a
// module only the server imports shows in the next server-rendered page.
func TestHostAppSvelteKit(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "sveltekit2")
	base := startHostApp(t, dir)
	browser := checkHMRThroughGo(t, base, filepath.Join(dir, "src", "routes", "+page.svelte"),
		"Hello from SvelteKit", "SvelteKit, edited while open", true)

	// SvelteKit tells the open page nothing about a server module; the next
	// request renders with the new one.
	edit(t, filepath.Join(dir, "src", "lib", "server", "message.js"), "Rendered on the server", "Edited on the server")
	waitPage(t, base+"/", "Edited on the server")
	require.NoError(t, chromedp.Run(browser.Ctx, chromedp.Reload()))
	waitJS(t, browser.Ctx, `(document.querySelector("#server")||{}).textContent === "Edited on the server"`, "the server module's edit")
	waitJS(t, browser.Ctx, `(document.querySelector("#title")||{}).textContent === "SvelteKit, edited while open"`, "the earlier edit")
	checkSocketsThroughGo(t, browser, base)
}

// TestHostAppReactRouter serves the React Router 7 fixture (framework mode)
// through the Go port: a route component edit is a hot update, and an edit
// of a module only the loader imports reaches the open page through React
// Router's loader revalidation, without a reload.
func TestHostAppReactRouter(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "reactrouter7")
	base := startHostApp(t, dir)
	browser := checkHMRThroughGo(t, base, filepath.Join(dir, "app", "routes", "home.jsx"),
		"Hello from React Router", "React Router, edited while open", true)

	edit(t, filepath.Join(dir, "app", "message.server.js"), "Rendered on the server", "Edited on the server")
	waitJS(t, browser.Ctx, `(document.querySelector("#server")||{}).textContent === "Edited on the server"`, "the loader's new data")
	var marker float64
	require.NoError(t, chromedp.Run(browser.Ctx, chromedp.Evaluate(`window.__vitehostMarker`, &marker)))
	assert.Equal(t, 7.0, marker, "revalidated, not reloaded")
	waitPage(t, base+"/", "Edited on the server")
	checkSocketsThroughGo(t, browser, base)
}

// waitReloaded waits until expr is true in the tab, across the reloads
// that waitJS's poll does not survive (it fails when the page navigates).
func waitReloaded(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for {
		var ok bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok)); err == nil && ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("waiting for %s", what)
		}
	}
}

// edit replaces from with to in path, atomically.
func edit(t *testing.T, path, from, to string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), from)
	writeAtomic(t, path, strings.Replace(string(b), from, to, 1))
}

// waitPage fetches u through the Go port until the page contains want.
func waitPage(t *testing.T, u, want string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for {
		status, html := get(t, u)
		if status == 200 && strings.Contains(html, want) {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s never showed %q (last: %d)", u, want, status)
		}
	}
}

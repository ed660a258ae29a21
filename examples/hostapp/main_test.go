package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/phayes/freeport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// wait bounds every wait: a deadline, not a measurement.
const wait = 90 * time.Second

// startHostApp runs the example in this process with its real flags on a
// free port, with dir as its front end and the extra flags args, and
// returns the Go app's base URL.
func startHostApp(t *testing.T, dir string, args ...string) string {
	t.Helper()
	port, err := freeport.GetFreePort()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", fmt.Sprintf("127.0.0.1:%d", port), "-dir", dir}, args...), testenv.Writer(t), ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("hostapp: %v", err)
	case <-time.After(3 * wait):
		t.Fatal("hostapp did not get ready")
	}
	t.Cleanup(func() {
		cancel() // what SIGINT does
		require.NoError(t, <-done)
		assert.Empty(t, testenv.NodeProcesses(), "the dev server is stopped before run returns")
		assert.NoFileExists(t, filepath.Join(dir, ".vitehost", "hot"), "the hot file is removed")
	})
	return fmt.Sprintf("http://localhost:%d", port)
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitJS(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	require.NoError(t, chromedp.Run(ctx, chromedp.Poll(expr, nil, chromedp.WithPollingInterval(20*time.Millisecond))), "waiting for %s", what)
}

// writeAtomic replaces a file the way editors and the preview service do.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// checkHMRThroughGo is the shared browser check: the page renders through
// the Go port, the Go API answers it, an edit of source reaches the DOM
// without a reload, and every WebSocket the page opened went to the Go port.
// It returns the browser, still on the page.
func checkHMRThroughGo(t *testing.T, base, source, from, to string, ssr bool) *testenv.Browser {
	status, html := get(t, base+"/")
	require.Equal(t, 200, status)
	if ssr {
		assert.Contains(t, html, from, "the page is server-rendered")
	}
	status, api := get(t, base+"/api/hello")
	require.Equal(t, 200, status)
	assert.Contains(t, api, "Hello from the Go API")

	browser := testenv.NewBrowser(t)
	ctx := browser.Ctx
	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(base+"/")))
	waitJS(t, ctx, fmt.Sprintf(`(document.querySelector("#title")||{}).textContent === %q`, from), "the page")
	waitJS(t, ctx, `((document.querySelector("#api")||{}).textContent||"").includes("Hello from the Go API")`, "the page's call to the Go API")
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker = 7`, nil)))
	// The HMR socket must be open before the edit, or the edit may be missed.
	require.Eventually(t, func() bool { return len(browser.WebSockets()) > 0 }, wait, 20*time.Millisecond, "the page opens its HMR socket")

	b, err := os.ReadFile(source)
	require.NoError(t, err)
	require.Contains(t, string(b), from)
	writeAtomic(t, source, strings.Replace(string(b), from, to, 1))
	waitJS(t, ctx, fmt.Sprintf(`(document.querySelector("#title")||{}).textContent === %q`, to), "the edited text")
	var marker float64
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__vitehostMarker`, &marker)))
	assert.Equal(t, 7.0, marker, "HMR, not a reload")

	checkSocketsThroughGo(t, browser, base)
	return browser
}

// checkSocketsThroughGo checks that every WebSocket the page opened went to
// the Go port with Vite's token.
func checkSocketsThroughGo(t *testing.T, browser *testenv.Browser, base string) {
	t.Helper()
	goURL, _ := url.Parse(base)
	for _, s := range browser.WebSockets() {
		u, err := url.Parse(s)
		require.NoError(t, err)
		assert.Equal(t, goURL.Port(), u.Port(), "the WebSocket %s goes to the Go port", s)
		assert.Contains(t, u.RawQuery, "token=", "Vite's token is in the query")
	}
}

func TestHostAppNuxt(t *testing.T) {
	testenv.Short(t)
	dir := testenv.FixtureDir(t, testenv.ExampleFixtures()[0]) // the shipped Nuxt app
	base := startHostApp(t, dir)
	checkHMRThroughGo(t, base, filepath.Join(dir, "app", "app.vue"),
		"Nuxt, served through Go", "Nuxt, edited while open", true)
}

func TestHostAppVue(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-vue")
	base := startHostApp(t, dir)
	checkHMRThroughGo(t, base, filepath.Join(dir, "src", "App.vue"),
		"Hello from Vue", "Hello from edited Vue", false)
}

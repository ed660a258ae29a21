package preview

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestHibernatedTabComesBack is a tab left open on a session that
// hibernated, in Chromium: it gets its page back by itself once the session
// is active again, and then hot-updates an edit. The session sleeps when
// the test says so (its IdleTimeout is an hour), so that nothing but the
// steps below decides when.
func TestHibernatedTabComesBack(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	browser := testenv.NewBrowser(t)
	m := startBrowserManager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	app := func(title string) File {
		return File{Name: "src/App.tsx", Content: fmt.Sprintf("export default function App() {\n  return <main><h1 id=\"title\">%s</h1></main>\n}\n", title)}
	}
	tab := browser.Ctx
	// waitJS polls expr until it is true; a reload between two polls is
	// part of what it waits for.
	waitJS := func(expr, what string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			var ok bool
			err := chromedp.Run(tab, chromedp.Evaluate(expr, &ok))
			if err == nil && ok {
				return
			}
			require.True(t, time.Now().Before(deadline), "waiting for %s: %v", what, err)
			time.Sleep(20 * time.Millisecond)
		}
	}
	title := func(want string, marker string) string {
		return fmt.Sprintf(`(document.querySelector("#title") || {}).textContent === %q && window.__marker === %s`, want, marker)
	}
	setMarker := func(v int) {
		require.NoError(t, chromedp.Run(tab, chromedp.Evaluate(fmt.Sprintf("window.__marker = %d", v), nil)))
	}
	hibernate := func(id string) *session {
		t.Helper()
		s := m.local(id)
		require.NotNil(t, s)
		s.hibernate(0)
		return s
	}

	info, err := m.Create(ctx, &CreateRequest{Files: []File{app("v1")}})
	require.NoError(t, err)
	require.NoError(t, chromedp.Run(tab, chromedp.Navigate(info.PreviewURL)))
	waitJS(title("v1", "undefined"), "the first render")
	setMarker(1)

	// The tab sleeps (a background tab that the browser froze, a laptop
	// with its lid closed), and so does the session.
	require.NoError(t, chromedp.Run(tab, page.SetWebLifecycleState(page.SetWebLifecycleStateStateFrozen)))
	s := hibernate(info.SessionID)
	assert.Equal(t, StatusHibernated, s.record().Status, "nothing wakes it")
	assert.Empty(t, testenv.NodeProcesses(), "a hibernated session runs no process")

	// An update wakes the session and answers as for a running one.
	res, err := m.Update(ctx, info.SessionID, &UpdateRequest{Files: []File{app("v2")}})
	require.NoError(t, err)
	assert.True(t, res.HMRTriggered(), "%+v", res.HMR)
	assert.Equal(t, StatusActive, m.local(info.SessionID).record().Status)

	// The tab wakes: its Vite client finds its socket closed, asks whether
	// the server is back, and reloads the page, which shows the update.
	require.NoError(t, chromedp.Run(tab, page.SetWebLifecycleState(page.SetWebLifecycleStateStateActive)))
	waitJS(title("v2", "undefined"), "the page back, reloaded by itself")
	setMarker(2)
	_, err = m.Update(ctx, info.SessionID, &UpdateRequest{Files: []File{app("v3")}})
	require.NoError(t, err)
	waitJS(title("v3", "2"), "the edit, hot-updated without a reload")

	// A session that hibernates under an open tab: the tab's Vite client
	// asks whether the server is back, which wakes it, and reloads once it
	// is; then edits are hot updates again.
	hibernate(info.SessionID)
	waitJS(title("v3", "undefined"), "the page back after the tab woke the session")
	setMarker(3)
	_, err = m.Update(ctx, info.SessionID, &UpdateRequest{Files: []File{app("v4")}})
	require.NoError(t, err)
	waitJS(title("v4", "3"), "the edit, hot-updated without a reload")
}

// startBrowserManager starts a Manager whose sessions never hibernate by
// themselves, behind a listener at http://localhost:<port>, whose preview
// hosts (preview-{id}.localhost) Chromium resolves to loopback.
func startBrowserManager(t *testing.T) *Manager {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	public := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	deps := filepath.Join(os.TempDir(), "vitehost-test-preview-deps") // where the other tests keep theirs
	require.NoError(t, os.MkdirAll(deps, 0o755))
	opts := &Options{
		PublicURL:   public,
		BaseDir:     testenv.TempDir(t),
		CacheDir:    deps,
		IdleTimeout: time.Hour,
		Logger:      testenv.Logger(t),
	}
	opts.Sandbox.Env = []string{testenv.OwnerEnv()} // for the leak check
	m, err := New(opts)
	require.NoError(t, err)
	srv := &http.Server{Handler: m.Router(m.API())}
	go srv.Serve(ln)
	t.Cleanup(func() {
		m.Close(context.Background())
		srv.Close()
		assert.Empty(t, testenv.NodeProcesses(), "no node process outlives Close")
	})
	return m
}

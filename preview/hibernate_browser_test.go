package preview

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

// TestHibernatedTabComesBack is a tab left open on a session that
// hibernated, in Chromium: it gets its page back by itself once the session
// is active again, and then hot-updates an edit. The session sleeps when
// the test says so (its IdleTimeout is an hour), so that nothing but the
// steps below decides when; it wakes in the Manager's spare runner.
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

	// The template's page with an icon of its own: the browser would ask
	// for /favicon.ico at a moment of its choosing, which wakes the session.
	tmpl, err := readTemplate()
	require.NoError(t, err)
	i := slices.IndexFunc(tmpl, func(f pendingFile) bool { return f.name == "index.html" })
	require.GreaterOrEqual(t, i, 0, "the template's index.html")
	html := File{Name: "index.html", Content: strings.Replace(string(tmpl[i].data), "<head>", `<head><link rel="icon" href="data:,">`, 1)}
	require.NoError(t, m.Prepare(ctx), "the template's optimized dependencies, which a spare needs")
	info, err := m.Create(ctx, &CreateRequest{Files: []File{html, app("v1")}})
	require.NoError(t, err)
	require.NoError(t, chromedp.Run(tab, chromedp.Navigate(info.PreviewURL)))
	waitJS(title("v1", "undefined"), "the first render")
	setMarker(1)

	// The tab sleeps (a background tab that the browser froze, a laptop
	// with its lid closed), and so does the session.
	require.NoError(t, chromedp.Run(tab, page.SetWebLifecycleState(page.SetWebLifecycleStateStateFrozen)))
	spare := awaitSpare(t, m)
	s := hibernate(info.SessionID)
	assert.Equal(t, StatusHibernated, s.record().Status, "nothing wakes it")
	assert.Nil(t, s.current(), "a hibernated session runs no dev server")
	assert.Len(t, testenv.NodeProcesses(), 1, "the spare's is the one process")

	// An update wakes the session, in the spare, and answers as for a
	// running one.
	res, err := m.Update(ctx, info.SessionID, &UpdateRequest{Files: []File{app("v2")}})
	require.NoError(t, err)
	assert.True(t, res.HMRTriggered(), "%+v", res.HMR)
	assert.Equal(t, StatusActive, m.local(info.SessionID).record().Status)
	assert.False(t, spare.Alive(), "the wake took the spare")
	assert.Equal(t, m.local(info.SessionID).current().slot, spare.Dir(), "the session's disk is mounted over the spare's directory")

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

// awaitSpare waits until the Manager has a spare runner, and returns it.
func awaitSpare(t *testing.T, m *Manager) *vite.Spare {
	t.Helper()
	p := m.env.spares
	require.NotNil(t, p)
	var sp *vite.Spare
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.idle) > 0 {
			sp = p.idle[0].sp
		}
		return sp != nil
	}, time.Minute, 20*time.Millisecond, "no spare runner")
	return sp
}

// startBrowserManager starts a Manager whose sessions never hibernate by
// themselves, behind a listener at http://localhost:<port>, whose preview
// hosts (preview-{id}.localhost) Chromium resolves to loopback.
func startBrowserManager(t *testing.T) *Manager {
	t.Helper()
	return startBrowserManagerWith(t, nil)
}

// startBrowserManagerWith is startBrowserManager with tune applied to its
// options.
func startBrowserManagerWith(t *testing.T, tune func(*Options)) *Manager {
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
	if tune != nil {
		tune(opts)
	}
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

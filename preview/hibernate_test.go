package preview_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/storetest"
)

// TestHibernation lets a session sleep after a short IdleTimeout, three
// times, and wakes it each time another way: a page request, a vite-ping
// from an open tab, an update; each wake starts a runner of its own, or
// takes the spare runner when one is ready.
func TestHibernation(t *testing.T) {
	t.Run("fresh runners", func(t *testing.T) { testHibernation(t, -1) })
	t.Run("spare runners", func(t *testing.T) { testHibernation(t, 1) })
}

func testHibernation(t *testing.T, spares int) {
	svc := startService(t, preview.Options{IdleTimeout: time.Second, Spares: spares})
	if spares > 0 {
		// The template's optimized dependencies, which a spare needs.
		require.NoError(t, svc.m.Prepare(context.Background()))
	}
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("before the sleep")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	dir := filepath.Join(svc.base, "preview-"+id)
	conn := svc.hmrSocket(t, created) // sends nothing: it keeps nothing awake

	svc.awaitStatus(t, id, preview.StatusHibernated)
	conn.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break // the browser's HMR socket closed with the dev server
		}
	}
	assert.LessOrEqual(t, len(testenv.NodeProcesses()), max(spares, 0), "a hibernated session runs no process (a spare may wait)")
	assert.FileExists(t, filepath.Join(dir, "src", "App.tsx"), "its files stay")
	assert.FileExists(t, filepath.Join(dir, ".vite-cache", "deps", "_metadata.json"), "its optimized dependencies stay")
	assert.Equal(t, 1, svc.m.NumSessions())

	// A page request wakes it; the page comes back (a browser follows the
	// "starting" page, should the wake take longer than a navigation waits).
	status, page := svc.getUntilServed(t, created.PreviewURL+"/")
	require.Equal(t, 200, status)
	assert.Contains(t, page, "/@vite/client")
	status, app := svc.get(t, created.PreviewURL+"/src/App.tsx")
	require.Equal(t, 200, status)
	assert.Contains(t, app, "before the sleep")

	// A vite-ping, as an open tab's Vite client sends it after its socket
	// closed, wakes it and opens only once the dev server is back.
	svc.awaitStatus(t, id, preview.StatusHibernated)
	ping := *svc.dialer
	ping.Subprotocols = []string{"vite-ping"}
	pc, res, err := ping.Dial(created.WSURL, http.Header{"Origin": {created.PreviewURL}})
	require.NoError(t, err, "the ping opens once the dev server is back")
	res.Body.Close()
	pc.Close()
	_, st := svc.api(t, "GET", "/"+id, nil)
	assert.Contains(t, []string{"starting", "active"}, st.Status, "the ping opened on a running dev server")

	// An update wakes it and answers as for a running session.
	svc.awaitStatus(t, id, preview.StatusHibernated)
	status, upd := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("after the sleep")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
	assert.Equal(t, preview.HMRUpdate, upd.HMR.Type)
	_, app = svc.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Contains(t, app, "after the sleep")
}

// awaitStatus polls the status endpoint, which wakes nothing, until it
// reports want.
func (s *service) awaitStatus(t *testing.T, id string, want preview.Status) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, st := s.api(t, "GET", "/"+id, nil)
		return st.Status == string(want)
	}, wait, pollEvery, "session %s never %s", id, want)
}

// getUntilServed gets u as a browser's navigation does, following the
// "starting" page (a 503 that reloads itself) until the page is served.
func (s *service) getUntilServed(t *testing.T, u string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		status, body := s.get(t, u)
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return status, body
		}
	}
}

// TestHibernatedSessionTakenOver lets a session of node A hibernate, then
// A dies: a page request at B wakes the session on B, from the files in
// the store.
func TestHibernatedSessionTakenOver(t *testing.T) {
	testenv.Short(t)
	nodes := startClusterWith(t, storetest.Redis(t), preview.Options{IdleTimeout: time.Second}, "a", "b")
	a, b := nodes[0], nodes[1]
	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("asleep on A")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	b.awaitStatus(t, id, preview.StatusHibernated) // B reads it through A
	require.Empty(t, testenv.NodeProcesses())

	a.kill() // the record and files stay in Redis, naming A
	require.Eventually(t, func() bool {
		status, app, err := b.tryGet(created.PreviewURL + "/src/App.tsx")
		return err == nil && status == 200 && strings.Contains(app, "asleep on A")
	}, wait, pollEvery, "B serves the session, woken from the files in the store")
	assert.Equal(t, 1, b.m.NumSessions())
}

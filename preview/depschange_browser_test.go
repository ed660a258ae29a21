package preview_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// templatePackage returns the template's package.json with extra
// dependencies.
func templatePackage(extra map[string]string) map[string]any {
	deps := map[string]string{"react": "^19.2.0", "react-dom": "^19.2.0"}
	for k, v := range extra {
		deps[k] = v
	}
	return map[string]any{"dependencies": deps, "devDependencies": map[string]string{"@vitejs/plugin-react": "^6.0.0", "vite": "^8.0.0"}}
}

// appUsing is an App.tsx that imports pkg (with the import line imp) and
// shows expr as its title.
func appUsing(imp, expr string) map[string]any {
	return map[string]any{"name": "src/App.tsx", "content": fmt.Sprintf(
		"%s\n\nexport default function App() {\n  return <main><h1 id=\"title\">{%s}</h1></main>\n}\n", imp, expr)}
}

// titleIs is a page expression: the title shows text.
func titleIs(text string) string {
	return fmt.Sprintf(`(document.querySelector("#title") || {}).textContent === %q`, text)
}

// waitReloaded polls expr until it is true; a reload between two polls is
// part of what it waits for.
func waitReloaded(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var ok bool
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		if err == nil && ok {
			return
		}
		require.True(t, time.Now().Before(deadline), "waiting for %s: %v", what, err)
		time.Sleep(pollEvery)
	}
}

// TestBrowserDependencyChange adds a package to an open page through an
// update of package.json, sees code that uses it render after one reload,
// then removes it; a set with a package or a version that does not exist is
// refused naming it, and the old page is still served, on the old set, with
// the old package.json on disk.
func TestBrowserDependencyChange(t *testing.T) {
	svc := startService(t, preview.Options{})
	created, ctx := openPreview(t, svc, "before")
	id := created.SessionID
	events := svc.openEvents(t, id, "")
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(watchPage, nil)))

	// Add clsx: the packageJson field, and the App that uses it.
	status, added := svc.api(t, "POST", "/"+id+"/update", map[string]any{
		"files":       []any{appUsing("import clsx from 'clsx'", `clsx("with", { clsx: true })`)},
		"packageJson": templatePackage(map[string]string{"clsx": "^2.1.0"}),
	})
	require.Equal(t, 200, status, "body: %s", added.Raw)
	assert.Equal(t, preview.HMRFullReload, added.HMR.Type)
	assert.True(t, added.HMRTriggered)
	require.NotNil(t, added.Dependencies, "body: %s", added.Raw)
	assert.Regexp(t, `^2\.\d+\.\d+$`, added.Dependencies.Added["clsx"], "the version installed")
	assert.Empty(t, added.Dependencies.Removed)
	assert.Empty(t, added.Dependencies.Changed)
	assert.Contains(t, added.Updated, "src/App.tsx")
	waitReloaded(t, ctx, titleIs("with clsx"), "the page on the new set")
	assert.Equal(t, "undefined", evalJS[string](t, ctx, "typeof window.__vitehostMarker"), "the page reloaded")
	done := events.next(t, func(e sseEvent) bool { return e.Type == "install" && e.Data["phase"] == "done" })
	assert.NotEmpty(t, done.ID)
	disk, err := os.ReadFile(filepath.Join(svc.base, "preview-"+id, "package.json"))
	require.NoError(t, err)
	assert.Contains(t, string(disk), `"clsx"`)
	status, info := svc.api(t, "GET", "/"+id, nil)
	require.Equal(t, 200, status)
	assert.Equal(t, id, info.SessionID)
	assert.Equal(t, created.PreviewURL, info.PreviewURL, "the session keeps its URL")

	// Refused sets: nothing changes.
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(watchPage, nil)))
	for name, spec := range map[string]string{"vitehost-no-such-package-4f9a2c": "^1.0.0", "clsx": "^99.0.0"} {
		status, refused := svc.api(t, "POST", "/"+id+"/update", map[string]any{
			"files":       []any{appUsing("", `"refused"`)},
			"packageJson": templatePackage(map[string]string{"clsx": "^2.1.0", name: spec}),
		})
		assert.Equal(t, 400, status, "body: %s", refused.Raw)
		require.NotNil(t, refused.Error, "body: %s", refused.Raw)
		assert.Equal(t, "bad_dependency", refused.Error.Code)
		assert.Contains(t, refused.Error.Message, name, "the answer names the package")
		failed := events.next(t, func(e sseEvent) bool { return e.Type == "install" && e.Data["phase"] == "failed" })
		assert.Contains(t, failed.Data["error"], name)
		now, err := os.ReadFile(filepath.Join(svc.base, "preview-"+id, "package.json"))
		require.NoError(t, err)
		assert.Equal(t, string(disk), string(now), "the old package.json stays on disk")
		_, app := svc.get(t, created.PreviewURL+"/src/App.tsx")
		assert.Contains(t, app, "clsx", "the update's files were not written")
	}
	assert.Equal(t, 42, evalJS[int](t, ctx, "window.__vitehostMarker"), "the page did not reload")
	assert.True(t, evalJS[bool](t, ctx, titleIs("with clsx")), "the old page is still served")

	// Remove it, with package.json among the files this time.
	pkg, err := json.Marshal(templatePackage(nil))
	require.NoError(t, err)
	status, removed := svc.api(t, "POST", "/"+id+"/update", map[string]any{
		"files": []any{appUsing("", `"without clsx"`), map[string]any{"name": "package.json", "content": string(pkg)}},
	})
	require.Equal(t, 200, status, "body: %s", removed.Raw)
	require.NotNil(t, removed.Dependencies, "body: %s", removed.Raw)
	assert.Contains(t, removed.Dependencies.Removed, "clsx")
	assert.Empty(t, removed.Dependencies.Added)
	waitReloaded(t, ctx, titleIs("without clsx"), "the page on the template's set")
	disk, err = os.ReadFile(filepath.Join(svc.base, "preview-"+id, "package.json"))
	require.NoError(t, err)
	assert.NotContains(t, string(disk), "clsx")
}

// TestDependencyChangesInARow sends two dependency changes, the second
// before the first is done: both are applied, in order, and the last one
// wins (on disk, in the page, in the answers' diffs).
func TestDependencyChangesInARow(t *testing.T) {
	svc := startService(t, preview.Options{})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("start")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	events := svc.openEvents(t, id, "")

	first := make(chan apiResponse, 1)
	go func() {
		status, res := svc.api(t, "POST", "/"+id+"/update", map[string]any{
			"files":       []any{appUsing("import clsx from 'clsx'", `clsx("first")`)},
			"packageJson": templatePackage(map[string]string{"clsx": "^2.1.0"}),
		})
		assert.Equal(t, 200, status, "body: %s", res.Raw)
		first <- res
	}()
	// The first is in line once its install reports.
	events.next(t, ofType("install"))
	status, second := svc.api(t, "POST", "/"+id+"/update", map[string]any{
		"files":       []any{appUsing("import ms from 'ms'", `"second " + ms(60000)`)},
		"packageJson": templatePackage(map[string]string{"ms": "^2.1.3"}),
	})
	require.Equal(t, 200, status, "body: %s", second.Raw)
	one := <-first
	require.NotNil(t, one.Dependencies, "body: %s", one.Raw)
	assert.Contains(t, one.Dependencies.Added, "clsx")
	require.NotNil(t, second.Dependencies, "body: %s", second.Raw)
	assert.Contains(t, second.Dependencies.Added, "ms", "the second applies after the first")
	assert.Contains(t, second.Dependencies.Removed, "clsx", "the second's diff is against the first's set")

	disk, err := os.ReadFile(filepath.Join(svc.base, "preview-"+id, "package.json"))
	require.NoError(t, err)
	assert.Contains(t, string(disk), `"ms"`)
	assert.NotContains(t, string(disk), "clsx", "the last one wins")
	_, app := svc.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Contains(t, app, "second")
	_, page := svc.get(t, created.PreviewURL+"/")
	assert.True(t, strings.Contains(page, `id="root"`), "the page is served")
}

// TestDependencyChangeClientGone has the client of a dependency change go
// away once the switch began (the page's HMR socket closes with the old dev
// server), which now runs after the update's turn, in the background: the
// change goes on without the client, and the session serves the new set.
func TestDependencyChangeClientGone(t *testing.T) {
	svc := startService(t, preview.Options{})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("start")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	conn := svc.hmrSocket(t, created)

	body, err := json.Marshal(map[string]any{
		"files":       []any{appUsing("import clsx from 'clsx'", `clsx("gone", "client")`)},
		"packageJson": templatePackage(map[string]string{"clsx": "^2.1.0"}),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", svc.public+"/kontext/preview/"+id+"/update", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	answered := make(chan error, 1)
	go func() {
		resp, err := svc.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	// The socket closes when the old dev server goes: the switch began.
	conn.SetReadDeadline(time.Now().Add(2 * wait))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	cancel()
	<-answered

	// The page comes back on the new set, and the session never failed.
	deadline := time.Now().Add(wait)
	for {
		st := svc.status(id)
		require.NotEqual(t, string(preview.StatusError), st.Status, "the session failed: %s", st.raw)
		if st.Status == string(preview.StatusActive) {
			code, app := svc.get(t, created.PreviewURL+"/src/App.tsx")
			if code == 200 && strings.Contains(app, `clsx("gone", "client")`) {
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "the new set never served: %s", st.raw)
		time.Sleep(pollEvery)
	}
	disk, err := os.ReadFile(filepath.Join(svc.base, "preview-"+id, "package.json"))
	require.NoError(t, err)
	assert.Contains(t, string(disk), "clsx")
}

// TestDependencyChangeStoreCallHoldsNoTurn stops a dependency change in its
// store call, with the turn ended, and sends an update of the page's
// module meanwhile: it applies on the new dev server (an HMR update of
// App.tsx, which the old one, stopped by then, could not give), after the
// change in the store and on disk. Whether the update takes the turn
// before the store call ends or after it is the scheduler's choice: the
// test guards the outcome either way.
func TestDependencyChangeStoreCallHoldsNoTurn(t *testing.T) {
	store := &gatedStore{entered: make(chan struct{}), release: make(chan struct{})}
	svc := startService(t, preview.Options{Store: store, NodeAddr: "127.0.0.1:9", NodeID: "a"})
	release := sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release)
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("start")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID

	store.mu.Lock()
	store.gate = true
	store.apps = nil
	store.mu.Unlock()
	change := make(chan apiResponse, 1)
	go func() {
		status, res := svc.api(t, "POST", "/"+id+"/update", map[string]any{
			"files":       []any{appUsing("import clsx from 'clsx'", `clsx("changed")`)},
			"packageJson": templatePackage(map[string]string{"clsx": "^2.1.0"}),
		})
		assert.Equal(t, 200, status, "body: %s", res.Raw)
		change <- res
	}()
	select {
	case <-store.entered:
	case res := <-change:
		t.Fatalf("the change ended before its store call: %s", res.Raw)
	}
	after := make(chan *preview.UpdateResult, 1)
	go func() {
		res, err := svc.m.Update(context.Background(), id, &preview.UpdateRequest{
			Files: []preview.File{{Name: "src/App.tsx", Content: appUsing("import clsx from 'clsx'", `clsx("after")`)["content"].(string)}},
		})
		assert.NoError(t, err)
		after <- res
	}()
	release()
	res := <-change
	require.NotNil(t, res.Dependencies, "body: %s", res.Raw)
	assert.Contains(t, res.Dependencies.Added, "clsx")
	upd := <-after
	require.NotNil(t, upd)
	assert.Equal(t, preview.HMRUpdate, upd.HMR.Type, "the update reached the new dev server")

	store.mu.Lock()
	apps := slices.Clone(store.apps)
	store.mu.Unlock()
	require.Len(t, apps, 2)
	assert.Contains(t, apps[0], "changed", "the store gets the change first")
	assert.Contains(t, apps[1], "after")
	_, app := svc.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Contains(t, app, "after")
	disk, err := os.ReadFile(filepath.Join(svc.base, "preview-"+id, "package.json"))
	require.NoError(t, err)
	assert.Contains(t, string(disk), `"clsx"`)
}

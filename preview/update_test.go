package preview_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// countdownCtx is a context that is cancelled when the code it is given
// asks it the n-th time whether it is (Done or Err): run with n = 1, 2, 3,
// ..., an operation sees its client go away at each of its steps in turn.
type countdownCtx struct {
	context.Context
	mu   sync.Mutex
	left int
	done chan struct{}
}

func newCountdownCtx(n int) *countdownCtx {
	return &countdownCtx{Context: context.Background(), left: n, done: make(chan struct{})}
}

func (c *countdownCtx) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left--; c.left == 0 {
		close(c.done)
	}
}

func (c *countdownCtx) Done() <-chan struct{} {
	c.tick()
	return c.done
}

func (c *countdownCtx) Err() error {
	c.tick()
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

// fired reports whether the context was cancelled.
func (c *countdownCtx) fired() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// TestUpdateClientGone cancels an update's context at each of its steps in
// turn, on a node of a cluster (the files go to the store and to the disk):
// whatever step the client leaves at, the store and the disk hold the same
// files afterwards, the old ones or the new ones.
func TestUpdateClientGone(t *testing.T) {
	store := &preview.MemoryStore{}
	svc := startService(t, preview.Options{Store: store, NodeAddr: "127.0.0.1:9", NodeID: "a"})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{
		appTSX("v0"),
		map[string]any{"name": "src/extra0.ts", "content": "export const n = 0\n"},
	}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	dir := filepath.Join(svc.base, "preview-"+id)

	// agree checks that the store and the disk hold the same content for
	// each of names, or both none.
	agree := func(n int, names ...string) {
		t.Helper()
		stored, err := store.LoadFiles(context.Background(), id)
		require.NoError(t, err)
		for _, name := range names {
			onDisk, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			inStore, ok := stored[name]
			if errors.Is(err, os.ErrNotExist) {
				assert.False(t, ok, "step %d: %s is in the store, not on disk", n, name)
				continue
			}
			require.NoError(t, err)
			if assert.True(t, ok, "step %d: %s is on disk, not in the store", n, name) {
				assert.Equal(t, string(inStore), string(onDisk), "step %d: %s", n, name)
			}
		}
		entries, err := os.ReadDir(filepath.Join(dir, "src"))
		require.NoError(t, err)
		for _, e := range entries {
			assert.NotContains(t, e.Name(), ".vitehost-tmp-", "step %d: no staged file is left", n)
		}
	}

	prev := 0 // the extra file the session holds
	gaveUp, applied := 0, 0
	for n := 1; ; n++ {
		require.Less(t, n, 200, "the update finishes within 200 questions to its context")
		extra := fmt.Sprintf("src/extra%d.ts", n)
		old := fmt.Sprintf("src/extra%d.ts", prev)
		ctx := newCountdownCtx(n)
		_, err := svc.m.Update(ctx, id, &preview.UpdateRequest{
			Files:  []preview.File{{Name: "src/App.tsx", Content: appTSX(fmt.Sprintf("v%d", n))["content"].(string)}, {Name: extra, Content: fmt.Sprintf("export const n = %d\n", n)}},
			Delete: []string{old},
		})
		agree(n, "src/App.tsx", extra, old)
		if err != nil {
			require.True(t, ctx.fired(), "step %d: only the client's leaving fails the update: %v", n, err)
			require.ErrorIs(t, err, context.Canceled, "step %d", n)
			gaveUp++
			continue
		}
		applied++
		prev = n
		if !ctx.fired() {
			break // the update asked its context fewer than n times
		}
	}
	t.Logf("the client left at %d steps where the update then changed nothing, at %d after which it applied in full", gaveUp, applied)
	assert.NotZero(t, gaveUp, "some steps end the update")
}

// gatedStore is a store whose SaveFiles, once gate is set, stops the first
// call in entered until release is closed; it records the order of the
// calls' App.tsx and how many ran at once.
type gatedStore struct {
	preview.MemoryStore
	mu       sync.Mutex
	gate     bool
	entered  chan struct{}
	release  chan struct{}
	inFlight int
	most     int
	apps     []string
}

func (g *gatedStore) SaveFiles(ctx context.Context, id string, epoch int64, files map[string][]byte, deletes []string) error {
	g.mu.Lock()
	stop := g.gate
	g.gate = false
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	if app, ok := files["src/App.tsx"]; ok {
		g.apps = append(g.apps, string(app))
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	if stop {
		close(g.entered)
		<-g.release
	}
	return g.MemoryStore.SaveFiles(ctx, id, epoch, files, deletes)
}

// TestUpdateStoreCallHoldsNoTurn stops an update in its store call: the
// next update checks and stages its files meanwhile (the session's turn is
// not held across the call), then waits for the first to commit, so that
// the store and the disk get both in the order they came.
func TestUpdateStoreCallHoldsNoTurn(t *testing.T) {
	store := &gatedStore{entered: make(chan struct{}), release: make(chan struct{})}
	svc := startService(t, preview.Options{Store: store, NodeAddr: "127.0.0.1:9", NodeID: "a"})
	release := sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release) // before the service closes: a failed test leaves no call stopped
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("v0")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	src := filepath.Join(svc.base, "preview-"+id, "src")
	staged := func() int {
		entries, err := os.ReadDir(src)
		require.NoError(t, err)
		n := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".vitehost-tmp-") {
				n++
			}
		}
		return n
	}

	store.mu.Lock()
	store.gate = true
	store.apps = nil
	store.mu.Unlock()
	update := func(text string, extra ...preview.File) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := svc.m.Update(context.Background(), id, &preview.UpdateRequest{
				Files: append([]preview.File{{Name: "src/App.tsx", Content: appTSX(text)["content"].(string)}}, extra...),
			})
			done <- err
		}()
		return done
	}
	first := update("v1")
	select {
	case <-store.entered:
	case err := <-first:
		t.Fatalf("the first update ended before its store call: %v", err)
	}
	require.Equal(t, 1, staged(), "the first update staged App.tsx")
	second := update("v2", preview.File{Name: "src/second.ts", Content: "export const two = 2\n"})
	require.Eventually(t, func() bool { return staged() == 3 }, time.Minute, 5*time.Millisecond,
		"the second update stages its two files while the first is in its store call")
	release()
	require.NoError(t, <-first)
	require.NoError(t, <-second)

	store.mu.Lock()
	defer store.mu.Unlock()
	assert.Equal(t, 1, store.most, "one store call at a time")
	require.Len(t, store.apps, 2)
	assert.Contains(t, store.apps[0], "v1", "the store gets the first update first")
	assert.Contains(t, store.apps[1], "v2")
	onDisk, err := os.ReadFile(filepath.Join(src, "App.tsx"))
	require.NoError(t, err)
	assert.Contains(t, string(onDisk), "v2", "the disk ends with the second update, as the store does")
	stored, err := store.MemoryStore.LoadFiles(context.Background(), id)
	require.NoError(t, err)
	assert.Contains(t, string(stored["src/App.tsx"]), "v2")
	assert.Equal(t, "export const two = 2\n", string(stored["src/second.ts"]))
	assert.Zero(t, staged(), "no staged file is left")
}

// TestUpdateQuotaCheckedInLine: an update that fits what the session held
// when it staged, but not once the update before it in line committed, is
// refused with the quota error, and leaves nothing of itself on disk or in
// the store.
func TestUpdateQuotaCheckedInLine(t *testing.T) {
	store := &gatedStore{entered: make(chan struct{}), release: make(chan struct{})}
	svc := startService(t, preview.Options{Store: store, NodeAddr: "127.0.0.1:9", NodeID: "a",
		Limits: preview.Limits{MaxSessionBytes: 1 << 20}})
	release := sync.OnceFunc(func() { close(store.release) })
	t.Cleanup(release)
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("v0")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	dir := filepath.Join(svc.base, "preview-"+id)

	big := func(name string) preview.File {
		return preview.File{Name: name, Content: "export const s = `" + strings.Repeat("x", 600<<10) + "`\n"}
	}
	store.mu.Lock()
	store.gate = true
	store.mu.Unlock()
	update := func(f preview.File) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := svc.m.Update(context.Background(), id, &preview.UpdateRequest{Files: []preview.File{f}})
			done <- err
		}()
		return done
	}
	first := update(big("src/one.ts"))
	<-store.entered
	second := update(big("src/two.ts")) // fits the 1 MiB beside what is committed, not beside one.ts
	require.Eventually(t, func() bool {
		entries, err := os.ReadDir(filepath.Join(dir, "src"))
		require.NoError(t, err)
		n := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".vitehost-tmp-") {
				n++
			}
		}
		return n == 2
	}, time.Minute, 5*time.Millisecond, "the second update stages while the first is in its store call")
	release()
	require.NoError(t, <-first)
	err := <-second
	require.ErrorIs(t, err, preview.ErrQuota)
	var qe *preview.QuotaError
	require.ErrorAs(t, err, &qe)
	t.Log(err)

	_, err = os.Stat(filepath.Join(dir, "src", "two.ts"))
	assert.ErrorIs(t, err, os.ErrNotExist, "the refused file is not on disk")
	stored, err := store.MemoryStore.LoadFiles(context.Background(), id)
	require.NoError(t, err)
	assert.Contains(t, stored, "src/one.ts")
	assert.NotContains(t, stored, "src/two.ts", "nor in the store")
	entries, err := os.ReadDir(filepath.Join(dir, "src"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), ".vitehost-tmp-"), "no staged file is left: %s", e.Name())
	}
}

// hangingTransform is a project's vite.config.js whose plugin's transform
// never resolves for a module that holds the marker HANG_FOREVER.
const hangingTransform = `import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const hang = {
  name: 'hang',
  transform(code) {
    if (code.includes('HANG_FOREVER')) return new Promise(() => {})
  },
}

export default defineConfig({ plugins: [react(), hang] })
`

// hangingHotUpdate is a project's vite.config.js whose plugin's
// handleHotUpdate hook never resolves for a change of a file that holds
// the marker HANG_FOREVER.
const hangingHotUpdate = `import fs from 'node:fs'
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const hang = {
  name: 'hang',
  handleHotUpdate(ctx) {
    if (fs.readFileSync(ctx.file, 'utf8').includes('HANG_FOREVER')) return new Promise(() => {})
  },
}

export default defineConfig({ plugins: [react(), hang] })
`

// TestHostileHangingBatch (a hostile probe's, on the code before the
// runner's abandon line) has a project whose plugin never resolves for
// one version of a module the page loaded: its transform (which the
// runner's compile-error check of a batch awaits), or its handleHotUpdate
// hook (Vite's HMR step, which the runner counts until it ends). The update
// that brings that version answers within HMRWait; the updates after it,
// of versions the plugin lets through, must have Vite's account again: one
// hook that never returns must not hold the runner's later batches, one
// after another, for the life of the dev server, so that each update of
// the session waits HMRWait for nothing.
func TestHostileHangingBatch(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"transform", hangingTransform},
		{"handleHotUpdate", hangingHotUpdate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := startService(t, preview.Options{})
			status, created := svc.api(t, "POST", "", map[string]any{"files": []any{
				map[string]any{"name": "vite.config.js", "content": tc.config},
				appTSX("v1"),
			}})
			require.Equal(t, 200, status, "body: %s", created.Raw)
			id := created.SessionID

			update := func(text string) apiResponse {
				t.Helper()
				status, res := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX(text)}})
				require.Equal(t, 200, status, "body: %s", res.Raw)
				return res
			}
			res := update("v2")
			require.Equal(t, preview.HMRUpdate, res.HMR.Type, "before the hang: %s", res.Raw)

			update("HANG_FOREVER") // answers within HMRWait, without Vite's account

			for _, v := range []string{"v3", "v4"} {
				res = update(v)
				assert.Equal(t, preview.HMRUpdate, res.HMR.Type,
					"%s, after the version the plugin never lets through was replaced, has Vite's account: %s", v, res.Raw)
			}
		})
	}
}

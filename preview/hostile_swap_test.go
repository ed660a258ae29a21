//go:build linux

package preview_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
	"github.com/vitehost/vitehost/preview/storetest"
)

// The attack of issue 19, finding 1: code in the sandbox replaces the files
// of its project that the host reads, with a symbolic link to a root-only
// host file, a FIFO, a directory, or a huge file, and the host then does
// what it does with a session directory: status, the file sync to a store
// that lost its records, hibernation, a wake (which reads package.json),
// a delete, a takeover by another node. Nothing of the host file may come
// back, nothing may block, and a wake that cannot read package.json must
// fail saying so.

// swapConfig is a vite.config.ts whose dev server, on a request for
// /__swap, replaces package.json and notes.txt (a file of the client's,
// which the file sync reads) with kind, pointing links at target, and
// leaves a link to the host directory trap and a FIFO for the delete.
func swapConfig(kind, target, trap string) map[string]any {
	return file("vite.config.ts", fmt.Sprintf(`import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import fs from 'node:fs'
import path from 'node:path'
import { execFileSync } from 'node:child_process'

const swap = (p: string) => {
  fs.rmSync(p, { recursive: true, force: true })
  switch (%[1]q) {
    case 'symlink': fs.symlinkSync(%[2]q, p); break
    case 'fifo': execFileSync('mkfifo', [p]); break
    case 'directory': fs.mkdirSync(p); break
    case 'huge': fs.writeFileSync(p, ''); fs.truncateSync(p, 32 << 20); break // sparse, past every bound
  }
}

export default defineConfig({
  plugins: [react(), {
    name: 'swap',
    configureServer(server) {
      server.middlewares.use('/__swap', (_req, res) => {
        try {
          const root = server.config.root
          swap(path.join(root, 'package.json'))
          swap(path.join(root, 'notes.txt'))
          fs.symlinkSync(%[3]q, path.join(root, 'trap-link'))
          execFileSync('mkfifo', [path.join(root, 'trap-fifo')])
          res.end('swapped')
        } catch (e) {
          res.statusCode = 500
          res.end(String(e))
        }
      })
    },
  }],
})
`, kind, target, trap))
}

// atime returns when the file at p was last read.
func atime(t *testing.T, p string) time.Time {
	t.Helper()
	info, err := os.Stat(p)
	require.NoError(t, err)
	st := info.Sys().(*syscall.Stat_t)
	return time.Unix(st.Atim.Sec, st.Atim.Nsec)
}

// backdate sets the access time of the file at p an hour before its
// modification: on a relatime or strictatime mount the next read of it
// moves its access time, which is how the test sees that the host read it.
func backdate(t *testing.T, p string) time.Time {
	t.Helper()
	info, err := os.Stat(p)
	require.NoError(t, err)
	at := info.ModTime().Add(-time.Hour)
	require.NoError(t, os.Chtimes(p, at, info.ModTime()))
	return atime(t, p)
}

// readsShow reports whether a read of a file in dir moves its backdated
// access time (not on a noatime mount).
func readsShow(t *testing.T, dir string) bool {
	t.Helper()
	p := filepath.Join(dir, "atime-probe")
	require.NoError(t, os.WriteFile(p, []byte("probe"), 0o600))
	before := backdate(t, p)
	_, err := os.ReadFile(p)
	require.NoError(t, err)
	return !atime(t, p).Equal(before)
}

// TestHostileSwappedFiles: for each kind of swap, one session of node A
// (Redis store, node B beside it) whose tenant code swaps the files the
// host reads.
func TestHostileSwappedFiles(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "bwrap")
	redis := storetest.Redis(t)
	// A keeps a spare runner, which the wakes take: a wake that fails must
	// neither leave it running nor keep the pool from refilling.
	a := startClusterWith(t, redis, preview.Options{IdleTimeout: 2 * time.Second, Spares: 1, SpareMemory: 200 << 20}, "a")[0]
	b := startClusterWith(t, redis, preview.Options{IdleTimeout: 2 * time.Second}, "b")[0]
	require.NoError(t, a.m.Prepare(context.Background())) // the template's optimized dependencies, which a spare needs

	dir := t.TempDir()
	marker := randomMarker("SWAPCANARY")
	canary := filepath.Join(dir, "canary.json")
	// JSON with a dependency: were it parsed as package.json, the wake
	// would succeed, and the tenant would learn it.
	require.NoError(t, os.WriteFile(canary, []byte(`{"dependencies":{"react":"*"},"token":"`+marker+`"}`), 0o600))
	trap := filepath.Join(dir, "trap")
	require.NoError(t, os.Mkdir(trap, 0o700))
	kept := filepath.Join(trap, "kept.txt")
	require.NoError(t, os.WriteFile(kept, []byte(marker), 0o600))
	watchReads := readsShow(t, dir)
	if !watchReads {
		t.Log("reads do not move access times on this mount: only the answers are checked for the canary")
	}
	canaryRead, keptRead := backdate(t, canary), backdate(t, kept)
	secrets := []secret{{"the root-only host file " + canary, marker}}
	ev := &evidence{}

	type victim struct {
		kind, why string // the swap, and what the failed wake says of it
		id        string
		created   apiResponse
		events    *sseStream
	}
	victims := []*victim{
		{kind: "symlink", why: "package.json is not a regular file (a symbolic link)"},
		{kind: "fifo", why: "package.json is not a regular file (a named pipe)"},
		{kind: "directory", why: "package.json is not a regular file (a directory)"},
		{kind: "huge", why: "package.json is too large"},
	}
	notes := file("notes.txt", "the client's notes")
	for _, v := range victims {
		status, created := a.collect(t, ev, "POST", "", map[string]any{"files": []any{appTSX(v.kind), notes, swapConfig(v.kind, canary, trap)}})
		require.Equal(t, 200, status, "body: %s", created.Raw)
		v.id, v.created = created.SessionID, created
		v.events = a.openEvents(t, v.id, "")
		// The request wakes the session if it hibernated meanwhile.
		status, body := a.fetch(t, ev, created.PreviewURL+"/__swap")
		require.Equal(t, 200, status, "%s: %s", v.kind, body)
		require.Equal(t, "swapped", body)
	}

	// Status, through the owner and through the other node.
	for _, v := range victims {
		for _, n := range []*service{a, b} {
			status, _ := n.collect(t, ev, "GET", "/"+v.id, nil)
			assert.Equal(t, 200, status)
		}
	}

	// The file sync: Redis restarts empty, and A writes its sessions back
	// from their directories.
	redis.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, redis.Start(ctx))
	store, err := redisstore.New(redis.URL("", 0), nil)
	require.NoError(t, err)
	defer store.Close()
	for _, v := range victims {
		require.Eventually(t, func() bool {
			files, err := store.LoadFiles(ctx, v.id)
			return err == nil && len(files) > 0
		}, wait, pollEvery, "A writes the files of the %s session back", v.kind)
		files, err := store.LoadFiles(ctx, v.id)
		require.NoError(t, err)
		for name, data := range files {
			ev.add(fmt.Sprintf("the store's copy of %s of the %s session", name, v.kind), string(data))
		}
		assert.NotContains(t, files, "notes.txt", "%s: the swapped client file is left out", v.kind)
		assert.Contains(t, string(files["package.json"]), `"dependencies"`, "%s: package.json comes from the dependency set", v.kind)
		assert.Contains(t, files, "src/App.tsx")
	}

	// Hibernation, then the wake that reads package.json: it fails, at
	// once, naming the file.
	for _, v := range victims {
		a.awaitStatus(t, v.id, preview.StatusHibernated)
	}
	awaitSpare(t, a, "a spare waits for the first wake") // which takes it
	for _, v := range victims {
		a.fetch(t, ev, v.created.PreviewURL+"/")
	}
	for _, v := range victims {
		var st apiResponse
		require.Eventually(t, func() bool {
			_, st = a.collect(t, ev, "GET", "/"+v.id, nil)
			return st.Status == string(preview.StatusError)
		}, wait, pollEvery, "the wake of the %s session fails", v.kind)
		var rec struct {
			Message string `json:"errorMessage"`
		}
		require.NoError(t, json.Unmarshal(st.Raw, &rec))
		assert.Contains(t, rec.Message, v.why, "%s: the status names the file", v.kind)
	}

	// The janitor goes on: a session made now still hibernates.
	status, control := a.collect(t, ev, "POST", "", map[string]any{"files": []any{appTSX("control")}})
	require.Equal(t, 200, status, "body: %s", control.Raw)
	a.awaitStatus(t, control.SessionID, preview.StatusHibernated)

	// The spare pool refills, and no runner of a failed wake is left: A
	// runs its spare, and nothing else runs.
	awaitSpare(t, a, "the spare pool did not refill, or a failed wake left a runner")

	// The delete of the first two removes what the tenant left in their
	// directories, the link to a host directory and the FIFO, and nothing
	// that the link points to; their event streams end with it.
	for _, v := range victims[:2] {
		status, _ := a.collect(t, ev, "DELETE", "/"+v.id, nil)
		require.Equal(t, 200, status)
		_, err := os.Stat(filepath.Join(a.base, "preview-"+v.id))
		assert.ErrorIs(t, err, os.ErrNotExist, "%s: the session directory is gone", v.kind)
		<-v.events.done
		close(v.events.events)
		for e := range v.events.events {
			data, _ := json.Marshal(e.Data)
			ev.add(fmt.Sprintf("event %s of the %s session", e.Type, v.kind), string(data))
		}
	}
	info, err := os.Stat(kept) // not a read: its access time stays
	require.NoError(t, err, "the host directory the tenant linked to is still there")
	assert.Equal(t, int64(len(marker)), info.Size())

	// The takeover of the other two: B starts them from the files A wrote
	// back, without the swapped ones.
	a.kill()
	for _, v := range victims[2:] {
		require.Eventually(t, func() bool {
			status, app, err := b.tryGet(v.created.PreviewURL + "/src/App.tsx")
			ev.add("B's App.tsx of the "+v.kind+" session", app)
			return err == nil && status == 200 && strings.Contains(app, v.kind)
		}, wait, pollEvery, "B takes the %s session over", v.kind)
		pkg, err := fileOf(b, v.id, "package.json")
		require.NoError(t, err)
		ev.add("B's package.json of the "+v.kind+" session", pkg)
		_, err = fileOf(b, v.id, "notes.txt")
		assert.ErrorIs(t, err, os.ErrNotExist, "%s: the swapped file did not travel", v.kind)
		b.collect(t, ev, "GET", "/"+v.id, nil)
	}

	ev.assertClean(t, secrets)
	if watchReads {
		assert.Equal(t, canaryRead, atime(t, canary), "no process read the root-only host file")
		assert.Equal(t, keptRead, atime(t, kept), "no process read the file in the linked host directory")
	}
}

// awaitSpare waits until node n has a spare runner ready and no other
// process runs (every session of the test sleeps or failed).
func awaitSpare(t *testing.T, n *service, msg string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		metrics, procs := scrapeText(t, n.m.Metrics()), testenv.NodeProcesses()
		if strings.Contains(metrics, "\nvitehost_preview_spare_runners 1\n") && len(procs) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d node processes: %s", msg, len(procs), procs)
		}
		time.Sleep(pollEvery)
	}
}

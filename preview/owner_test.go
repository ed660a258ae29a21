package preview

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/fsnotify/fsnotify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestOwnerGivesFilesToTheSandbox writes files as a root service does for
// a sandbox that runs as another user: every directory and file it made
// belongs to that user, and a directory that the tenant replaced with a
// link out of the project fails the write without touching what the link
// points to.
func TestOwnerGivesFilesToTheSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (the service hands files to the sandbox's user only as root)")
	}
	dir, outside := t.TempDir(), t.TempDir()
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()
	own := owner{uid: 65534, gid: 65534, set: true}
	require.NoError(t, writeFiles(root, []pendingFile{
		{name: "src/routes/index.tsx", data: []byte("x")},
		{name: "index.html", data: []byte("y")},
	}, own))
	for _, p := range []string{"src", "src/routes", "src/routes/index.tsx", "index.html"} {
		info, err := os.Lstat(filepath.Join(dir, p))
		require.NoError(t, err, p)
		st := info.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(65534), st.Uid, p)
		assert.Equal(t, uint32(65534), st.Gid, p)
	}

	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "lib")))
	err = writeFiles(root, []pendingFile{{name: "lib/x.ts", data: []byte("z")}}, own)
	assert.Error(t, err, "a link out of the project is not followed")
	info, err := os.Stat(outside)
	require.NoError(t, err)
	assert.Equal(t, uint32(os.Getuid()), info.Sys().(*syscall.Stat_t).Uid, "the link's target keeps its owner")
	entries, _ := os.ReadDir(outside)
	assert.Empty(t, entries)
}

// TestOwnerLeavesOwnedDirectoriesAlone writes into directories that are
// the sandbox user's already: no chown touches them, since each one is an
// event for Vite's watcher (it reads the directory again), which would
// slow every update down.
func TestOwnerLeavesOwnedDirectoriesAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (the service hands files to the sandbox's user only as root)")
	}
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()
	own := owner{uid: 65534, gid: 65534, set: true}
	require.NoError(t, writeFiles(root, []pendingFile{{name: "src/routes/index.tsx", data: []byte("x")}}, own))

	w, err := fsnotify.NewWatcher()
	require.NoError(t, err)
	defer w.Close()
	for _, d := range []string{".", "src", "src/routes"} {
		require.NoError(t, w.Add(filepath.Join(dir, d)))
	}
	require.NoError(t, writeFiles(root, []pendingFile{{name: "src/routes/index.tsx", data: []byte("y")}}, own))
	// One watcher's events come in order: once the marker's is in, so is
	// every event of the update.
	marker := filepath.Join(dir, "marker")
	require.NoError(t, os.WriteFile(marker, nil, 0o644))
	dirs := map[string]bool{dir: true, filepath.Join(dir, "src"): true, filepath.Join(dir, "src/routes"): true}
	for {
		select {
		case ev := <-w.Events:
			if ev.Name == marker {
				info, err := os.Lstat(filepath.Join(dir, "src/routes/index.tsx"))
				require.NoError(t, err)
				assert.Equal(t, uint32(65534), info.Sys().(*syscall.Stat_t).Uid, "the file is the sandbox user's")
				return
			}
			assert.False(t, dirs[ev.Name] && ev.Has(fsnotify.Chmod), "%s changed its attributes: %v", ev.Name, ev)
		case err := <-w.Errors:
			require.NoError(t, err)
		}
	}
}

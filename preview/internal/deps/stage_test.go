package deps

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestDeadStagesRemoved: the working directories of installs that a dead
// process left (each may hold hard links into the store) go at the next
// eviction pass; those that an install may still use stay.
func TestDeadStagesRemoved(t *testing.T) {
	dir := t.TempDir()
	c := New(dir, &Options{MaxBytes: -1, Timeout: time.Minute, Logger: testenv.Logger(t)})
	defer c.Close()
	old := time.Now().Add(-time.Hour)
	for _, name := range []string{"resolve-dead", "k1.stage-dead", "resolve-live", "k2.stage-live"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, name, "node_modules", "x"), 0o755))
	}
	for _, name := range []string{"resolve-dead", "k1.stage-dead"} {
		require.NoError(t, os.Chtimes(filepath.Join(dir, name), old, old))
	}
	c.sets()
	assert.NoDirExists(t, filepath.Join(dir, "resolve-dead"))
	assert.NoDirExists(t, filepath.Join(dir, "k1.stage-dead"))
	assert.DirExists(t, filepath.Join(dir, "resolve-live"), "an install may still be running in it")
	assert.DirExists(t, filepath.Join(dir, "k2.stage-live"))
}

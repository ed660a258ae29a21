package deps

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestPNPMCodeCache runs pnpm from its V8 code cache (pnpmcode.cjs): the
// first install writes the cache beside pnpm; the next ones read it (V8
// accepts it, so it is not written again) and install, pnpm's worker
// threads included; a cache V8 rejects is written anew, and the install
// still succeeds.
func TestPNPMCodeCache(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "npm")
	testenv.LookPath(t, "node")
	t.Setenv("CI", "true")
	dir := t.TempDir()
	c := New(dir, &Options{MaxBytes: -1, MaxInstalls: 1, Logger: testenv.Logger(t)})
	t.Cleanup(c.Close)
	require.NotNil(t, c.pnpm)
	cache := filepath.Join(dir, toolsDir, "pnpm-"+PNPMVersion, pnpmCodeCache)

	install := func(set Set) string {
		t.Helper()
		modules, err := c.Ensure(context.Background(), holdFor(t), set)
		require.NoError(t, err)
		return modules
	}
	a := install(Set{"clsx": "^2.1.0"})
	assert.FileExists(t, filepath.Join(a, "clsx", "package.json"))
	info, err := os.Stat(cache)
	require.NoError(t, err, "the first run writes the code cache")
	assert.Greater(t, info.Size(), int64(1<<20), "the bundle's compiled functions, not only its top level")
	written := inodeOf(t, cache)
	runners, err := filepath.Glob(filepath.Join(dir, toolsDir, "pnpmcode-*.cjs"))
	require.NoError(t, err)
	assert.Len(t, runners, 1)

	b := install(Set{"clsx": "^2.1.0", "ms": "^2.1.3"})
	assert.FileExists(t, filepath.Join(b, "ms", "index.js"), "pnpm's workers fetched and linked ms")
	assert.Equal(t, written, inodeOf(t, cache), "V8 accepted the cache: the run did not write it again")

	garbage := []byte("not a code cache")
	require.NoError(t, os.WriteFile(cache, garbage, 0o644))
	d := install(Set{"escape-html": "^1.0.3"})
	assert.FileExists(t, filepath.Join(d, "escape-html", "index.js"))
	data, err := os.ReadFile(cache)
	require.NoError(t, err)
	assert.NotEqual(t, garbage, data, "a rejected cache is written anew")
	assert.Greater(t, len(data), 1<<20)
	leftovers, err := filepath.Glob(cache + ".*")
	require.NoError(t, err)
	assert.Empty(t, leftovers, "no temporary files")
}

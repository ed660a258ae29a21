package deps

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// inodeOf returns the inode of path.
func inodeOf(t *testing.T, path string) uint64 {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	return info.Sys().(*syscall.Stat_t).Ino
}

// TestStoreWithPNPM installs sets through the package store with the real
// pnpm and the registry: two sets that share a package link one copy of
// its files (one inode, from the store); the layout is flat with the
// lockfile Vite's optimizer hashes; a set seen before costs no run; sets
// that cannot be resolved are refused naming the package; and eviction,
// over a bound, removes the unused set and the store files only it used,
// counting each inode once.
func TestStoreWithPNPM(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "npm")
	testenv.LookPath(t, "node")
	// Where CI is set pnpm freezes the lockfile unless told otherwise; a
	// set started from another's lockfile changes it.
	t.Setenv("CI", "true")
	dir := t.TempDir()
	var progress []Progress
	c := New(dir, &Options{MaxBytes: -1, MaxInstalls: 2, Logger: testenv.Logger(t)})
	t.Cleanup(c.Close)
	require.NotNil(t, c.pnpm, "nil commands: the store")

	holdA, releaseA := context.WithCancel(context.Background())
	defer releaseA()
	a, err := c.Install(context.Background(), holdA, Set{"clsx": "^2.1.0"}, nil, func(p Progress) { progress = append(progress, p) })
	require.NoError(t, err)
	require.NotEmpty(t, progress)
	assert.Equal(t, PhaseResolving, progress[0].Phase)
	assert.Equal(t, PhaseDone, progress[len(progress)-1].Phase)
	phases := map[Phase]bool{}
	for _, p := range progress {
		phases[p.Phase] = true
		if p.Phase == PhaseDownloading {
			assert.Equal(t, 1, p.Packages)
		}
	}
	assert.True(t, phases[PhaseDownloading] && phases[PhaseLinking], "%v", progress)
	assert.FileExists(t, filepath.Join(a, "clsx", "package.json"), "a flat layout")
	assert.FileExists(t, filepath.Join(a, ".pnpm", "lock.yaml"), "the lockfile Vite's optimizer hashes")
	fi, err := os.Lstat(filepath.Join(a, "clsx"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir(), "no symlinks: the sandbox mounts the set alone")

	holdB, releaseB := context.WithCancel(context.Background())
	defer releaseB()
	// From a, the set it extends: pnpm starts from a's lockfile, and only
	// ms is new.
	progress = nil
	b, err := c.Install(context.Background(), holdB, Set{"clsx": "^2.1.0", "ms": "^2.1.3"}, Set{"clsx": "^2.1.0"},
		func(p Progress) { progress = append(progress, p) })
	require.NoError(t, err)
	assert.Contains(t, progress, Progress{Phase: PhaseDownloading, Packages: 1}, "one package is new")
	assert.NotEqual(t, a, b)
	file := filepath.Join("clsx", "dist", "clsx.mjs")
	assert.Equal(t, inodeOf(t, filepath.Join(a, file)), inodeOf(t, filepath.Join(b, file)), "one copy of clsx, linked into both sets")
	assert.FileExists(t, filepath.Join(b, "ms", "index.js"))

	again, err := c.Ensure(context.Background(), holdB, Set{"ms": "^2.1.3", "clsx": "^2.1.0"})
	require.NoError(t, err)
	assert.Equal(t, b, again)

	for name, set := range map[string]Set{
		"vitehost-no-such-package-4f9a2c": {"vitehost-no-such-package-4f9a2c": "^1.0.0"},
		"clsx":                            {"clsx": "^99.0.0"},
	} {
		_, err := c.Ensure(context.Background(), holdA, set)
		var ie *InvalidError
		require.ErrorAs(t, err, &ie, name)
		assert.Equal(t, CodeBadDependency, ie.Code)
		assert.Contains(t, ie.Msg, name, "the message names the package")
		assert.Contains(t, ie.Msg, "pnpm ")
		assert.NotContains(t, ie.Msg, "registry.npmjs.org", "no registry address")
	}

	// A's install is untouched by b's, which started from its lockfile.
	assert.NoFileExists(t, filepath.Join(a, "ms", "index.js"))
	lock, err := os.ReadFile(filepath.Join(a, ".pnpm", "lock.yaml"))
	require.NoError(t, err)
	assert.NotContains(t, string(lock), "ms@")

	// Over a bound: b, unleased and old, goes, and with it ms's files in
	// the store; a stays, leased, and so do clsx's files.
	releaseB()
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Dir(b), old, old))
	msFile := filepath.Join(b, "ms", "index.js")
	msInode := inodeOf(t, msFile)
	c.wg.Wait()
	total := uniqueUsage(dir)
	c.maxBytes = total - 1
	require.Eventually(t, func() bool {
		c.evict()
		_, err := os.Stat(b)
		return os.IsNotExist(err)
	}, 30*time.Second, 10*time.Millisecond, "b's lease ends asynchronously")
	assert.DirExists(t, a)
	var stillStored bool
	filepath.WalkDir(filepath.Join(dir, storeDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil && info.Sys().(*syscall.Stat_t).Ino == msInode {
				stillStored = true
			}
		}
		return nil
	})
	assert.False(t, stillStored, "ms's files, which only b used, left the store")
	assert.Less(t, uniqueUsage(dir), total)
	_, err = os.Stat(filepath.Join(a, file))
	assert.NoError(t, err, "a's files are intact")

	// A set whose store files were pruned installs again: pnpm fetches what
	// is missing.
	c.maxBytes = -1
	b2, err := c.Ensure(context.Background(), holdFor(t), Set{"clsx": "^2.1.0", "ms": "^2.1.3"})
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(b2, "ms", "index.js"))
}

// TestPNPMLockfile reads a pnpm lockfile: specs that resolve alike share a
// key, the vite version and the package count come from it.
func TestPNPMLockfile(t *testing.T) {
	lock := func(spec, version string) []byte {
		return []byte(`lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      '@vitejs/plugin-react':
        specifier: ^6.0.0
        version: 6.3.1(vite@` + version + `)
      vite:
        specifier: ` + spec + `
        version: ` + version + `(@types/node@22.0.0)

packages:

  '@vitejs/plugin-react@6.3.1':
    resolution: {integrity: sha512-x}

  vite@` + version + `:
    resolution: {integrity: sha512-y}
    engines: {node: ^20.19.0 || >=22.12.0}

snapshots:

  vite@` + version + `: {}
`)
	}
	a, err := parsePNPMLockfile(lock("^8.0.0", "8.4.1"))
	require.NoError(t, err)
	assert.Equal(t, "8.4.1", a.vite)
	assert.Equal(t, 2, a.packages)
	b, err := parsePNPMLockfile(lock("8.x", "8.4.1"))
	require.NoError(t, err)
	assert.Equal(t, a.key, b.key, "the declared specs are left out")
	c, err := parsePNPMLockfile(lock("^8.0.0", "8.4.0"))
	require.NoError(t, err)
	assert.NotEqual(t, a.key, c.key)
	_, err = parsePNPMLockfile([]byte(`{"lockfileVersion":3}`))
	assert.Error(t, err)
}

// TestParsePNPMError turns pnpm's output into npm's codes and a reason that
// names the package without the registry's address.
func TestParsePNPMError(t *testing.T) {
	f := parsePNPMError("Progress: resolved 1, reused 0, downloaded 0, added 0\n\u2009ERR_PNPM_FETCH_404\u2009 GET https://registry.npmjs.org/nope-x: Not Found - 404\n\nThis error happened while installing a direct dependency of /tmp/x\n\nnope-x is not in the npm registry, or you have no permission to fetch it.\n")
	assert.True(t, f.client())
	assert.Equal(t, "E404", f.code)
	assert.Equal(t, "nope-x is not in the npm registry, or you have no permission to fetch it.", f.reason)
	f = parsePNPMError(" ERR_PNPM_NO_MATCHING_VERSION  No matching version found for clsx@^99.0.0 while fetching it from https://registry.npmjs.org/\n")
	assert.True(t, f.client())
	assert.Equal(t, "No matching version found for clsx@^99.0.0", f.reason)
	f = parsePNPMError(" ERR_PNPM_ENOSPC  ENOSPC: no space left on device, mkdir '/srv/cache/x'\n")
	assert.False(t, f.client())
	assert.NotContains(t, f.reason, "/srv")
	assert.Equal(t, "pnpm ERR_PNPM_ENOSPC: ENOSPC: no space left on device, mkdir '<path>'", pnpmFailure{f}.String())
}

package preview

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeInstall is an install command that counts its runs in a file and
// makes a node_modules directory, or fails when the dependency set names
// "fail-me".
func fakeInstall(t *testing.T) (cmd []string, count func() int) {
	log := filepath.Join(t.TempDir(), "installs")
	script := `echo run >> "$0"; if grep -q fail-me package.json; then echo "npm error 404 fail-me not found" >&2; exit 1; fi; sleep 0.2; mkdir -p node_modules/vite`
	return []string{"sh", "-c", script, log}, func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "run")
	}
}

func newCache(t *testing.T, cmd []string) *depCache {
	return &depCache{
		dir: t.TempDir(), command: cmd, timeout: time.Minute, ctx: context.Background(),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), calls: map[string]*installCall{},
	}
}

func TestDepCacheInstallsEachSetOnce(t *testing.T) {
	cmd, count := fakeInstall(t)
	c := newCache(t, cmd)
	ctx := context.Background()
	a := Deps{"react": "^19", "vite": "^8"}

	p1, err := c.ensure(ctx, a)
	require.NoError(t, err)
	assert.DirExists(t, p1)
	p2, err := c.ensure(ctx, Deps{"vite": "^8", "react": "^19"})
	require.NoError(t, err)
	assert.Equal(t, p1, p2)
	assert.Equal(t, 1, count(), "a second session with the same set reuses the install")

	p3, err := c.ensure(ctx, Deps{"vue": "^3", "vite": "^8"})
	require.NoError(t, err)
	assert.NotEqual(t, p1, p3)
	assert.Equal(t, 2, count(), "another set installs separately")

	var wg sync.WaitGroup
	paths := make([]string, 5)
	for i := range 5 {
		wg.Go(func() {
			p, err := c.ensure(ctx, Deps{"svelte": "^5", "vite": "^8"})
			assert.NoError(t, err)
			paths[i] = p
		})
	}
	wg.Wait()
	assert.Equal(t, 3, count(), "5 concurrent requests for one new set install once")
	for _, p := range paths {
		assert.Equal(t, paths[0], p)
	}
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".stage-", "no staging directory is left")
	}
}

func TestDepCacheFailureIsNotCached(t *testing.T) {
	cmd, count := fakeInstall(t)
	c := newCache(t, cmd)
	bad := Deps{"fail-me": "1", "vite": "^8"}
	_, err := c.ensure(context.Background(), bad)
	require.ErrorIs(t, err, ErrInstall)
	assert.Contains(t, err.Error(), "npm error 404 fail-me", "npm's output is quoted")
	_, err = c.ensure(context.Background(), bad)
	require.ErrorIs(t, err, ErrInstall)
	assert.Equal(t, 2, count(), "a failed install is tried again")
	_, err = os.Stat(filepath.Join(c.dir, bad.Key()))
	assert.True(t, os.IsNotExist(err))
}

func TestDepCacheWaitIsBoundedByContext(t *testing.T) {
	c := newCache(t, []string{"sh", "-c", "sleep 1; mkdir node_modules"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.ensure(ctx, Deps{"x": "1"})
	require.ErrorIs(t, err, context.Canceled)
	// The install goes on for the others, and ends.
	p, err := c.ensure(context.Background(), Deps{"x": "1"})
	require.NoError(t, err)
	assert.DirExists(t, p)
}

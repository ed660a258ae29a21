package deps

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

	"github.com/vitehost/vitehost/internal/testenv"
)

const (
	wait      = 30 * time.Second // a deadline, never a measurement
	pollEvery = 10 * time.Millisecond
)

// fakeNPM is a fake resolve and install command (testdata/fakenpm). hold
// is the gate file: while it exists, installs wait. runs reads the log, one
// line per run.
type fakeNPM struct {
	resolve, install []string
	hold, log        string
}

func newFakeNPM(t *testing.T) *fakeNPM {
	t.Helper()
	testenv.LookPath(t, "sh")
	dir := t.TempDir()
	f := &fakeNPM{hold: filepath.Join(dir, "hold"), log: filepath.Join(dir, "runs")}
	scripts, err := filepath.Abs(filepath.Join("testdata", "fakenpm"))
	require.NoError(t, err)
	f.resolve = []string{"sh", filepath.Join(scripts, "resolve.sh"), f.log}
	f.install = []string{"sh", filepath.Join(scripts, "install.sh"), f.log, f.hold}
	return f
}

// runs returns the lines of the log that start with what ("resolve",
// "install").
func (f *fakeNPM) runs(what string) []string {
	b, _ := os.ReadFile(f.log)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, what+" ") {
			out = append(out, l)
		}
	}
	return out
}

func (f *fakeNPM) closeGate(t *testing.T) { require.NoError(t, os.WriteFile(f.hold, nil, 0o644)) }
func (f *fakeNPM) openGate(t *testing.T)  { require.NoError(t, os.Remove(f.hold)) }

func newCache(t *testing.T, f *fakeNPM, maxInstalls int) *Cache {
	c := New(t.TempDir(), &Options{
		Install: f.install, Resolve: f.resolve, Timeout: time.Minute, MaxBytes: -1,
		MaxInstalls: maxInstalls, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	t.Cleanup(c.Close)
	return c
}

// holdFor returns a context for the leases of one test step.
func holdFor(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

func TestDepCacheInstallsEachSetOnce(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 2)
	ctx, hold := context.Background(), holdFor(t)
	a := Set{"react": "^19", "vite": "^8"}

	p1, err := c.Ensure(ctx, hold, a)
	require.NoError(t, err)
	assert.DirExists(t, p1)
	p2, err := c.Ensure(ctx, hold, Set{"vite": "^8", "react": "^19"})
	require.NoError(t, err)
	assert.Equal(t, p1, p2)
	assert.Len(t, f.runs("install"), 1, "a second session with the same set reuses the install")
	assert.Len(t, f.runs("resolve"), 1, "and the remembered resolution: npm does not run at all")

	p3, err := c.Ensure(ctx, hold, Set{"vue": "^3", "vite": "^8"})
	require.NoError(t, err)
	assert.NotEqual(t, p1, p3)
	assert.Len(t, f.runs("install"), 2, "another set installs separately")

	var wg sync.WaitGroup
	paths := make([]string, 5)
	for i := range 5 {
		wg.Go(func() {
			p, err := c.Ensure(ctx, hold, Set{"svelte": "^5", "vite": "^8"})
			assert.NoError(t, err)
			paths[i] = p
		})
	}
	wg.Wait()
	assert.Len(t, f.runs("install"), 3, "5 concurrent requests for one new set install once")
	for _, p := range paths {
		assert.Equal(t, paths[0], p)
	}
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".stage-", "no staging directory is left")
		assert.False(t, strings.HasPrefix(e.Name(), "resolve-"), "no resolution directory is left")
	}
	assert.True(t, c.Installed(a))
	assert.False(t, c.Installed(Set{"never": "1", "vite": "^8"}))
}

// TestDepCacheOneKeyForEquivalentSpecs declares vite three ways that npm
// resolves alike: the set installs once (the key is the resolved lockfile's).
func TestDepCacheOneKeyForEquivalentSpecs(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 2)
	var paths []string
	for _, spec := range []string{"^8.0.0", "8.x", ">=8"} {
		p, err := c.Ensure(context.Background(), holdFor(t), Set{"react": "^19.2.0", "vite": spec})
		require.NoError(t, err, spec)
		paths = append(paths, p)
	}
	assert.Len(t, f.runs("resolve"), 3, "each declared set is resolved once")
	assert.Len(t, f.runs("install"), 1, "and installed once: they resolve to the same packages")
	assert.Equal(t, paths[0], paths[1])
	assert.Equal(t, paths[0], paths[2])
}

func TestDepCacheFailureIsNotCached(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 2)
	bad := Set{"fail-me": "1.0.0", "vite": "^8"}
	_, err := c.Ensure(context.Background(), holdFor(t), bad)
	var re *InvalidError
	require.ErrorAs(t, err, &re, "a set npm cannot resolve as declared is the client's mistake: %v", err)
	assert.Equal(t, CodeBadDependency, re.Code)
	assert.Equal(t, "the dependencies cannot be resolved: npm ETARGET: No matching version found for fail-me@1.0.0.", re.Msg,
		"npm's code and one-line reason, nothing else")
	_, err = c.Ensure(context.Background(), holdFor(t), bad)
	require.ErrorAs(t, err, &re)
	assert.Len(t, f.runs("resolve"), 2, "a failed resolution is tried again")

	_, err = c.Ensure(context.Background(), holdFor(t), Set{"offline-me": "1.0.0", "vite": "^8"})
	require.ErrorIs(t, err, ErrInstall, "a failure of the network is the service's")
	assert.NotErrorAs(t, err, &re)
	assert.NotContains(t, err.Error(), "/root", "no host path")
	assert.NotContains(t, err.Error(), "10.0.0.1", "no address")
	assert.NotContains(t, err.Error(), "registry.example", "no registry URL")
	assert.Contains(t, err.Error(), "npm ECONNREFUSED")
	assert.Empty(t, f.runs("install"))
}

// TestDepCacheViteFloor: by default an old vite installs, with a warning;
// an operator's floor refuses it on the version npm resolved.
func TestDepCacheViteFloor(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 2)
	_, err := c.Ensure(context.Background(), holdFor(t), Set{"vite": "4.5.14"})
	require.NoError(t, err, "Vite 4.5 runs by default")
	w := c.Warnings(Set{"vite": "4.5.14"})
	require.Len(t, w, 1)
	assert.Equal(t, WarnViteAdvisories, w[0].Code)

	f = newFakeNPM(t)
	c = newCache(t, f, 2)
	c.floor = "6.4.3"
	_, err = c.Ensure(context.Background(), holdFor(t), Set{"vite": "6.0.3"})
	var re *InvalidError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeViteVersion, re.Code)
	assert.Contains(t, re.Msg, "6.4.3")
	assert.Empty(t, f.runs("install"), "refused before anything is installed")
	_, err = c.Ensure(context.Background(), holdFor(t), Set{"vite": "6.0.3"})
	require.ErrorAs(t, err, &re, "the remembered resolution is refused too")
	assert.Len(t, f.runs("resolve"), 1)

	_, err = c.Ensure(context.Background(), holdFor(t), Set{"vite": "8.0.16"})
	require.NoError(t, err)
}

// TestDepCacheQueue runs three installs with room for one: they run in the
// order they asked, and one whose requester gave up while it waited never
// runs.
func TestDepCacheQueue(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 1)
	f.closeGate(t)
	hold := holdFor(t)
	sets := []Set{{"a": "1", "vite": "^8"}, {"b": "1", "vite": "^8"}, {"c": "1", "vite": "^8"}}
	errs := make([]error, 3)
	var wg sync.WaitGroup
	start := func(i int, ctx context.Context) {
		wg.Go(func() { _, errs[i] = c.Ensure(ctx, hold, sets[i]) })
	}
	start(0, context.Background())
	require.Eventually(t, func() bool { return len(f.runs("install")) == 1 }, wait, pollEvery, "a runs")
	ctxB, stopB := context.WithCancel(context.Background())
	start(1, ctxB)
	require.Eventually(t, func() bool { _, q := c.queue.counts(); return q == 1 }, wait, pollEvery, "b waits")
	start(2, context.Background())
	require.Eventually(t, func() bool { _, q := c.queue.counts(); return q == 2 }, wait, pollEvery, "c waits after b")
	assert.Len(t, f.runs("resolve"), 1, "the queue holds resolutions too: only a's ran")

	stopB() // b's only requester gives up
	require.Eventually(t, func() bool { _, q := c.queue.counts(); return q == 1 }, wait, pollEvery, "b left the queue")
	f.openGate(t)
	wg.Wait()
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], context.Canceled)
	require.NoError(t, errs[2])
	installs := f.runs("install")
	require.Len(t, installs, 2, "b never ran")
	assert.Contains(t, installs[0], `"node_modules/a"`)
	assert.Contains(t, installs[1], `"node_modules/c"`)
	running, queued := c.queue.counts()
	assert.Zero(t, running)
	assert.Zero(t, queued)
}

// TestDepCacheCancel gives up on installs under way: one with two waiters
// goes on when one of them leaves; one whose last waiter leaves is stopped,
// its processes killed, and nothing of it is left.
func TestDepCacheCancel(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 2)
	f.closeGate(t)
	set := Set{"slow": "1", "vite": "^8"}

	ctx1, stop1 := context.WithCancel(context.Background())
	ctx2, stop2 := context.WithCancel(context.Background())
	done1, done2 := make(chan error, 1), make(chan error, 1)
	go func() { _, err := c.Ensure(ctx1, holdFor(t), set); done1 <- err }()
	go func() { _, err := c.Ensure(ctx2, holdFor(t), set); done2 <- err }()
	require.Eventually(t, func() bool { return len(f.runs("install")) == 1 }, wait, pollEvery)
	stop1()
	require.ErrorIs(t, <-done1, context.Canceled)
	assert.NotEmpty(t, testenv.Processes(), "the install goes on for the other waiter")

	stop2()
	require.ErrorIs(t, <-done2, context.Canceled)
	require.Eventually(t, func() bool { return len(testenv.Processes()) == 0 }, wait, pollEvery, "the install is killed: %v", testenv.Processes())
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.calls) == 0
	}, wait, pollEvery)
	// The cancelled install removes its staging directory once its
	// process is gone, after the call is forgotten.
	require.Eventually(t, func() bool {
		entries, _ := os.ReadDir(c.dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".stage-") {
				return false
			}
		}
		return true
	}, wait, pollEvery, "no staging directory is left")

	// The next request starts afresh, and completes.
	f.openGate(t)
	p, err := c.Ensure(context.Background(), holdFor(t), set)
	require.NoError(t, err)
	assert.DirExists(t, p)
	assert.Len(t, f.runs("install"), 2)
}

// TestDepCacheEviction fills a cache over its bound: the sets no lease
// holds go, least recently used first; a leased one stays.
func TestDepCacheEviction(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 2)
	hold := func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }

	holdA, releaseA := hold()
	defer releaseA()
	a, err := c.Ensure(context.Background(), holdA, Set{"a": "1", "vite": "^8"})
	require.NoError(t, err)
	holdB, releaseB := hold()
	b, err := c.Ensure(context.Background(), holdB, Set{"b": "1", "vite": "^8"})
	require.NoError(t, err)
	holdC, releaseC := hold()
	cc, err := c.Ensure(context.Background(), holdC, Set{"c": "1", "vite": "^8"})
	require.NoError(t, err)
	releaseB()
	releaseC()
	// Age the marks of use past the grace: a (leased) oldest, then b, then c.
	for i, p := range []string{a, b, cc} {
		old := time.Now().Add(-time.Hour + time.Duration(i)*time.Minute)
		require.NoError(t, os.Chtimes(filepath.Dir(p), old, old))
	}
	c.wg.Wait() // the evictions after the installs
	sets, total := c.sets()
	require.Len(t, sets, 3)
	c.maxBytes = total - 1 // one set too many
	require.Eventually(t, func() bool {
		c.evict()
		_, err := os.Stat(b)
		return os.IsNotExist(err)
	}, wait, pollEvery, "b, the least recently used set without a lease, goes (its lease ends asynchronously)")
	assert.DirExists(t, a, "a is older, but leased")
	assert.DirExists(t, cc, "c is newer: the cache fits without removing it")
	assert.False(t, c.Installed(Set{"b": "1", "vite": "^8"}))

	c.maxBytes = 0 // only this goroutine evicts now
	c.evict()
	assert.DirExists(t, a, "a lease keeps a set whatever the bound")
	releaseA()
	require.Eventually(t, func() bool {
		c.evict()
		_, err := os.Stat(a)
		return os.IsNotExist(err)
	}, wait, pollEvery)

	// A set used within the grace stays.
	d, err := c.Ensure(context.Background(), holdFor(t), Set{"d": "1", "vite": "^8"})
	require.NoError(t, err)
	c.wg.Wait()
	c.evict()
	assert.DirExists(t, d)
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".trash-")
	}
}

// TestResolveWithNPM resolves with the real npm (the registry, no install):
// three ways of writing one range get one key, and a range whose versions
// all lie below the floor is refused before anything is installed.
func TestResolveWithNPM(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "npm")
	f := newFakeNPM(t)
	f.resolve = DefaultResolve()
	c := newCache(t, f, 2)
	c.floor = "6.4.3"
	var paths []string
	for _, spec := range []string{"^8.0.0", "8.x", ">=8.0.0 <9"} {
		start := time.Now()
		p, err := c.Ensure(context.Background(), holdFor(t), Set{"vite": spec})
		require.NoError(t, err, spec)
		t.Logf("vite %q: resolved and installed (fake) in %s", spec, time.Since(start).Round(time.Millisecond))
		paths = append(paths, p)
	}
	assert.Equal(t, paths[0], paths[1])
	assert.Equal(t, paths[0], paths[2])
	assert.Len(t, f.runs("install"), 1, "npm resolves the three alike: one install")

	_, err := c.Ensure(context.Background(), holdFor(t), Set{"vite": "~6.0.0"})
	var re *InvalidError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeViteVersion, re.Code)
	assert.Regexp(t, `vite 6\.0\.\d+ is older than 6\.4\.3`, re.Msg, "decided on the version npm resolved the range to")
	assert.Len(t, f.runs("install"), 1)

	_, err = c.Ensure(context.Background(), holdFor(t), Set{"vite": "^99.0.0"})
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "the dependencies cannot be resolved: npm ETARGET: No matching version found for vite@^99.0.0.", re.Msg)
}

// TestDepCachePeerConflict: a set that npm refuses for a peer conflict is
// resolved and installed again with --legacy-peer-deps, remembered as
// such, and its warning says so; other sets are not.
func TestDepCachePeerConflict(t *testing.T) {
	f := newFakeNPM(t)
	c := newCache(t, f, 1)
	ctx, hold := context.Background(), holdFor(t)
	conflict := Set{"peer-conflict-me": "^1", "react": "^19", "vite": "^8"}
	_, err := c.Ensure(ctx, hold, conflict)
	require.NoError(t, err)
	resolves := f.runs("resolve")
	require.Len(t, resolves, 2)
	assert.NotContains(t, resolves[0], "--legacy-peer-deps")
	assert.Contains(t, resolves[1], "--legacy-peer-deps")
	installs := f.runs("install")
	require.Len(t, installs, 1)
	assert.Contains(t, installs[0], "--legacy-peer-deps")
	w := c.Warnings(conflict)
	require.Len(t, w, 1)
	assert.Equal(t, WarnLegacyPeerDeps, w[0].Code)

	// Remembered: the next session neither resolves nor warns differently.
	_, err = c.Ensure(ctx, hold, conflict)
	require.NoError(t, err)
	assert.Len(t, f.runs("resolve"), 2)
	assert.Equal(t, w, c.Warnings(conflict))

	plain := Set{"react": "^19", "vite": "5.4.21"}
	_, err = c.Ensure(ctx, hold, plain)
	require.NoError(t, err)
	w = c.Warnings(plain)
	require.Len(t, w, 1, "an old vite warns, no peer conflict")
	assert.Equal(t, WarnViteAdvisories, w[0].Code)
}

package vite_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// TestSandboxMemoryLimitCrashes runs a project whose dev server starts,
// serves, and then allocates without end: the kernel kills it at the
// sandbox's memory limit at every run. It is restarted MaxLimitCrashes
// times, OnCrash hears of each kill, and then the Server gives up with an
// error that names the limit, instead of restarting forever.
func TestSandboxMemoryLimitCrashes(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	if _, err := sandbox.CgroupSupport(); err != nil {
		testenv.Missing(t, err.Error())
	}
	project, modules := sandboxFixture(t, "vite8-react")
	require.NoError(t, os.WriteFile(filepath.Join(project, "vite.config.js"), []byte(`export default {
  plugins: [{
    name: 'hog',
    configureServer() {
      setTimeout(() => { const keep = []; for (;;) keep.push(Buffer.alloc(8 << 20, 1)) }, 2000)
    },
  }],
}
`), 0o644))
	cfg := sandboxConfig(t, modules, randomLabel("oomloop"))
	cfg.Limits.Memory = 256 << 20
	var mu sync.Mutex
	var crashes []bool // restarting, per crash
	var errs []error
	s, err := vite.Start(context.Background(), project, &vite.Options{
		Sandbox: cfg, Logger: testLogger(t), MaxLimitCrashes: 2,
		OnCrash: func(err error, restarting bool) {
			mu.Lock()
			defer mu.Unlock()
			crashes = append(crashes, restarting)
			errs = append(errs, err)
		},
	})
	require.NoError(t, err, "the dev server starts before it allocates")
	select {
	case <-s.Done():
	case <-time.After(2 * time.Minute):
		s.Stop(context.Background())
		t.Fatal("the Server still restarts the dev server")
	}
	assert.ErrorIs(t, s.Err(), sandbox.ErrMemoryLimit)
	assert.ErrorIs(t, s.Err(), vite.ErrExited)
	mu.Lock()
	assert.Equal(t, []bool{true, true, false}, crashes, "two restarts, then it gives up")
	for _, err := range errs {
		assert.ErrorIs(t, err, sandbox.ErrMemoryLimit)
	}
	mu.Unlock()
	require.NoError(t, s.Stop(context.Background()))
	assert.Empty(t, testenv.Processes())
}

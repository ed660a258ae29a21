package preview

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// newSandboxedManager returns a Manager with the real sandbox and no
// spares, closed when t ends.
func newSandboxedManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	testenv.Short(t)
	testenv.LookPath(t, "bwrap")
	if opts.PublicURL == "" {
		opts.PublicURL = "http://localhost:8080"
	}
	opts.BaseDir = testenv.TempDir(t)
	if opts.CacheDir == "" {
		opts.CacheDir = testenv.TempDir(t)
	}
	opts.Spares = -1
	opts.Logger = testenv.Logger(t)
	opts.Sandbox.Env = append(opts.Sandbox.Env, testenv.OwnerEnv()) // for the leak check
	m, err := New(&opts)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// TestReadyzHammered is the attack of issue 19 (finding 6): 32 anonymous
// clients ask /readyz as fast as they can. Each check starts a real
// bubblewrap sandbox; the node runs the checks once per readyEvery, not
// once per request, and every client gets the shared answer.
func TestReadyzHammered(t *testing.T) {
	m := newSandboxedManager(t, Options{})
	m.ready.every = time.Hour // one run serves the whole attack
	srv := httptest.NewServer(m.Readyz())
	defer srv.Close()

	const clients, each = 32, 20
	var wg sync.WaitGroup
	answers := make(chan map[string]any, clients*each)
	for range clients {
		wg.Go(func() {
			for range each {
				res, err := http.Get(srv.URL)
				if !assert.NoError(t, err) {
					return
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				assert.NoError(t, err)
				var out map[string]any
				assert.NoError(t, json.Unmarshal(body, &out), "%s", body)
				answers <- out
			}
		})
	}
	wg.Wait()
	close(answers)
	n := 0
	for out := range answers {
		n++
		assert.Equal(t, "ok", out["checks"].(map[string]any)["sandbox"], "the sandbox check ran, and its result is shared")
	}
	assert.Equal(t, clients*each, n)
	m.ready.mu.Lock()
	runs := m.ready.runs
	m.ready.mu.Unlock()
	assert.Equal(t, 1, runs, "%d requests started one sandbox check", n)
}

// TestReadinessSharesOneRun checks the cache itself: callers that come
// while a run is under way wait for it and share its result, a result is
// reused until it is older than every, and a caller that leaves does not
// cancel the run the others wait for.
func TestReadinessSharesOneRun(t *testing.T) {
	c := newReadiness(time.Hour)
	gate := make(chan struct{})
	started := make(chan struct{}, 1)
	run := func(ctx context.Context) readyProbe {
		started <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return readyProbe{checks: map[string]string{"x": "canceled"}}
		}
		return readyProbe{checks: map[string]string{"x": "ok"}}
	}
	leaving, leave := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := c.get(leaving, run); first <- err }()
	<-started
	var wg sync.WaitGroup
	results := make(chan readyProbe, 16)
	for range 16 {
		wg.Go(func() {
			res, err := c.get(context.Background(), run)
			assert.NoError(t, err)
			results <- res
		})
	}
	leave() // the caller that started the run goes away
	close(gate)
	require.NoError(t, <-first, "the run it started went on")
	wg.Wait()
	close(results)
	for res := range results {
		assert.Equal(t, "ok", res.checks["x"])
	}
	assert.Equal(t, 1, c.runs)
	assert.Empty(t, started, "no second run")

	// A caller whose context ends while it waits leaves without a result.
	c = newReadiness(0)
	gate = make(chan struct{})
	go c.get(context.Background(), run)
	<-started
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.get(gone, run)
	assert.ErrorIs(t, err, context.Canceled)
	close(gate)
}

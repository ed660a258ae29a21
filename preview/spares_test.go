package preview

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestSparesFollowDemand creates sessions of the template's set in two
// bursts with real sandboxed Vite: after the first, the stock grows from
// Spares (1) to the size of the burst, capped by SpareMemory; every session
// of the second burst then starts in a spare; once nothing asks for more
// for SpareIdle, the stock shrinks back to Spares. The stock never holds
// more than SpareMemory allows, and the spares missing after a burst are
// made on all cores but one at once.
func TestSparesFollowDemand(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	const budget = 3
	m := startBrowserManagerWith(t, func(o *Options) {
		o.Spares, o.SpareMemory, o.SpareIdle = 1, budget*spareCost, 15*time.Second
	})
	p := m.env.spares
	require.NotNil(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The stock's size (waiting and being made), sampled for the whole test.
	var (
		peak     int
		making   int // the most spares made at once
		sampling sync.WaitGroup
		stop     = make(chan struct{})
	)
	sampling.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			p.mu.Lock()
			peak = max(peak, len(p.idle)+p.making)
			making = max(making, p.making)
			p.mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	defer func() {
		close(stop)
		sampling.Wait()
		assert.LessOrEqual(t, peak, budget, "the stock never exceeds SpareMemory")
		assert.Equal(t, atOnce(budget, runtime.NumCPU()), making, "the spares missing after a burst are made on all cores but one at once")
	}()

	require.NoError(t, m.Prepare(ctx), "the template's optimized dependencies, which a spare needs")
	awaitSpares := func(n int, why string) {
		t.Helper()
		require.Eventually(t, func() bool { return p.ready() == n }, 2*time.Minute, 20*time.Millisecond,
			"%s: %d spares ready, want %d", why, p.ready(), n)
	}
	burst := func(n int, name string) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := m.Create(ctx, &CreateRequest{Files: []File{{Name: "src/App.tsx",
					Content: fmt.Sprintf("export default function App() { return <h1>%s %d</h1> }\n", name, i)}}})
				assert.NoError(t, err)
			})
		}
		wg.Wait()
	}
	awaitSpares(1, "Spares")

	// (The service's own session, Prepare's, may have found a spare or
	// not: the counts are taken from here.)
	taken, missed := p.taken.Load(), p.missed.Load()
	burst(budget+1, "first")
	assert.Equal(t, taken+1, p.taken.Load(), "the first burst found one spare")
	assert.Equal(t, missed+budget, p.missed.Load(), "the rest of it started runners of their own")
	awaitSpares(budget, "the stock grows to the burst, within the budget")

	taken, missed = p.taken.Load(), p.missed.Load()
	burst(budget, "second")
	assert.Equal(t, taken+budget, p.taken.Load(), "each session of the second burst started in a spare")
	assert.Equal(t, missed, p.missed.Load(), "none of the second burst started a runner of its own")

	// The stock is made up again, then nothing asks for spares for
	// SpareIdle: it shrinks to Spares.
	awaitSpares(budget, "the stock is made up after the second burst")
	awaitSpares(1, "the stock shrinks back once idle")
}

// TestWakeLoadsWhatPagesAsked: a module that no page imports statically
// (a lazy route, a computed import()) and that a page asked for before the
// session hibernated is transformed again at the wake, before anyone asks
// for it. A plugin of the project's Vite config writes down each module it
// transforms. Hostile requests recorded meanwhile (/@fs/ paths, a flood of
// missing modules) change nothing of that.
func TestWakeLoadsWhatPagesAsked(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	m := startBrowserManagerWith(t, func(o *Options) { o.Spares = -1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	config := `import fs from 'node:fs'
import react from '@vitejs/plugin-react'

export default {
  plugins: [react(), {
    name: 'transform-log',
    transform(code, id) {
      if (id.includes('/src/')) fs.appendFileSync('.vite-cache/transformed.log', id.slice(id.indexOf('/src/')) + '\n')
    },
  }],
}
`
	info, err := m.Create(ctx, &CreateRequest{Files: []File{
		{Name: "vite.config.js", Content: config},
		{Name: "src/lazy.ts", Content: "export const lazy = 'loaded at run time only'\n"},
	}})
	require.NoError(t, err)
	s := m.local(info.SessionID)
	require.NotNil(t, s)
	router := m.Router(m.API())
	get := func(target string) int {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Host = s.previewURL.Host
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, r)
		return rec.Code
	}
	transformed := func() string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(s.dir, ".vite-cache", "transformed.log"))
		if errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		require.NoError(t, err)
		return string(b)
	}
	<-s.current().warmed
	require.NotContains(t, transformed(), "/src/lazy.ts", "no crawl of the page finds it")

	// A page asks for it, and a hostile client for much else.
	require.Equal(t, http.StatusOK, get("/src/lazy.ts"))
	require.Contains(t, transformed(), "/src/lazy.ts")
	get("/@fs/etc/passwd")
	for i := range 2 * maxWarmModules {
		get(fmt.Sprintf("/src/missing-%d.ts", i))
	}
	assert.Len(t, s.warm.list(), maxWarmModules, "the list is bounded")
	assert.NotContains(t, s.warm.list(), "/@fs/etc/passwd")

	s.hibernate(0)
	require.Equal(t, StatusHibernated, s.record().Status)
	require.NoError(t, os.Remove(filepath.Join(s.dir, ".vite-cache", "transformed.log")))

	// An update wakes it; nothing asks for the lazy module.
	_, err = m.Update(ctx, info.SessionID, &UpdateRequest{Files: []File{{Name: "src/App.tsx", Content: "export default function App() { return <h1>woken</h1> }\n"}}})
	require.NoError(t, err)
	r := s.current()
	require.NotNil(t, r)
	<-r.warmed
	assert.Contains(t, transformed(), "/src/lazy.ts", "the wake transformed what the page had asked for")
	assert.Contains(t, transformed(), "/src/App.tsx", "and the page's modules")
}

// TestAtOnce: a spare or two missing are made one at a time, more are
// made on all cores but one at once.
func TestAtOnce(t *testing.T) {
	for _, tc := range []struct{ missing, cores, want int }{
		{0, 8, 1},
		{1, 8, 1},
		{2, 8, 1},
		{3, 8, 3},
		{20, 8, 7},
		{20, 3, 2},
		{20, 2, 1},
		{20, 1, 1},
		{5, 0, 1},
	} {
		assert.Equal(t, tc.want, atOnce(tc.missing, tc.cores), "%d missing on %d cores", tc.missing, tc.cores)
	}
}

// TestBeginMaking: the stock starts making spares while fewer than the
// demand asks for wait or are being made, as many at once as atOnce says,
// and none while a session's dev server starts.
func TestBeginMaking(t *testing.T) {
	p := &spares{demand: newDemand(1, 10*spareCost, time.Minute), parallel: 3}
	begun := func() int {
		n := 0
		for p.beginMaking() {
			n++
		}
		return n
	}
	assert.Equal(t, 1, begun(), "Spares: one")
	p.making = 0
	p.idle = []*idleSpare{{}}
	assert.Equal(t, 0, begun(), "Spares waits")

	// A burst of six: five are missing, made two at a time on three cores.
	now := time.Now()
	for range 6 {
		p.demand.arrive(now)
	}
	p.starting = 1
	assert.Equal(t, 0, begun(), "not while a session's dev server starts")
	p.starting = 0
	assert.Equal(t, 2, begun(), "on all cores but one")
	p.making--
	p.idle = append(p.idle, &idleSpare{})
	assert.Equal(t, 1, begun(), "the next one once one is made")

	// Two missing, one of them being made: the other waits.
	p.making = 1
	p.idle = make([]*idleSpare, 4)
	assert.Equal(t, 0, begun(), "one at a time when two are missing")
	p.making = 0
	assert.Equal(t, 1, begun())
}

package preview

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// Deadlines of the package's own tests (never measurements).
const (
	wait      = 60 * time.Second
	pollEvery = 20 * time.Millisecond
)

// TestJanitorStuckSession: an expired session whose stop does not finish
// (here its start never returns; in issue 19 a wake blocked on a FIFO)
// holds up neither the janitor nor the expiry of the others.
func TestJanitorStuckSession(t *testing.T) {
	m, err := New(&Options{
		PublicURL: "http://localhost:8080",
		NoSandbox: true,
		TTL:       time.Second, // a janitor round every 250 ms
		BaseDir:   t.TempDir(),
		CacheDir:  t.TempDir(),
		Logger:    testenv.Logger(t),
	})
	require.NoError(t, err)
	defer m.Close(context.Background())

	stuck := m.newSession(Record{ID: "stuck", ExpiresAt: time.Now()})
	require.NoError(t, m.register(stuck))
	defer stuck.abort(errors.New("the test ends")) // lets its stop, and Close, finish
	require.Eventually(t, func() bool { return m.local("stuck") == nil }, wait, pollEvery, "the janitor begins the expiry")

	// The janitor's next rounds come while the stuck session's stop waits.
	next := m.newSession(Record{ID: "next", ExpiresAt: time.Now()})
	next.abort(errors.New("never started"))
	require.NoError(t, m.register(next))
	require.Eventually(t, func() bool { return m.local("next") == nil }, wait, pollEvery, "the janitor expires another session")
	select {
	case <-next.stopped:
	case <-time.After(wait):
		t.Fatal("the other session's stop did not finish")
	}
	select {
	case <-stuck.stopped:
		t.Fatal("the stuck session stopped: the test tested nothing")
	default:
	}
}

// gatedDeletes is a MemoryStore whose Delete calls wait at a gate, one
// let through for each value sent on pass, all once open is closed; it
// counts the calls that wait, and the most that waited at once.
type gatedDeletes struct {
	MemoryStore
	pass chan struct{}
	open chan struct{}

	mu             sync.Mutex
	waiting, most  int
	withoutTimeout int // calls whose context had no deadline
}

func (g *gatedDeletes) Delete(ctx context.Context, id string, epoch int64) error {
	g.mu.Lock()
	g.waiting++
	g.most = max(g.most, g.waiting)
	if _, ok := ctx.Deadline(); !ok {
		g.withoutTimeout++
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	select {
	case <-g.pass:
	case <-g.open:
	}
	return g.MemoryStore.Delete(ctx, id, epoch)
}

func (g *gatedDeletes) counts() (waiting, most, withoutTimeout int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting, g.most, g.withoutTimeout
}

// TestJanitorExpiresConcurrently: the janitor expires several sessions at
// once, and no more than janitorWorkers: with every record's deletion
// held at the store, janitorWorkers of them wait there together, the
// others wait for a slot, and each deletion let through lets the next
// expiry begin, until all the sessions are gone.
func TestJanitorExpiresConcurrently(t *testing.T) {
	store := &gatedDeletes{pass: make(chan struct{}), open: make(chan struct{})}
	m, err := New(&Options{
		PublicURL: "http://localhost:8080",
		NoSandbox: true,
		TTL:       time.Second, // a janitor round every 250 ms
		Store:     store,
		BaseDir:   t.TempDir(),
		CacheDir:  t.TempDir(),
		Logger:    testenv.Logger(t),
	})
	require.NoError(t, err)
	defer m.Close(context.Background())
	defer close(store.open) // whatever the test left at the gate goes, before Close

	const n = janitorWorkers + 3
	var all []*session
	for i := range n {
		s := m.newSession(Record{ID: fmt.Sprintf("s%d", i), ExpiresAt: time.Now()})
		s.abort(errors.New("never started"))
		require.NoError(t, m.register(s))
		all = append(all, s)
	}
	for passed := 0; passed < n; passed++ {
		want := min(janitorWorkers, n-passed)
		require.Eventually(t, func() bool {
			waiting, _, _ := store.counts()
			return waiting == want
		}, wait, pollEvery, "%d deletions wait at the store together (%d let through)", want, passed)
		store.pass <- struct{}{}
	}
	for _, s := range all {
		select {
		case <-s.stopped:
		case <-time.After(wait):
			t.Fatalf("session %s did not stop", s.id)
		}
	}
	assert.Equal(t, 0, m.NumSessions())
	_, most, withoutTimeout := store.counts()
	assert.Equal(t, janitorWorkers, most, "the expiries under way at once")
	assert.Zero(t, withoutTimeout, "deletions without a deadline")
}

package preview

import (
	"context"
	"errors"
	"testing"
	"time"

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

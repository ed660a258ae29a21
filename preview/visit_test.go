package preview

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestVisitRetriesOnce checks the one path every operation takes: an act
// that finds the session moved is run once more on where the session is
// now; a session that moves again is ErrRemote (503 "moving"), and any
// other error is returned at once.
func TestVisitRetriesOnce(t *testing.T) {
	store := &MemoryStore{}
	m, err := New(&Options{
		PublicURL: "http://localhost:8080", NoSandbox: true, BaseDir: t.TempDir(), CacheDir: t.TempDir(),
		Store: store, NodeID: "b", NodeAddr: "127.0.0.1:9", Logger: testenv.Logger(t),
		InstallCommand: []string{"false"}, // nothing here may install
	})
	require.NoError(t, err)
	defer m.Close(context.Background())
	ctx := context.Background()
	id := NewID()
	_, ok, err := store.Claim(ctx, 0, Record{ID: id, Owner: "a", OwnerAddr: "127.0.0.1:1", ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, store.RenewLease(ctx, "a", time.Hour)) // node a is alive

	gone := fmt.Errorf("%w: connection refused", errOwnerGone)
	for _, tt := range []struct {
		name  string
		errs  []error // what the act returns, call by call; nil once it succeeds
		calls int
		want  error
		// orphan: the second call sees the record as no live node's (the
		// node that did not answer counts as dead).
		orphan bool
	}{
		{name: "done at once", errs: []error{nil}, calls: 1},
		{name: "fenced once", errs: []error{ErrFenced, nil}, calls: 2},
		{name: "stopped here once", errs: []error{errStopped, nil}, calls: 2},
		{name: "claim lost once", errs: []error{errLost, nil}, calls: 2},
		{name: "node gone once", errs: []error{gone, nil}, calls: 2, orphan: true},
		{name: "moved twice", errs: []error{ErrFenced, errStopped, nil}, calls: 2, want: ErrRemote},
		{name: "node gone, then fenced", errs: []error{gone, ErrFenced, nil}, calls: 2, want: ErrRemote, orphan: true},
		{name: "another error is not retried", errs: []error{ErrConflict, nil}, calls: 1, want: ErrConflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var locs []location
			got, err := visit(ctx, m, id, orphanAsRecord, nil, func(loc location) (string, error) {
				locs = append(locs, loc)
				if err := tt.errs[len(locs)-1]; err != nil {
					return "", err
				}
				return "done", nil
			})
			assert.Len(t, locs, tt.calls, "calls of the act")
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
				assert.Empty(t, got)
			} else {
				assert.NoError(t, err)
				assert.Equal(t, "done", got)
			}
			assert.True(t, locs[0].remote, "first located on node a")
			if len(locs) == 2 {
				assert.Equal(t, tt.orphan, locs[1].orphan(), "the node that did not answer counts as dead")
				assert.Equal(t, !tt.orphan, locs[1].remote)
			}
		})
	}

	// A request's input is checked where the operation runs: not on the
	// way to a session of another node (that node checks it), and before
	// anything is done to a session here, or it is said to be unknown.
	bad := errors.New("bad input")
	checks := 0
	check := func() error { checks++; return bad }
	_, err = visit(ctx, m, id, adoptOrphan, check, func(loc location) (string, error) {
		if loc.remote {
			assert.Zero(t, checks, "checked on the way to another node")
			return "", gone // node a does not answer: the session is an orphan now
		}
		t.Error("acted on input that failed its check")
		return "", nil
	})
	assert.ErrorIs(t, err, bad)
	assert.Equal(t, 1, checks)
	rec, err := store.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "a", rec.Owner, "the orphan was not adopted for a request that failed its check")
	_, err = visit(ctx, m, NewID(), adoptOrphan, check, func(location) (string, error) {
		t.Error("acted on an unknown session")
		return "", nil
	})
	assert.ErrorIs(t, err, bad, "the input's error before the unknown session's")

	// locate only reads: a record whose node is dead is returned as it is,
	// nothing is claimed or started.
	loc, err := m.locate(ctx, id, "a")
	require.NoError(t, err)
	assert.True(t, loc.orphan())
	rec, err = store.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "a", rec.Owner, "locate claimed nothing")
	assert.Equal(t, 0, m.NumSessions(), "locate started nothing")

	_, err = m.locate(ctx, NewID(), "")
	assert.True(t, errors.Is(err, errUnknown) && errors.Is(err, ErrNotFound), "an unknown session: %v", err)
}

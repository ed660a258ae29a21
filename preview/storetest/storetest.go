// Package storetest checks that a preview.Store keeps the rules the preview
// package relies on (records, expiry, the owner claim that decides a
// takeover, session files), and starts throwaway redis-servers for tests.
//
// A Store implementation runs the suite from its tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) preview.Store { return newStore(t) })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// wait bounds every Eventually of the suite: a deadline, never a measurement.
const wait = 30 * time.Second

// Run runs the contract suite as subtests of t. newStore returns a store
// for one subtest; stores of different subtests may share a backend, since
// every subtest uses ids of its own.
func Run(t *testing.T, newStore func(t *testing.T) preview.Store) {
	t.Run("GetPutDelete", func(t *testing.T) { testGetPutDelete(t, newStore(t)) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newStore(t)) })
	t.Run("Claim", func(t *testing.T) { testClaim(t, newStore(t)) })
	t.Run("ClaimRace", func(t *testing.T) { testClaimRace(t, newStore(t)) })
	t.Run("Fencing", func(t *testing.T) { testFencing(t, newStore(t)) })
	t.Run("Files", func(t *testing.T) { testFiles(t, newStore(t)) })
	t.Run("FilesExpiry", func(t *testing.T) { testFilesExpiry(t, newStore(t)) })
	t.Run("Lease", func(t *testing.T) { testLease(t, newStore(t)) })
}

func record(id, owner string, ttl time.Duration) preview.Record {
	now := time.Now()
	return preview.Record{
		ID: id, Status: preview.StatusActive, Dir: "/srv/preview-" + id,
		HTTPURL: "http://127.0.0.1:5173", HMRURL: "http://127.0.0.1:24678",
		Owner: owner, OwnerAddr: owner + ".internal:8080",
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

// create stores r as a new record and returns it with its epoch.
func create(t *testing.T, s preview.Store, r preview.Record) preview.Record {
	t.Helper()
	epoch, ok, err := s.Claim(context.Background(), 0, r)
	require.NoError(t, err)
	require.True(t, ok, "creating record %s", r.ID)
	require.Positive(t, epoch)
	r.Epoch = epoch
	return r
}

// assertRecord compares records field by field, times by instant (a store
// may keep them in another location or without the monotonic reading).
func assertRecord(t *testing.T, want, got preview.Record) {
	t.Helper()
	assert.True(t, want.CreatedAt.Equal(got.CreatedAt), "CreatedAt: want %v, got %v", want.CreatedAt, got.CreatedAt)
	assert.True(t, want.ExpiresAt.Equal(got.ExpiresAt), "ExpiresAt: want %v, got %v", want.ExpiresAt, got.ExpiresAt)
	want.CreatedAt, want.ExpiresAt, got.CreatedAt, got.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	assert.Equal(t, want, got)
}

func requireNotFound(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	require.ErrorIs(t, err, preview.ErrNotFound, msgAndArgs...)
}

func testGetPutDelete(t *testing.T, s preview.Store) {
	ctx := context.Background()
	id := preview.NewID()
	_, err := s.Get(ctx, id)
	requireNotFound(t, err, "Get of a missing record")
	requireNotFound(t, s.Put(ctx, record(id, "node-a", time.Hour)), "Put of a record that was never claimed")

	r := record(id, "node-a", time.Hour)
	r.Error = "a message with \"quotes\" and ünïcode"
	r = create(t, s, r)
	got, err := s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, r, got)

	r.Status, r.HTTPURL, r.HMRURL = preview.StatusStarting, "", ""
	require.NoError(t, s.Put(ctx, r), "Put replaces")
	got, err = s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, r, got)

	other := create(t, s, record(preview.NewID(), "node-b", time.Hour))
	require.NoError(t, s.SaveFiles(ctx, id, r.Epoch, map[string][]byte{"index.html": []byte("<p>")}, nil))
	require.NoError(t, s.Delete(ctx, id, r.Epoch))
	_, err = s.Get(ctx, id)
	requireNotFound(t, err, "Get after Delete")
	_, err = s.LoadFiles(ctx, id)
	requireNotFound(t, err, "Delete removes the files too")
	require.NoError(t, s.Delete(ctx, id, r.Epoch), "deleting a missing record is not an error")
	got, err = s.Get(ctx, other.ID)
	require.NoError(t, err, "other records stay")
	assertRecord(t, other, got)
	require.NoError(t, s.Delete(ctx, other.ID, 0), "epoch 0 deletes whatever the epoch")
	_, err = s.Get(ctx, other.ID)
	requireNotFound(t, err)
}

func testExpiry(t *testing.T, s preview.Store) {
	ctx := context.Background()
	short := create(t, s, record(preview.NewID(), "node-a", 300*time.Millisecond))
	long := create(t, s, record(preview.NewID(), "node-a", time.Hour))
	require.Eventually(t, func() bool {
		_, err := s.Get(ctx, short.ID)
		return errors.Is(err, preview.ErrNotFound)
	}, wait, 20*time.Millisecond, "the record expires at ExpiresAt")
	_, err := s.Get(ctx, long.ID)
	require.NoError(t, err, "a record that has not expired stays")

	_, ok, err := s.Claim(ctx, short.Epoch, record(short.ID, "node-b", time.Hour))
	requireNotFound(t, err, "an expired record cannot be taken over")
	assert.False(t, ok)
	requireNotFound(t, s.Put(ctx, short), "an expired record cannot be written")
	_, ok, err = s.Claim(ctx, 0, record(short.ID, "node-b", time.Hour))
	require.NoError(t, err)
	assert.True(t, ok, "an expired record counts as absent for a create")
}

func testClaim(t *testing.T, s preview.Store) {
	ctx := context.Background()
	id := preview.NewID()
	_, ok, err := s.Claim(ctx, 7, record(id, "node-b", time.Hour))
	requireNotFound(t, err, "taking over a missing record")
	assert.False(t, ok)

	first := create(t, s, record(id, "node-a", time.Hour))
	_, ok, err = s.Claim(ctx, 0, record(id, "node-x", time.Hour))
	require.NoError(t, err)
	assert.False(t, ok, "prevEpoch 0 does not replace a record")

	_, ok, err = s.Claim(ctx, first.Epoch+1000, record(id, "node-x", time.Hour))
	require.NoError(t, err)
	assert.False(t, ok, "a claim with the wrong epoch fails")
	got, err := s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, first, got)

	next := first
	next.Owner, next.OwnerAddr, next.Status = "node-b", "node-b.internal:8080", preview.StatusStarting
	epoch, ok, err := s.Claim(ctx, first.Epoch, next)
	require.NoError(t, err)
	require.True(t, ok, "a claim with the record's epoch succeeds")
	assert.Greater(t, epoch, first.Epoch, "the epoch grows")
	next.Epoch = epoch
	got, err = s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, next, got)
	_, ok, err = s.Claim(ctx, first.Epoch, record(id, "node-c", time.Hour))
	require.NoError(t, err)
	assert.False(t, ok, "the same claim a second time fails")

	// Epochs grow across sessions too: a session deleted and created again
	// never gets an epoch that a node of its earlier life still holds.
	require.NoError(t, s.Delete(ctx, id, epoch))
	again := create(t, s, record(id, "node-c", time.Hour))
	assert.Greater(t, again.Epoch, epoch)
}

// testClaimRace has many goroutines take over one record from the same
// epoch, and many create one id: exactly one wins each race.
func testClaimRace(t *testing.T, s preview.Store) {
	ctx := context.Background()
	const n = 16
	race := func(id string, prev int64) (winners []string) {
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for i := range n {
			wg.Go(func() {
				owner := fmt.Sprintf("node-%d", i)
				<-start
				_, ok, err := s.Claim(ctx, prev, record(id, owner, time.Hour))
				assert.NoError(t, err)
				if ok {
					mu.Lock()
					winners = append(winners, owner)
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		return winners
	}

	dead := create(t, s, record(preview.NewID(), "dead", time.Hour))
	winners := race(dead.ID, dead.Epoch)
	require.Len(t, winners, 1, "exactly one of %d claimers takes the record over", n)
	got, err := s.Get(ctx, dead.ID)
	require.NoError(t, err)
	assert.Equal(t, winners[0], got.Owner, "the winner's record is stored")

	id := preview.NewID()
	winners = race(id, 0)
	require.Len(t, winners, 1, "exactly one of %d creators creates the record", n)
	got, err = s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, winners[0], got.Owner)
}

// testFencing checks that once a session is claimed from an owner, nothing
// that owner writes with its old epoch lands: not its record, not its
// files, not a delete.
func testFencing(t *testing.T, s preview.Store) {
	ctx := context.Background()
	old := create(t, s, record(preview.NewID(), "node-a", time.Hour))
	require.NoError(t, s.SaveFiles(ctx, old.ID, old.Epoch, map[string][]byte{"src/App.tsx": []byte("v1")}, nil))
	next := old
	next.Owner = "node-b"
	epoch, ok, err := s.Claim(ctx, old.Epoch, next)
	require.NoError(t, err)
	require.True(t, ok)
	next.Epoch = epoch

	stale := old
	stale.Status = preview.StatusError
	assert.ErrorIs(t, s.Put(ctx, stale), preview.ErrFenced, "the old owner's record write")
	assert.ErrorIs(t, s.SaveFiles(ctx, old.ID, old.Epoch, map[string][]byte{"src/App.tsx": []byte("lost")}, nil),
		preview.ErrFenced, "the old owner's file write")
	assert.ErrorIs(t, s.SaveFiles(ctx, old.ID, old.Epoch, nil, []string{"src/App.tsx"}), preview.ErrFenced, "the old owner's file removal")
	assert.ErrorIs(t, s.Delete(ctx, old.ID, old.Epoch), preview.ErrFenced, "the old owner's delete")
	got, err := s.Get(ctx, old.ID)
	require.NoError(t, err)
	assertRecord(t, next, got)
	files, err := s.LoadFiles(ctx, old.ID)
	require.NoError(t, err)
	assert.Equal(t, "v1", string(files["src/App.tsx"]), "nothing of the fenced writes landed")

	require.NoError(t, s.SaveFiles(ctx, old.ID, next.Epoch, map[string][]byte{"src/App.tsx": []byte("v2")}, nil), "the new owner writes")
	requireNotFound(t, s.SaveFiles(ctx, preview.NewID(), 1, map[string][]byte{"a": nil}, nil), "files of a session without a record")
}

func testFiles(t *testing.T, s preview.Store) {
	ctx := context.Background()
	r := create(t, s, record(preview.NewID(), "node-a", time.Hour))
	id := r.ID
	_, err := s.LoadFiles(ctx, id)
	requireNotFound(t, err, "LoadFiles of a session without files")

	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe, '\r', '\n'}
	write := map[string][]byte{
		"package.json":    []byte(`{"dependencies":{"vite":"^8.0.0"}}`),
		"index.html":      []byte("<!doctype html>"),
		"src/App.tsx":     []byte("export default 1"),
		"public/logo.png": binary,
		"src/empty.ts":    {},
		"src/ünï cödé.ts": []byte("// name with spaces and UTF-8"),
	}
	require.NoError(t, s.SaveFiles(ctx, id, r.Epoch, write, nil))
	// The caller's map may change afterwards without touching the store.
	write["src/App.tsx"][0] = 'X'
	got, err := s.LoadFiles(ctx, id)
	require.NoError(t, err)
	assert.Len(t, got, 6)
	assert.Equal(t, "export default 1", string(got["src/App.tsx"]))
	assert.Equal(t, binary, got["public/logo.png"], "binary content round-trips")
	assert.Contains(t, got, "src/empty.ts", "an empty file is kept")
	assert.Empty(t, got["src/empty.ts"])
	assert.Equal(t, "// name with spaces and UTF-8", string(got["src/ünï cödé.ts"]))

	require.NoError(t, s.SaveFiles(ctx, id, r.Epoch,
		map[string][]byte{"src/App.tsx": []byte("export default 2"), "src/new.ts": []byte("new")},
		[]string{"index.html", "src/missing.ts"}))
	got, err = s.LoadFiles(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "export default 2", string(got["src/App.tsx"]), "a write replaces")
	assert.Equal(t, "new", string(got["src/new.ts"]), "a write adds")
	assert.NotContains(t, got, "index.html", "a remove removes")
	assert.NotContains(t, got, "src/missing.ts")
	assert.Len(t, got, 6)

	require.NoError(t, s.SaveFiles(ctx, id, r.Epoch, nil, nil), "an empty save is fine")
	other := create(t, s, record(preview.NewID(), "node-a", time.Hour))
	require.NoError(t, s.SaveFiles(ctx, other.ID, other.Epoch, map[string][]byte{"package.json": []byte("{}")}, nil))
	got, err = s.LoadFiles(ctx, other.ID)
	require.NoError(t, err)
	assert.Len(t, got, 1, "sessions do not share files")
}

func testFilesExpiry(t *testing.T, s preview.Store) {
	ctx := context.Background()
	r := create(t, s, record(preview.NewID(), "node-a", 300*time.Millisecond))
	require.NoError(t, s.SaveFiles(ctx, r.ID, r.Epoch, map[string][]byte{"package.json": []byte("{}")}, nil))
	require.Eventually(t, func() bool {
		_, err := s.LoadFiles(ctx, r.ID)
		return errors.Is(err, preview.ErrNotFound)
	}, wait, 20*time.Millisecond, "the files expire with the record")

	_, ok, err := s.Claim(ctx, 0, record(r.ID, "node-b", time.Hour))
	require.NoError(t, err)
	require.True(t, ok)
	_, err = s.LoadFiles(ctx, r.ID)
	requireNotFound(t, err, "a session created again does not get the files of the expired one")
}

func testLease(t *testing.T, s preview.Store) {
	ctx := context.Background()
	node := "node-" + preview.NewID()[:8]
	alive, err := s.LeaseAlive(ctx, node)
	require.NoError(t, err)
	assert.False(t, alive, "a node that never renewed has no lease")
	require.NoError(t, s.RenewLease(ctx, node, 300*time.Millisecond))
	alive, err = s.LeaseAlive(ctx, node)
	require.NoError(t, err)
	assert.True(t, alive)
	require.Eventually(t, func() bool {
		alive, err := s.LeaseAlive(ctx, node)
		return err == nil && !alive
	}, wait, 20*time.Millisecond, "a lease not renewed runs out")
	require.NoError(t, s.RenewLease(ctx, node, time.Hour))
	alive, err = s.LeaseAlive(ctx, node)
	require.NoError(t, err)
	assert.True(t, alive, "a renewal brings the lease back")
}

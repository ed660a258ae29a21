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
	t.Run("Files", func(t *testing.T) { testFiles(t, newStore(t)) })
	t.Run("FilesExpiry", func(t *testing.T) { testFilesExpiry(t, newStore(t)) })
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

	r := record(id, "node-a", time.Hour)
	r.Error = "a message with \"quotes\" and ünïcode"
	require.NoError(t, s.Put(ctx, r))
	got, err := s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, r, got)

	r.Status, r.HTTPURL, r.HMRURL = preview.StatusStarting, "", ""
	require.NoError(t, s.Put(ctx, r), "Put replaces")
	got, err = s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, r, got)

	other := record(preview.NewID(), "node-b", time.Hour)
	require.NoError(t, s.Put(ctx, other))
	require.NoError(t, s.SaveFiles(ctx, id, map[string][]byte{"index.html": []byte("<p>")}, nil, r.ExpiresAt))
	require.NoError(t, s.Delete(ctx, id))
	_, err = s.Get(ctx, id)
	requireNotFound(t, err, "Get after Delete")
	_, err = s.LoadFiles(ctx, id)
	requireNotFound(t, err, "Delete removes the files too")
	require.NoError(t, s.Delete(ctx, id), "deleting a missing record is not an error")
	got, err = s.Get(ctx, other.ID)
	require.NoError(t, err, "other records stay")
	assertRecord(t, other, got)
}

func testExpiry(t *testing.T, s preview.Store) {
	ctx := context.Background()
	past := record(preview.NewID(), "node-a", -time.Second)
	require.NoError(t, s.Put(ctx, past))
	_, err := s.Get(ctx, past.ID)
	requireNotFound(t, err, "a record put after its expiry")

	short := record(preview.NewID(), "node-a", 300*time.Millisecond)
	long := record(preview.NewID(), "node-a", time.Hour)
	require.NoError(t, s.Put(ctx, short))
	require.NoError(t, s.Put(ctx, long))
	require.Eventually(t, func() bool {
		_, err := s.Get(ctx, short.ID)
		return errors.Is(err, preview.ErrNotFound)
	}, wait, 20*time.Millisecond, "the record expires at ExpiresAt")
	_, err = s.Get(ctx, long.ID)
	require.NoError(t, err, "a record that has not expired stays")

	ok, err := s.Claim(ctx, short.ID, "node-a", record(short.ID, "node-b", time.Hour))
	requireNotFound(t, err, "an expired record cannot be claimed from its owner")
	assert.False(t, ok)
	ok, err = s.Claim(ctx, short.ID, "", record(short.ID, "node-b", time.Hour))
	require.NoError(t, err)
	assert.True(t, ok, "an expired record counts as absent for a create")
}

func testClaim(t *testing.T, s preview.Store) {
	ctx := context.Background()
	id := preview.NewID()
	ok, err := s.Claim(ctx, id, "node-a", record(id, "node-b", time.Hour))
	requireNotFound(t, err, "claiming a missing record from an owner")
	assert.False(t, ok)

	first := record(id, "node-a", time.Hour)
	ok, err = s.Claim(ctx, id, "", first)
	require.NoError(t, err)
	require.True(t, ok, "prevOwner \"\" creates a missing record")
	ok, err = s.Claim(ctx, id, "", record(id, "node-x", time.Hour))
	require.NoError(t, err)
	assert.False(t, ok, "prevOwner \"\" does not replace a record")

	ok, err = s.Claim(ctx, id, "node-c", record(id, "node-x", time.Hour))
	require.NoError(t, err)
	assert.False(t, ok, "a claim from the wrong owner fails")
	got, err := s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, first, got)

	next := first
	next.Owner, next.OwnerAddr, next.Status = "node-b", "node-b.internal:8080", preview.StatusStarting
	ok, err = s.Claim(ctx, id, "node-a", next)
	require.NoError(t, err)
	require.True(t, ok, "a claim from the owner succeeds")
	got, err = s.Get(ctx, id)
	require.NoError(t, err)
	assertRecord(t, next, got)
	ok, err = s.Claim(ctx, id, "node-a", record(id, "node-c", time.Hour))
	require.NoError(t, err)
	assert.False(t, ok, "the same claim a second time fails")
}

// testClaimRace has many goroutines take over one record from the same dead
// owner, and many create one id: exactly one wins each race.
func testClaimRace(t *testing.T, s preview.Store) {
	ctx := context.Background()
	const n = 16
	race := func(id, prev string) (winners []string) {
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for i := range n {
			wg.Go(func() {
				owner := fmt.Sprintf("node-%d", i)
				<-start
				ok, err := s.Claim(ctx, id, prev, record(id, owner, time.Hour))
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

	id := preview.NewID()
	require.NoError(t, s.Put(ctx, record(id, "dead", time.Hour)))
	winners := race(id, "dead")
	require.Len(t, winners, 1, "exactly one of %d claimers takes the record over", n)
	got, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, winners[0], got.Owner, "the winner's record is stored")

	id = preview.NewID()
	winners = race(id, "")
	require.Len(t, winners, 1, "exactly one of %d creators creates the record", n)
	got, err = s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, winners[0], got.Owner)
}

func testFiles(t *testing.T, s preview.Store) {
	ctx := context.Background()
	id := preview.NewID()
	_, err := s.LoadFiles(ctx, id)
	requireNotFound(t, err, "LoadFiles of a session without files")

	expires := time.Now().Add(time.Hour)
	binary := []byte{0x89, 'P', 'N', 'G', 0, 0xff, 0xfe, '\r', '\n'}
	write := map[string][]byte{
		"package.json":    []byte(`{"dependencies":{"vite":"^8.0.0"}}`),
		"index.html":      []byte("<!doctype html>"),
		"src/App.tsx":     []byte("export default 1"),
		"public/logo.png": binary,
		"src/empty.ts":    {},
		"src/ünï cödé.ts": []byte("// name with spaces and UTF-8"),
	}
	require.NoError(t, s.SaveFiles(ctx, id, write, nil, expires))
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

	require.NoError(t, s.SaveFiles(ctx, id,
		map[string][]byte{"src/App.tsx": []byte("export default 2"), "src/new.ts": []byte("new")},
		[]string{"index.html", "src/missing.ts"}, expires))
	got, err = s.LoadFiles(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "export default 2", string(got["src/App.tsx"]), "a write replaces")
	assert.Equal(t, "new", string(got["src/new.ts"]), "a write adds")
	assert.NotContains(t, got, "index.html", "a remove removes")
	assert.NotContains(t, got, "src/missing.ts")
	assert.Len(t, got, 6)

	require.NoError(t, s.SaveFiles(ctx, id, nil, nil, expires), "an empty save is fine")
	other := preview.NewID()
	require.NoError(t, s.SaveFiles(ctx, other, map[string][]byte{"package.json": []byte("{}")}, nil, expires))
	got, err = s.LoadFiles(ctx, other)
	require.NoError(t, err)
	assert.Len(t, got, 1, "sessions do not share files")
}

func testFilesExpiry(t *testing.T, s preview.Store) {
	ctx := context.Background()
	id := preview.NewID()
	require.NoError(t, s.SaveFiles(ctx, id, map[string][]byte{"package.json": []byte("{}")}, nil, time.Now().Add(300*time.Millisecond)))
	require.Eventually(t, func() bool {
		_, err := s.LoadFiles(ctx, id)
		return errors.Is(err, preview.ErrNotFound)
	}, wait, 20*time.Millisecond, "the files expire at expiresAt")

	keep := preview.NewID()
	require.NoError(t, s.SaveFiles(ctx, keep, map[string][]byte{"a.ts": []byte("a")}, nil, time.Now().Add(300*time.Millisecond)))
	require.NoError(t, s.SaveFiles(ctx, keep, map[string][]byte{"b.ts": []byte("b")}, nil, time.Now().Add(time.Hour)))
	time.Sleep(400 * time.Millisecond) // past the first expiry: what the second save extended must stay
	got, err := s.LoadFiles(ctx, keep)
	require.NoError(t, err, "a later save moves the expiry of all the session's files")
	assert.Len(t, got, 2)
}

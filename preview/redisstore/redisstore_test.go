package redisstore_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
	"github.com/vitehost/vitehost/preview/storetest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func newStore(t *testing.T, url string, prefix string) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(url, &redisstore.Options{KeyPrefix: prefix, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	srv := storetest.Redis(t)
	storetest.Run(t, func(t *testing.T) preview.Store { return newStore(t, srv.URL("", 0), "") })
}

// TestURL checks the parts of the URL an operator sets: the password, the
// database number, and the key prefix that keeps two services apart.
func TestURL(t *testing.T) {
	srv := storetest.Redis(t, "--requirepass", "s3cret")
	ctx := context.Background()

	good := newStore(t, srv.URL("s3cret", 2), "")
	require.NoError(t, good.Ping(ctx))
	r := preview.Record{ID: preview.NewID(), Owner: "a", ExpiresAt: time.Now().Add(time.Hour)}
	_, ok, err := good.Claim(ctx, 0, r)
	require.NoError(t, err)
	require.True(t, ok)

	_, err = newStore(t, srv.URL("s3cret", 3), "").Get(ctx, r.ID)
	assert.ErrorIs(t, err, preview.ErrNotFound, "another database does not see the record")
	_, err = newStore(t, srv.URL("s3cret", 2), "other:").Get(ctx, r.ID)
	assert.ErrorIs(t, err, preview.ErrNotFound, "another key prefix does not see the record")
	_, err = newStore(t, srv.URL("s3cret", 2), redisstore.DefaultKeyPrefix).Get(ctx, r.ID)
	assert.NoError(t, err, "the default prefix is the one an empty KeyPrefix means")

	wrong := newStore(t, srv.URL("wrong", 2), "")
	err = wrong.Ping(ctx)
	assert.ErrorIs(t, err, preview.ErrUnavailable, "a wrong password: %v", err)
	_, err = newStore(t, srv.URL("", 2), "").Get(ctx, r.ID)
	assert.ErrorIs(t, err, preview.ErrUnavailable, "no password: %v", err)

	_, err = redisstore.New("http://localhost:6379", nil)
	assert.ErrorContains(t, err, "vitehost/redisstore:")
	_, err = redisstore.New("redis://localhost:6379/x", nil)
	assert.Error(t, err, "a database that is not a number")
}

// TestUnavailable stops Redis under a store: every operation fails with
// ErrUnavailable, and works again once Redis is back (empty: it has no
// persistence).
func TestUnavailable(t *testing.T) {
	srv := storetest.Redis(t)
	s := newStore(t, srv.URL("", 0)+"?dial_timeout=1s&max_retries=1", "")
	ctx := context.Background()
	r := preview.Record{ID: preview.NewID(), Owner: "a", ExpiresAt: time.Now().Add(time.Hour)}
	epoch, ok, err := s.Claim(ctx, 0, r)
	require.NoError(t, err)
	require.True(t, ok)
	r.Epoch = epoch

	srv.Stop()
	ops := map[string]func() error{
		"Get":        func() error { _, err := s.Get(ctx, r.ID); return err },
		"Put":        func() error { return s.Put(ctx, r) },
		"Delete":     func() error { return s.Delete(ctx, r.ID, r.Epoch) },
		"Claim":      func() error { _, _, err := s.Claim(ctx, r.Epoch, r); return err },
		"SaveFiles":  func() error { return s.SaveFiles(ctx, r.ID, r.Epoch, map[string][]byte{"a": nil}, nil) },
		"RenewLease": func() error { return s.RenewLease(ctx, "a", time.Second) },
		"LeaseAlive": func() error { _, err := s.LeaseAlive(ctx, "a"); return err },
		"LoadFiles":  func() error { _, err := s.LoadFiles(ctx, r.ID); return err },
		"Ping":       func() error { return s.Ping(ctx) },
	}
	for name, op := range ops {
		err := op()
		assert.ErrorIs(t, err, preview.ErrUnavailable, "%s: %v", name, err)
		assert.False(t, errors.Is(err, preview.ErrNotFound), name)
	}

	require.NoError(t, srv.Start(ctx))
	require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 30*time.Second, 20*time.Millisecond)
	_, err = s.Get(ctx, r.ID)
	assert.ErrorIs(t, err, preview.ErrNotFound, "the restarted Redis is empty")
	_, ok, err = s.Claim(ctx, 0, r)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = s.Get(ctx, r.ID)
	assert.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
}

// Package redisstore is a preview.Store in Redis, for several preview nodes
// that serve one domain: each node's preview.Manager gets a Store on the
// same Redis, and any node can then find the node that runs a session,
// forward its traffic there, and take the session over when that node is
// lost. It is its own package so that single-node users do not import a
// Redis client.
//
// A session is two keys, both expiring at the session's expiry (Redis
// PXAT, so that Redis removes what no node removed):
//
//	{prefix}session:{id}  the record, JSON
//	{prefix}files:{id}    a hash: file name -> content, "package.json" the dependency set
//
// The files are what a request may carry (Limits bound them), written
// before the owner node writes them to disk, so that the copy in Redis is
// never older than the one a takeover would lose. The owner claim is a Lua
// script (compare the owner, then set), so that of two nodes taking a
// session over at once exactly one wins.
//
// Redis errors (refused connections, timeouts, a Redis that is loading) are
// returned wrapped in preview.ErrUnavailable: the preview API answers them
// with 503 and code "unavailable", while every node keeps serving the
// sessions it runs from its own state. Redis does not need persistence for
// the previews to survive a Redis restart: the nodes write the records and
// files of their sessions again when they find them gone. Persistence
// (appendonly) still keeps sessions of a node that is lost while Redis
// restarts.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/vitehost/vitehost/preview"
)

// DefaultKeyPrefix starts every key of a Store whose Options leave
// KeyPrefix empty.
const DefaultKeyPrefix = "vitehost:"

// Options configures a Store. A nil *Options means the defaults; New does
// not modify it.
type Options struct {
	// KeyPrefix starts every key the store reads and writes. Nodes that
	// serve one domain use the same prefix; services that share a Redis
	// database use different ones. Empty means DefaultKeyPrefix.
	KeyPrefix string

	// Logger receives a line when Redis becomes unreachable and one when it
	// is reachable again. Nil means slog.Default().
	Logger *slog.Logger
}

// Store is a preview.Store in Redis. Its methods are safe for concurrent
// use.
type Store struct {
	client *redis.Client
	prefix string
	log    *slog.Logger
	addr   string

	down atomic.Bool // the last operation failed to reach Redis

	closeOnce sync.Once
	closeErr  error
}

var _ preview.Store = (*Store)(nil)

// New returns a Store for the Redis at redisURL, in the form
// redis://[[user]:password@]host[:port][/db] (rediss:// for TLS; the
// go-redis ParseURL query options such as dial_timeout are accepted). It
// does not connect: the first operation does, and Ping checks the
// connection.
func New(redisURL string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ro, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("vitehost/redisstore: %w", err)
	}
	// The client would otherwise ask every new connection for cluster
	// maintenance notifications (CLIENT MAINT_NOTIFICATIONS), a command
	// that plain Redis servers before 8 do not know.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	// A refused connection is conclusive: the client's default of five
	// dials per attempt (times max_retries attempts) makes every API call
	// wait seconds before its 503 while Redis is down.
	ro.DialerRetries = 2
	return &Store{
		client: redis.NewClient(ro),
		prefix: o.KeyPrefix,
		log:    o.Logger.With("redis", ro.Addr),
		addr:   ro.Addr,
	}, nil
}

func (s *Store) recordKey(id string) string { return s.prefix + "session:" + id }
func (s *Store) filesKey(id string) string  { return s.prefix + "files:" + id }

// unavailable wraps a Redis error in preview.ErrUnavailable and logs the
// first of a run of them.
func (s *Store) unavailable(ctx context.Context, op string, err error) error {
	if ctx.Err() == nil && s.down.CompareAndSwap(false, true) {
		s.log.Warn("vitehost/redisstore: redis unavailable", "op", op, "err", err)
	}
	return fmt.Errorf("%w: redis %s: %w", preview.ErrUnavailable, op, err)
}

// reached notes a successful round trip.
func (s *Store) reached() {
	if s.down.CompareAndSwap(true, false) {
		s.log.Info("vitehost/redisstore: redis reachable again")
	}
}

func notFound(id string) error { return fmt.Errorf("%w: %s", preview.ErrNotFound, id) }

// Ping checks that Redis answers (and accepts the URL's password).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return s.unavailable(ctx, "PING", err)
	}
	s.reached()
	return nil
}

// Get returns the record of session id, or an error wrapping
// preview.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (preview.Record, error) {
	data, err := s.client.Get(ctx, s.recordKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		s.reached()
		return preview.Record{}, notFound(id)
	}
	if err != nil {
		return preview.Record{}, s.unavailable(ctx, "GET", err)
	}
	s.reached()
	var r preview.Record
	if err := json.Unmarshal(data, &r); err != nil {
		return preview.Record{}, fmt.Errorf("vitehost/redisstore: record %s: %w", id, err)
	}
	if r.Expired(time.Now()) {
		return preview.Record{}, notFound(id)
	}
	return r, nil
}

// Put stores r until r.ExpiresAt, replacing any record with the same id.
func (s *Store) Put(ctx context.Context, r preview.Record) error {
	if r.Expired(time.Now()) {
		return s.del(ctx, s.recordKey(r.ID))
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.client.Do(ctx, "SET", s.recordKey(r.ID), data, "PXAT", r.ExpiresAt.UnixMilli()).Err(); err != nil {
		return s.unavailable(ctx, "SET", err)
	}
	s.reached()
	return nil
}

// Delete removes the record of session id and its files.
func (s *Store) Delete(ctx context.Context, id string) error {
	return s.del(ctx, s.recordKey(id), s.filesKey(id))
}

func (s *Store) del(ctx context.Context, keys ...string) error {
	if err := s.client.Del(ctx, keys...).Err(); err != nil {
		return s.unavailable(ctx, "DEL", err)
	}
	s.reached()
	return nil
}

// claimScript compares the stored record's owner with ARGV[1] and, when they
// match, stores ARGV[2] until ARGV[3] (Unix milliseconds). ARGV[1] "" means
// create: store only when there is no record. It returns 1 when it stored,
// 0 when the owner differed (or a record exists for a create), and -1 when
// there is no record to take over. Redis runs a script atomically, so
// concurrent claims see each other's result.
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  if ARGV[1] == '' then return 0 end
  local ok, rec = pcall(cjson.decode, cur)
  if not ok or type(rec) ~= 'table' or rec.owner ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '' then
  return -1
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 1
`)

// Claim replaces the record of session id with next when the stored
// record's owner is prevOwner (with prevOwner "", when there is no record),
// atomically, and reports whether it did.
func (s *Store) Claim(ctx context.Context, id, prevOwner string, next preview.Record) (bool, error) {
	next.ID = id
	if next.Expired(time.Now()) {
		return false, fmt.Errorf("vitehost/redisstore: claim of %s: the new record has expired", id)
	}
	data, err := json.Marshal(next)
	if err != nil {
		return false, err
	}
	n, err := claimScript.Run(ctx, s.client, []string{s.recordKey(id)}, prevOwner, data, next.ExpiresAt.UnixMilli()).Int()
	if err != nil {
		return false, s.unavailable(ctx, "claim script", err)
	}
	s.reached()
	switch n {
	case 1:
		return true, nil
	case -1:
		return false, notFound(id)
	}
	return false, nil
}

// SaveFiles writes and removes files of session id in one transaction and
// makes them expire at expiresAt.
func (s *Store) SaveFiles(ctx context.Context, id string, write map[string][]byte, remove []string, expiresAt time.Time) error {
	key := s.filesKey(id)
	if !time.Now().Before(expiresAt) {
		return s.del(ctx, key)
	}
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if len(write) > 0 {
			fields := make([]any, 0, 2*len(write))
			for name, data := range write {
				fields = append(fields, name, data)
			}
			p.HSet(ctx, key, fields...)
		}
		if len(remove) > 0 {
			p.HDel(ctx, key, remove...)
		}
		p.PExpireAt(ctx, key, expiresAt)
		return nil
	})
	if err != nil {
		return s.unavailable(ctx, "save files", err)
	}
	s.reached()
	return nil
}

// LoadFiles returns every file of session id, or an error wrapping
// preview.ErrNotFound when it has none.
func (s *Store) LoadFiles(ctx context.Context, id string) (map[string][]byte, error) {
	all, err := s.client.HGetAll(ctx, s.filesKey(id)).Result()
	if err != nil {
		return nil, s.unavailable(ctx, "HGETALL", err)
	}
	s.reached()
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: no files for %s", preview.ErrNotFound, id)
	}
	out := make(map[string][]byte, len(all))
	for name, data := range all {
		out[name] = []byte(data)
	}
	return out, nil
}

// Close closes the connections to Redis. It is safe to call more than once;
// operations after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}

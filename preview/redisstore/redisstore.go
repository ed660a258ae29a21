// Package redisstore is a preview.Store in Redis, for several preview nodes
// that serve one domain: each node's preview.Manager gets a Store on the
// same Redis, and any node can then find the node that runs a session,
// forward its traffic there, and take the session over when that node is
// lost. It is its own package so that single-node users do not import a
// Redis client.
//
// A session is two keys, both expiring at the session's expiry (Redis
// PXAT, so that Redis removes what no node removed), and each node one:
//
//	{prefix}session:{id}  the record, JSON
//	{prefix}files:{id}    a hash: file name -> content, "package.json" the dependency set
//	{prefix}node:{id}     the node's lease, expiring when the node stops renewing it
//	{prefix}epoch         the counter that gives every claim a new epoch
//
// Every write of a record or of files is a Lua script that compares the
// record's epoch with the writer's before it writes (fencing), so that a
// node that lost a session can change nothing of it, and of two nodes
// taking a session over at once exactly one wins.
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

func (s *Store) recordKey(id string) string  { return s.prefix + "session:" + id }
func (s *Store) filesKey(id string) string   { return s.prefix + "files:" + id }
func (s *Store) leaseKey(node string) string { return s.prefix + "node:" + node }
func (s *Store) epochKey() string            { return s.prefix + "epoch" }

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

// Script results shared by the fenced writes.
const (
	scriptDone     = 1
	scriptFenced   = -2
	scriptNotFound = -1
)

// fenceLua starts every fenced script: KEYS[1] is the record, ARGV[1] the
// writer's epoch ("0" in a Delete: any). It returns scriptNotFound or
// scriptFenced from the script when the record is missing or newer.
const fenceLua = `
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local ok, rec = pcall(cjson.decode, cur)
if not ok or type(rec) ~= 'table' then return -2 end
if ARGV[1] ~= '0' and tostring(rec.epoch) ~= ARGV[1] then return -2 end
`

// putScript replaces the record with ARGV[2] until ARGV[3] (Unix ms).
var putScript = redis.NewScript(fenceLua + `
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 1
`)

// deleteScript removes the record and the files (KEYS[2]).
var deleteScript = redis.NewScript(`
if not redis.call('GET', KEYS[1]) then
  redis.call('DEL', KEYS[2])
  return 1
end
` + fenceLua + `
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`)

// claimScript stores ARGV[2] with a new epoch from the counter KEYS[2] until
// ARGV[3] (Unix ms) when the stored record's epoch is ARGV[1] ("0": when
// there is none). It returns the new epoch, 0 when another claim came
// first, and -1 when there is no record to take over. The files of an
// expired session (KEYS[3]) are not the new session's.
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  if ARGV[1] == '0' then return 0 end
  local ok, rec = pcall(cjson.decode, cur)
  if not ok or type(rec) ~= 'table' or tostring(rec.epoch) ~= ARGV[1] then return 0 end
elseif ARGV[1] ~= '0' then
  return -1
else
  redis.call('DEL', KEYS[3])
end
local epoch = redis.call('INCR', KEYS[2])
local rec = cjson.decode(ARGV[2])
rec.epoch = epoch
redis.call('SET', KEYS[1], cjson.encode(rec), 'PXAT', ARGV[3])
return epoch
`)

// saveFilesScript removes ARGV[3..2+ARGV[2]] from the files hash KEYS[2],
// sets the name/content pairs after them, and gives the hash the record's
// expiry.
var saveFilesScript = redis.NewScript(fenceLua + `
local nremove = tonumber(ARGV[2])
for i = 3, 2 + nremove do redis.call('HDEL', KEYS[2], ARGV[i]) end
for i = 3 + nremove, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
`)

// fenced turns a script's result into the Store's error.
func fenced(id string, epoch int64, n int64) error {
	switch n {
	case scriptDone:
		return nil
	case scriptNotFound:
		return notFound(id)
	case scriptFenced:
		return fmt.Errorf("%w: session %s, epoch %d", preview.ErrFenced, id, epoch)
	}
	return fmt.Errorf("vitehost/redisstore: unexpected script result %d", n)
}

// Put replaces the record of r.ID until r.ExpiresAt when the stored
// record's epoch is r.Epoch.
func (s *Store) Put(ctx context.Context, r preview.Record) error {
	if r.Expired(time.Now()) {
		return notFound(r.ID) // Redis has dropped it, or is about to
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	n, err := putScript.Run(ctx, s.client, []string{s.recordKey(r.ID)}, r.Epoch, data, r.ExpiresAt.UnixMilli()).Int64()
	if err != nil {
		return s.unavailable(ctx, "put script", err)
	}
	s.reached()
	return fenced(r.ID, r.Epoch, n)
}

// Delete removes the record of session id and its files when the record's
// epoch is epoch (any, for 0).
func (s *Store) Delete(ctx context.Context, id string, epoch int64) error {
	n, err := deleteScript.Run(ctx, s.client, []string{s.recordKey(id), s.filesKey(id)}, epoch).Int64()
	if err != nil {
		return s.unavailable(ctx, "delete script", err)
	}
	s.reached()
	return fenced(id, epoch, n)
}

// Claim stores next with a new epoch when the stored record's epoch is
// prevEpoch (0: when there is none), atomically, and returns the epoch.
func (s *Store) Claim(ctx context.Context, prevEpoch int64, next preview.Record) (int64, bool, error) {
	if next.Expired(time.Now()) {
		return 0, false, fmt.Errorf("vitehost/redisstore: claim of %s: the new record has expired", next.ID)
	}
	data, err := json.Marshal(next)
	if err != nil {
		return 0, false, err
	}
	keys := []string{s.recordKey(next.ID), s.epochKey(), s.filesKey(next.ID)}
	n, err := claimScript.Run(ctx, s.client, keys, prevEpoch, data, next.ExpiresAt.UnixMilli()).Int64()
	if err != nil {
		return 0, false, s.unavailable(ctx, "claim script", err)
	}
	s.reached()
	switch {
	case n > 0:
		return n, true, nil
	case n == -1:
		return 0, false, notFound(next.ID)
	}
	return 0, false, nil
}

// SaveFiles writes and removes files of session id in one script, when the
// record's epoch is epoch; the files expire with the record.
func (s *Store) SaveFiles(ctx context.Context, id string, epoch int64, write map[string][]byte, remove []string) error {
	args := make([]any, 0, 2+len(remove)+2*len(write))
	args = append(args, epoch, len(remove))
	for _, name := range remove {
		args = append(args, name)
	}
	for name, data := range write {
		args = append(args, name, data)
	}
	n, err := saveFilesScript.Run(ctx, s.client, []string{s.recordKey(id), s.filesKey(id)}, args...).Int64()
	if err != nil {
		return s.unavailable(ctx, "save files script", err)
	}
	s.reached()
	return fenced(id, epoch, n)
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

// RenewLease sets node's lease to expire ttl from now.
func (s *Store) RenewLease(ctx context.Context, node string, ttl time.Duration) error {
	if err := s.client.Set(ctx, s.leaseKey(node), "1", ttl).Err(); err != nil {
		return s.unavailable(ctx, "SET lease", err)
	}
	s.reached()
	return nil
}

// LeaseAlive reports whether node's lease is live.
func (s *Store) LeaseAlive(ctx context.Context, node string) (bool, error) {
	n, err := s.client.Exists(ctx, s.leaseKey(node)).Result()
	if err != nil {
		return false, s.unavailable(ctx, "EXISTS lease", err)
	}
	s.reached()
	return n == 1, nil
}

// Close closes the connections to Redis. It is safe to call more than once;
// operations after Close fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}

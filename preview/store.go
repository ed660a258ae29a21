package preview

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Status is where a session is in its life.
type Status string

// The statuses GET {prefix}/{id} reports.
const (
	StatusInstalling Status = "installing" // its dependencies are being installed
	StatusStarting   Status = "starting"   // its dev server is starting
	StatusActive     Status = "active"     // its preview URL serves the page
	StatusRestarting Status = "restarting" // its dev server crashed and is being restarted; Record.Error says why
	StatusHibernated Status = "hibernated" // its dev server sleeps until the next request (Options.IdleTimeout)
	StatusError      Status = "error"      // its dev server failed; Record.Error says why
)

// Record is what a Store keeps of a session: enough for any node to answer
// a status request and to find the node that runs it.
type Record struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	// ErrorCode names the cause of Error when it is one a client can act
	// on, such as CodeMemoryLimit.
	ErrorCode string `json:"errorCode,omitempty"`
	// Epoch is the fencing token of the owner's claim: the store gives each
	// claim an epoch larger than any before, and refuses the writes that
	// carry an older one, so that a node that lost a session (it hung, and
	// another node took the session over) can change nothing of it.
	Epoch int64 `json:"epoch"`
	// Dir is the session directory on the owner node.
	Dir string `json:"dir"`
	// HTTPURL and HMRURL are the dev server's targets on the owner node.
	HTTPURL string `json:"httpUrl,omitempty"`
	HMRURL  string `json:"hmrUrl,omitempty"`
	// Owner is the id of the node that runs the session, and OwnerAddr the
	// internal address other nodes forward its traffic to.
	Owner     string    `json:"owner,omitempty"`
	OwnerAddr string    `json:"ownerAddr,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Expired reports whether the record's expiry has passed at now.
func (r Record) Expired(now time.Time) bool { return !now.Before(r.ExpiresAt) }

// Store keeps session records, the nodes' leases and, for nodes that share
// one store, the sessions' source files, so that another node can take a
// session over when its node is lost. A record and the files of its session
// expire at the record's ExpiresAt.
//
// Every write of a session's record or files is fenced: it carries the
// epoch of the claim that made the writer the owner, and the store applies
// it atomically only when that is still the record's epoch (ErrFenced
// otherwise).
//
// Implementations must be safe for concurrent use. An operation on a
// missing or expired record returns an error that wraps ErrNotFound (Delete
// excepted); a store that cannot be reached returns one that wraps
// ErrUnavailable. The package storetest checks these rules.
type Store interface {
	// Get returns the record of session id.
	Get(ctx context.Context, id string) (Record, error)
	// Claim stores next as the record of session next.ID, atomically, when
	// the stored record's Epoch is prevEpoch (prevEpoch 0: when there is no
	// record, a create). The stored record gets a new epoch, larger than
	// every epoch the store gave before, which Claim returns with ok true.
	// Of claimers racing with the same prevEpoch exactly one wins; the
	// others get ok false. With prevEpoch other than 0 a missing record is
	// ErrNotFound.
	Claim(ctx context.Context, prevEpoch int64, next Record) (epoch int64, ok bool, err error)
	// Put replaces the record of session r.ID when the stored record's
	// Epoch is r.Epoch; a newer one is ErrFenced, none ErrNotFound.
	Put(ctx context.Context, r Record) error
	// Delete removes the record of session id and its files when the
	// stored record's Epoch is epoch, or whatever it is when epoch is 0; a
	// newer one is ErrFenced. A missing record is not an error.
	Delete(ctx context.Context, id string, epoch int64) error

	// SaveFiles writes the files in write and removes the names in remove
	// among the files of session id, all or nothing, when the session's
	// record has Epoch epoch (ErrFenced when it has a newer one, ErrNotFound
	// when there is none). The files expire with the record. Names are
	// relative to the project root; "package.json" holds the session's
	// dependency set.
	SaveFiles(ctx context.Context, id string, epoch int64, write map[string][]byte, remove []string) error
	// LoadFiles returns every file of session id, or ErrNotFound when it has
	// none.
	LoadFiles(ctx context.Context, id string) (map[string][]byte, error)

	// RenewLease records that node is alive, for ttl from now. A node that
	// shares the store renews its lease well within ttl; the sessions of a
	// node whose lease has run out may be claimed by the others.
	RenewLease(ctx context.Context, node string, ttl time.Duration) error
	// LeaseAlive reports whether node's lease is live.
	LeaseAlive(ctx context.Context, node string) (bool, error)
}

// MemoryStore is a Store in this process's memory, the default. It serves
// one node, or several Managers in one process. A zero MemoryStore is ready
// to use.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]Record
	files   map[string]map[string][]byte
	leases  map[string]time.Time
	epoch   int64
	swept   time.Time
}

// sweepEvery is how often a MemoryStore drops what has expired: records of
// sessions that no Manager removed (their node went away).
const sweepEvery = time.Minute

// get returns the live record of id; s.mu is held.
func (s *MemoryStore) get(id string, now time.Time) (Record, bool) {
	r, ok := s.records[id]
	if !ok || r.Expired(now) {
		return Record{}, false
	}
	return r, true
}

// put stores r and drops expired entries now and then; s.mu is held.
func (s *MemoryStore) put(r Record, now time.Time) {
	if s.records == nil {
		s.records = make(map[string]Record)
	}
	s.records[r.ID] = r
	s.sweep(now)
}

func (s *MemoryStore) sweep(now time.Time) {
	if now.Sub(s.swept) < sweepEvery {
		return
	}
	s.swept = now
	for id, r := range s.records {
		if r.Expired(now) {
			delete(s.records, id)
			delete(s.files, id)
		}
	}
	for node, until := range s.leases {
		if !now.Before(until) {
			delete(s.leases, node)
		}
	}
}

// fence checks that the live record of id has epoch; s.mu is held.
func (s *MemoryStore) fence(id string, epoch int64, now time.Time) error {
	cur, ok := s.get(id, now)
	switch {
	case !ok:
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	case cur.Epoch != epoch:
		return fencedError(id, epoch, cur.Epoch)
	}
	return nil
}

// Get returns the record of id, or ErrNotFound when it is missing or expired.
func (s *MemoryStore) Get(_ context.Context, id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.get(id, time.Now())
	if !ok {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return r, nil
}

// Put replaces the record of r.ID when its epoch is r.Epoch.
func (s *MemoryStore) Put(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if err := s.fence(r.ID, r.Epoch, now); err != nil {
		return err
	}
	s.put(r, now)
	return nil
}

// Delete removes the record of id and its files when its epoch is epoch (or
// any, for 0); a missing record is not an error.
func (s *MemoryStore) Delete(_ context.Context, id string, epoch int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.get(id, time.Now()); ok && epoch != 0 && cur.Epoch != epoch {
		return fencedError(id, epoch, cur.Epoch)
	}
	delete(s.records, id)
	delete(s.files, id)
	return nil
}

// Claim stores next when the record's epoch is prevEpoch (0: no record) and
// returns its new epoch.
func (s *MemoryStore) Claim(_ context.Context, prevEpoch int64, next Record) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cur, ok := s.get(next.ID, now)
	switch {
	case !ok && prevEpoch != 0:
		return 0, false, fmt.Errorf("%w: %s", ErrNotFound, next.ID)
	case ok && (prevEpoch == 0 || cur.Epoch != prevEpoch):
		return 0, false, nil
	case !ok:
		delete(s.files, next.ID) // an expired session's files are not the new one's
	}
	s.epoch++
	next.Epoch = s.epoch
	s.put(next, now)
	return next.Epoch, true, nil
}

// SaveFiles writes and removes files of session id when its record's epoch
// is epoch.
func (s *MemoryStore) SaveFiles(_ context.Context, id string, epoch int64, write map[string][]byte, remove []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fence(id, epoch, time.Now()); err != nil {
		return err
	}
	if s.files == nil {
		s.files = make(map[string]map[string][]byte)
	}
	f := s.files[id]
	if f == nil {
		f = make(map[string][]byte)
		s.files[id] = f
	}
	for name, data := range write {
		f[name] = append([]byte(nil), data...)
	}
	for _, name := range remove {
		delete(f, name)
	}
	return nil
}

// LoadFiles returns a copy of every file of session id, or ErrNotFound.
func (s *MemoryStore) LoadFiles(_ context.Context, id string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if _, ok := s.get(id, time.Now()); !ok || len(f) == 0 {
		return nil, fmt.Errorf("%w: no files for %s", ErrNotFound, id)
	}
	out := make(map[string][]byte, len(f))
	for name, data := range f {
		out[name] = append([]byte(nil), data...)
	}
	return out, nil
}

// RenewLease records that node is alive for ttl.
func (s *MemoryStore) RenewLease(_ context.Context, node string, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases == nil {
		s.leases = make(map[string]time.Time)
	}
	s.leases[node] = time.Now().Add(ttl)
	return nil
}

// LeaseAlive reports whether node's lease is live.
func (s *MemoryStore) LeaseAlive(_ context.Context, node string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.leases[node]), nil
}

// fencedError is the error of a write from an older claim.
func fencedError(id string, epoch, current int64) error {
	return fmt.Errorf("%w: session %s, epoch %d, now %d", ErrFenced, id, epoch, current)
}

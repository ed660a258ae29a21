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
	StatusError      Status = "error"      // its dev server failed; Record.Error says why
)

// Record is what a Store keeps of a session: enough for any node to answer
// a status request and to find the node that runs it.
type Record struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
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

// Store keeps session records and, for nodes that share one store, the
// sessions' source files, so that another node can take a session over when
// its node is lost. A record and the files of its session expire at the
// record's ExpiresAt.
//
// Implementations must be safe for concurrent use. An operation on a
// missing or expired record returns an error that wraps ErrNotFound (Delete
// excepted); a store that cannot be reached returns one that wraps
// ErrUnavailable. The package storetest checks these rules.
type Store interface {
	// Get returns the record of session id.
	Get(ctx context.Context, id string) (Record, error)
	// Put stores r, replacing any record with the same id.
	Put(ctx context.Context, r Record) error
	// Delete removes the record of session id and its files; a missing
	// record is not an error.
	Delete(ctx context.Context, id string) error

	// Claim replaces the record of session id with next, atomically, when
	// the stored record's Owner is prevOwner, and reports whether it did: of
	// claimers racing with the same prevOwner exactly one wins. With
	// prevOwner "" it stores next only when there is no record (a create);
	// otherwise a missing record is ErrNotFound.
	Claim(ctx context.Context, id, prevOwner string, next Record) (bool, error)

	// SaveFiles writes the files in write and removes the names in remove
	// among the files of session id, and makes them expire at expiresAt.
	// Names are relative to the project root; "package.json" holds the
	// session's dependency set.
	SaveFiles(ctx context.Context, id string, write map[string][]byte, remove []string, expiresAt time.Time) error
	// LoadFiles returns every file of session id, or ErrNotFound when it has
	// none.
	LoadFiles(ctx context.Context, id string) (map[string][]byte, error)
}

// MemoryStore is a Store in this process's memory, the default. It serves
// one node, or several Managers in one process. A zero MemoryStore is ready
// to use.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]Record
	files   map[string]*memFiles
	swept   time.Time
}

type memFiles struct {
	data    map[string][]byte
	expires time.Time
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
		}
	}
	for id, f := range s.files {
		if !now.Before(f.expires) {
			delete(s.files, id)
		}
	}
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

// Put stores r, replacing any record with the same id.
func (s *MemoryStore) Put(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(r, time.Now())
	return nil
}

// Delete removes the record of id and its files; a missing record is not an
// error.
func (s *MemoryStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, id)
	delete(s.files, id)
	return nil
}

// Claim replaces the record of id with next when its owner is prevOwner
// (with prevOwner "", when there is no record) and reports whether it did.
func (s *MemoryStore) Claim(_ context.Context, id, prevOwner string, next Record) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	cur, ok := s.get(id, now)
	switch {
	case !ok && prevOwner != "":
		return false, fmt.Errorf("%w: %s", ErrNotFound, id)
	case ok && (prevOwner == "" || cur.Owner != prevOwner):
		return false, nil
	}
	next.ID = id
	s.put(next, now)
	return true, nil
}

// SaveFiles writes and removes files of session id and makes them expire at
// expiresAt.
func (s *MemoryStore) SaveFiles(_ context.Context, id string, write map[string][]byte, remove []string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = make(map[string]*memFiles)
	}
	f := s.files[id]
	if f == nil || !time.Now().Before(f.expires) {
		f = &memFiles{data: make(map[string][]byte)}
		s.files[id] = f
	}
	for name, data := range write {
		f.data[name] = append([]byte(nil), data...)
	}
	for _, name := range remove {
		delete(f.data, name)
	}
	f.expires = expiresAt
	return nil
}

// LoadFiles returns a copy of every file of session id, or ErrNotFound.
func (s *MemoryStore) LoadFiles(_ context.Context, id string) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil || len(f.data) == 0 || !time.Now().Before(f.expires) {
		return nil, fmt.Errorf("%w: no files for %s", ErrNotFound, id)
	}
	out := make(map[string][]byte, len(f.data))
	for name, data := range f.data {
		out[name] = append([]byte(nil), data...)
	}
	return out, nil
}

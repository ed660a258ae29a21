package preview

import (
	"context"
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

// Store keeps session records. Implementations must be safe for concurrent
// use. Get of a missing or expired record returns an error that wraps
// ErrNotFound; a store that cannot be reached returns one that wraps
// ErrUnavailable.
type Store interface {
	Get(ctx context.Context, id string) (Record, error)
	Put(ctx context.Context, r Record) error
	Delete(ctx context.Context, id string) error
}

// MemoryStore is a Store in this process's memory, the default. A zero
// MemoryStore is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]Record
}

// Get returns the record of id, or ErrNotFound when it is missing or expired.
func (s *MemoryStore) Get(_ context.Context, id string) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[id]
	if !ok || r.Expired(time.Now()) {
		return Record{}, ErrNotFound
	}
	return r, nil
}

// Put stores r, replacing any record with the same id.
func (s *MemoryStore) Put(_ context.Context, r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.records == nil {
		s.records = make(map[string]Record)
	}
	s.records[r.ID] = r
	return nil
}

// Delete removes the record of id; a missing record is not an error.
func (s *MemoryStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, id)
	return nil
}

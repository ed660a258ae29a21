package preview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vitehost/vitehost/preview/internal/request"
)

// This file is where a request learns where its session lives, and the one
// path every operation takes to act on it: visit locates the session
// (locate, which only reads), adopts it when its node is gone and the
// operation asks for that (adopt, the write), acts, and locates it once
// more when the session moved meanwhile. The API's handlers, the preview
// router and the Manager's methods all go through it.

// location is where a session is, as locate found it.
type location struct {
	// s is the session when it runs on this node, in whatever state
	// (installing, starting, active, failed).
	s *session
	// rec is the stored record when s is nil.
	rec Record
	// remote: another node runs the session, at rec.OwnerAddr, and its
	// lease is alive.
	remote bool
}

// orphan reports whether loc is a record that no live node runs: its node
// is gone, or is this node's earlier life.
func (loc location) orphan() bool { return loc.s == nil && !loc.remote }

// errLost is adopt's answer when another node claimed the session first.
var errLost = errors.New("vitehost/preview: another node took the session over")

// errUnknown is the ErrNotFound of a session that does not exist: locate
// knows no session of its id, a forwarded request reached a node that does
// not run it, or its files could not be restored. A create that names its
// session makes it then, and nothing else does.
var errUnknown = fmt.Errorf("%w: unknown or expired", ErrNotFound)

func errMoving(id string) error {
	return fmt.Errorf("%w: session %s moved again during the request", ErrRemote, id)
}

// remoteError is what a Go caller gets for a session that another node
// runs: the API forwards such requests, a Manager method does not.
func remoteError(loc location) error {
	return fmt.Errorf("%w: session %s runs on node %s at %s", ErrRemote, loc.rec.ID, loc.rec.Owner, loc.rec.OwnerAddr)
}

// moved reports whether err says that the session was not where it was
// located: another node claimed it (ErrFenced, errLost), it stopped here
// meanwhile (errStopped), or its node did not answer a forward
// (errOwnerGone).
func moved(err error) bool {
	return retry(err) || errors.Is(err, errLost) || errors.Is(err, errOwnerGone)
}

// orphans says what visit does with a session whose node is gone.
type orphans bool

const (
	// orphanAsRecord hands act the session's record: a delete removes it
	// without starting anything.
	orphanAsRecord orphans = false
	// adoptOrphan makes this node take the session over and start its dev
	// server (adopt) before act: what a request that uses the session
	// needs, and what a status request does so that the status it answers
	// is that of a session some node runs.
	adoptOrphan orphans = true
)

// visit runs act on session id where it is: a session of this node
// (loc.s), one of another live node (loc.remote), or, with orphanAsRecord,
// the record of one whose node is gone. When act finds that the session
// moved (moved(err)), visit locates it again and acts once more, counting
// the node that did not answer as dead; a session that moves twice during
// one request is ErrRemote, which the API answers 503 with Retry-After.
// Errors of locate and adopt are returned as they are. check, when not
// nil, checks the request's input where the operation runs: before visit
// acts on a session of this node, adopts one, or answers with locate's
// error (an unknown session, a store that cannot be reached), its error is
// the answer; a request for a session of another node is not checked here
// but where it goes. It may run more than once.
func visit[T any](ctx context.Context, m *Manager, id string, o orphans, check func() error, act func(location) (T, error)) (T, error) {
	var zero T
	gone := ""
	for range 2 {
		loc, err := m.locate(ctx, id, gone)
		if check != nil && !loc.remote {
			if cerr := check(); cerr != nil {
				return zero, cerr
			}
		}
		if err == nil && o == adoptOrphan && loc.orphan() {
			loc.s, err = m.adopt(ctx, loc.rec)
		}
		var res T
		if err == nil {
			res, err = act(loc)
		}
		if !moved(err) {
			return res, err
		}
		if errors.Is(err, errOwnerGone) {
			gone = loc.rec.Owner
		}
	}
	return zero, errMoving(id)
}

// visitDo is visit for an act without a result.
func visitDo(ctx context.Context, m *Manager, id string, o orphans, act func(location) error) error {
	_, err := visit(ctx, m, id, o, nil, func(loc location) (struct{}, error) { return struct{}{}, act(loc) })
	return err
}

// locate says where session id is, and only reads: it expires, stops and
// starts nothing. A session of this node is found without a store call. On
// a node of several, the store says which node owns it; the owner counts
// as alive while its lease is (gone names a node that just failed to
// answer, which counts as dead). A session whose owner is dead, or is this
// node's earlier life, is returned as its record (loc.orphan()). Unknown
// and expired sessions are errUnknown.
func (m *Manager) locate(ctx context.Context, id string, gone string) (location, error) {
	if !ValidID(id) {
		return location{}, badID("session id", id)
	}
	m.mu.Lock()
	s, closed := m.sessions[id], m.closed
	m.mu.Unlock()
	switch {
	case s != nil && !s.expired(time.Now()):
		return location{s: s}, nil
	case s != nil:
		return location{}, fmt.Errorf("%w: %s expired", errUnknown, id)
	case closed:
		return location{}, ErrClosed
	case !m.clustered():
		return location{}, fmt.Errorf("%w: %s", errUnknown, id)
	}
	rec, err := m.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return location{}, fmt.Errorf("%w: %w", errUnknown, err)
	}
	if err != nil {
		return location{}, err
	}
	if rec.Owner != m.nodeID && rec.Owner != gone {
		alive, err := m.leaseAlive(ctx, rec.Owner)
		if err != nil {
			return location{}, err
		}
		if alive {
			return location{rec: rec, remote: true}, nil
		}
	}
	return location{rec: rec}, nil
}

// leaseAlive reports whether node's lease is alive. A live lease is
// remembered for LeaseTTL/6, so that forwarded requests (a page load is
// dozens) cost one store call, not two; that delays the takeover of a dead
// node's sessions by as much at most.
func (m *Manager) leaseAlive(ctx context.Context, node string) (bool, error) {
	now := time.Now()
	m.mu.Lock()
	until := m.alive[node]
	m.mu.Unlock()
	if now.Before(until) {
		return true, nil
	}
	alive, err := m.store.LeaseAlive(ctx, node)
	if alive {
		m.mu.Lock()
		m.alive[node] = now.Add(m.opts.LeaseTTL / 6)
		m.mu.Unlock()
	}
	return alive, err
}

// claimCall is an adoption under way on this node: the requests for the same
// session that arrive meanwhile wait for its outcome instead of claiming
// again.
type claimCall struct {
	done chan struct{}
	s    *session
	err  error
}

// adopt is the write that a request makes when it finds a session whose
// node is gone: it makes this node the owner of the session of rec (a
// claim in the store), loads its files, and starts its dev server. It
// returns the session once it is registered here (its start goes on in
// the background), or errLost when another node claimed it first.
func (m *Manager) adopt(ctx context.Context, rec Record) (*session, error) {
	id := rec.ID
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return nil, ErrClosed
	case m.sessions[id] != nil:
		s := m.sessions[id]
		m.mu.Unlock()
		return s, nil
	}
	if c := m.claims[id]; c != nil {
		m.mu.Unlock()
		select {
		case <-c.done:
			return c.s, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if len(m.sessions)+len(m.claims) >= m.opts.Limits.MaxSessions {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %d sessions; cannot take session %s over", ErrLimit, m.opts.Limits.MaxSessions, id)
	}
	c := &claimCall{done: make(chan struct{})}
	m.claims[id] = c
	m.mu.Unlock()

	var deps Deps
	var files []pendingFile
	c.s, deps, files, c.err = m.claim(ctx, rec)
	m.mu.Lock()
	delete(m.claims, id)
	if c.s != nil {
		if m.closed {
			c.s, c.err = nil, ErrClosed // the record names this node: the others take it over
		} else {
			m.sessions[id] = c.s
			m.running.Add(1)
		}
	}
	m.mu.Unlock()
	close(c.done)
	if c.s != nil {
		go m.startTakenOver(c.s, deps, files)
	}
	return c.s, c.err
}

// claim takes the record of the session over in the store and loads its
// files; the session it returns is not started.
func (m *Manager) claim(ctx context.Context, rec Record) (*session, Deps, []pendingFile, error) {
	id := rec.ID
	s := m.newSession(Record{ID: id, Status: StatusInstalling, CreatedAt: rec.CreatedAt, ExpiresAt: rec.ExpiresAt})
	epoch, won, err := m.store.Claim(ctx, rec.Epoch, s.record())
	if err != nil {
		return nil, nil, nil, err
	}
	if !won {
		return nil, nil, nil, errLost
	}
	s.setEpoch(epoch)
	s.log.Info("vitehost/preview: took session over", "from", rec.Owner, "fromAddr", rec.OwnerAddr, "epoch", epoch)
	stored, err := m.store.LoadFiles(ctx, id)
	if err == nil {
		var deps Deps
		var files []pendingFile
		if deps, files, err = m.restoreFiles(stored); err == nil {
			return s, deps, files, nil
		}
	}
	if errors.Is(err, ErrUnavailable) {
		return nil, nil, nil, err // the record is ours: the next request claims it again
	}
	// The session cannot come back: say so to everyone.
	s.log.Error("vitehost/preview: cannot restore session; removing it", "err", err)
	if derr := m.store.Delete(context.WithoutCancel(ctx), id, epoch); derr != nil {
		s.log.Warn("vitehost/preview: delete record", "err", derr)
	}
	return nil, nil, nil, fmt.Errorf("%w: session %s could not be restored: %v", errUnknown, id, err)
}

// startTakenOver starts a session that adopt registered, through the
// path a create takes, and removes it when the start fails.
func (m *Manager) startTakenOver(s *session, deps Deps, files []pendingFile) {
	defer m.running.Done()
	err := s.run(m.ctx, deps, files)
	switch {
	case err == nil, s.ctx.Err() != nil:
		// Started, or removed (deleted, expired, the manager closing) while
		// starting.
	case errors.Is(err, ErrFenced):
		m.remove(context.Background(), s, "claimed by another node while starting")
	default:
		s.log.Error("vitehost/preview: start after takeover failed", "err", err)
		m.drop(context.Background(), s, "start after takeover failed")
	}
}

// restoreFiles turns the stored files of a session back into its
// dependency set and project files, checking each name as if a client had
// sent it.
func (m *Manager) restoreFiles(stored map[string][]byte) (Deps, []pendingFile, error) {
	pkg, ok := stored["package.json"]
	if !ok {
		return nil, nil, errors.New("no package.json among the stored files")
	}
	deps, err := ParsePackageJSON(pkg)
	if err != nil {
		return nil, nil, fmt.Errorf("stored package.json: %w", err)
	}
	files := make([]pendingFile, 0, len(stored))
	for name, data := range stored {
		if name == "package.json" {
			continue
		}
		if _, err := request.CleanPath(name, m.opts.Limits.MaxPathLength); err != nil {
			return nil, nil, fmt.Errorf("stored file: %w", err)
		}
		if !m.opts.allowConfig() && request.IsExecuted(name) {
			continue
		}
		files = append(files, pendingFile{name: name, data: data})
	}
	slices.SortFunc(files, func(a, b pendingFile) int { return strings.Compare(a.name, b.name) })
	return deps.WithDefaults(), files, nil
}

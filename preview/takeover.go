package preview

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// This file is where a node of several finds out who runs a session, takes
// over the sessions of a node that is gone, and keeps the records of its own
// sessions true (syncRecords).

// errLost is takeover's answer when another node claimed the session first:
// the caller reads the record again and goes to the winner.
var errLost = errors.New("vitehost/preview: another node took the session over")

// clustered reports whether this node is one of several sharing the store.
func (m *Manager) clustered() bool { return m.nodeAddr != "" }

// placement is where a session runs, as find sees it.
type placement struct {
	s   *session // on this node
	rec Record   // the stored record, when s is nil
	// orphan: the record names this node (an earlier run of it, before a
	// restart) but nothing runs the session here.
	orphan bool
	// remote: the record names another node, at rec.OwnerAddr.
	remote bool
}

// find returns where session id runs: here (without a store call), or what
// the store says. On a single node a record without a local session is
// neither orphan nor remote.
func (m *Manager) find(ctx context.Context, id string) (placement, error) {
	s, err := m.lookup(id)
	if err == nil {
		return placement{s: s}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return placement{}, err
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return placement{}, ErrClosed
	}
	rec, err := m.store.Get(ctx, id)
	if err != nil {
		return placement{}, err
	}
	p := placement{rec: rec}
	if m.clustered() {
		p.orphan = rec.Owner == m.nodeID || rec.OwnerAddr == m.nodeAddr
		p.remote = !p.orphan && rec.OwnerAddr != ""
	}
	return p, nil
}

// here returns session id when it runs on this node, starting it first when
// it is an orphan of this node. Another node's session is ErrRemote.
func (m *Manager) here(ctx context.Context, id string) (*session, error) {
	for range maxAttempts {
		p, err := m.find(ctx, id)
		switch {
		case err != nil:
			return nil, err
		case p.s != nil:
			return p.s, nil
		case p.orphan:
			if err := m.takeover(ctx, p.rec); err != nil && !errors.Is(err, errLost) {
				return nil, err
			}
		case p.remote:
			return nil, remoteError(p.rec)
		default:
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
	}
	return nil, errMoving(id)
}

// maxAttempts bounds the rounds of find, forward and takeover for one
// request: a session that changes node more often than that is answered 503.
const maxAttempts = 4

func errMoving(id string) error {
	return fmt.Errorf("%w: session %s changed node %d times during the request", ErrRemote, id, maxAttempts)
}

func remoteError(rec Record) error {
	return fmt.Errorf("%w: session %s runs on node %s at %s", ErrRemote, rec.ID, rec.Owner, rec.OwnerAddr)
}

// claimCall is a takeover under way on this node: the requests for the same
// session that arrive meanwhile wait for its outcome instead of claiming
// again.
type claimCall struct {
	done chan struct{}
	err  error
}

// takeover makes this node the owner of the session of rec, whose node
// (rec.Owner) is gone, and starts it from the files in the store. It returns
// once the session is registered here (its start goes on in the
// background), or errLost when another node claimed it first.
func (m *Manager) takeover(ctx context.Context, rec Record) error {
	return m.claimSession(ctx, rec, true)
}

// claim is takeover without the start: the record names this node, and
// nothing runs the session (what a delete needs).
func (m *Manager) claim(ctx context.Context, rec Record) error {
	return m.claimSession(ctx, rec, false)
}

func (m *Manager) claimSession(ctx context.Context, rec Record, start bool) error {
	id := rec.ID
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return ErrClosed
	case m.sessions[id] != nil:
		m.mu.Unlock()
		return nil // already here
	}
	if c := m.claims[id]; c != nil {
		m.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if start && len(m.sessions)+len(m.claims) >= m.opts.Limits.MaxSessions {
		m.mu.Unlock()
		return fmt.Errorf("%w: %d sessions; cannot take session %s over", ErrLimit, m.opts.Limits.MaxSessions, id)
	}
	c := &claimCall{done: make(chan struct{})}
	m.claims[id] = c
	m.mu.Unlock()

	c.err = m.doClaim(ctx, rec, start)
	m.mu.Lock()
	delete(m.claims, id)
	m.mu.Unlock()
	close(c.done)
	return c.err
}

func (m *Manager) doClaim(ctx context.Context, rec Record, start bool) error {
	id := rec.ID
	next := rec
	next.Owner, next.OwnerAddr = m.nodeID, m.nodeAddr
	next.Status, next.Error, next.HTTPURL, next.HMRURL = StatusInstalling, "", "", ""
	next.Dir = filepath.Join(m.baseDir, "preview-"+id)
	won, err := m.store.Claim(ctx, id, rec.Owner, next)
	if err != nil {
		return err
	}
	if !won {
		return errLost
	}
	log := m.log.With("session", id)
	log.Info("vitehost/preview: took session over", "from", rec.Owner, "fromAddr", rec.OwnerAddr)
	if !start {
		return nil
	}
	stored, err := m.store.LoadFiles(ctx, id)
	if err == nil {
		var deps Deps
		var files []pendingFile
		if deps, files, err = m.restoreFiles(stored); err == nil {
			return m.startTakenOver(next, deps, files)
		}
	}
	if errors.Is(err, ErrUnavailable) {
		return err // the record is ours: the next request tries again
	}
	// The session cannot come back: say so to everyone.
	log.Error("vitehost/preview: cannot restore session; removing it", "err", err)
	if derr := m.store.Delete(context.WithoutCancel(ctx), id); derr != nil {
		log.Warn("vitehost/preview: delete record", "err", derr)
	}
	return fmt.Errorf("%w: session %s could not be restored: %v", ErrNotFound, id, err)
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
		if _, err := CleanPath(name, m.opts.Limits.MaxPathLength); err != nil {
			return nil, nil, fmt.Errorf("stored file: %w", err)
		}
		if !m.opts.AllowConfigFiles && isExecuted(name) {
			continue
		}
		files = append(files, pendingFile{name: name, data: data})
	}
	slices.SortFunc(files, func(a, b pendingFile) int { return strings.Compare(a.name, b.name) })
	return deps.withDefaults(), files, nil
}

// startTakenOver registers the session of rec here and starts it in the
// background, through the path a create takes.
func (m *Manager) startTakenOver(rec Record, deps Deps, files []pendingFile) error {
	s := newSession(m, rec.ID, rec.CreatedAt, rec.ExpiresAt)
	s.mu.Lock() // held until the start ends: updates wait for it
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		s.mu.Unlock()
		return ErrClosed // the record names this node: the others take it over when it is gone
	}
	m.sessions[s.id] = s
	m.running.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.running.Done()
		err := s.start(context.Background(), deps, files)
		s.mu.Unlock()
		switch {
		case err == nil:
		case s.ctx.Err() != nil:
			// Removed (deleted, expired, the manager closing) while starting.
		default:
			s.log.Error("vitehost/preview: start after takeover failed", "err", err)
			m.drop(context.Background(), s, "start after takeover failed")
		}
	}()
	return nil
}

// syncRecords checks the record of each session this node runs, once per
// janitor round. A record that names another node means that node took the
// session over (this one did not answer in time): the session stops here.
// A missing record of a live session means the store lost it (a Redis
// restart without persistence): this node writes the record and the
// session's files again from its own state.
func (m *Manager) syncRecords() {
	ctx, cancel := context.WithTimeout(m.ctx, janitorEvery)
	defer cancel()
	m.mu.Lock()
	all := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		if err := m.syncRecord(ctx, s); errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return // the store is down: next round
		}
	}
}

func (m *Manager) syncRecord(ctx context.Context, s *session) error {
	if !s.mu.TryLock() {
		return nil // starting or updating: next round
	}
	if s.gone || s.server == nil {
		s.mu.Unlock()
		return nil
	}
	local := s.record()
	rec, err := m.store.Get(ctx, s.id)
	switch {
	case err == nil && rec.Owner != m.nodeID:
		s.mu.Unlock()
		m.remove(ctx, s, "taken over by node "+rec.Owner)
		return nil
	case err == nil:
		if rec.Status != local.Status || rec.HTTPURL != local.HTTPURL {
			err = m.store.Put(ctx, local)
		}
	case errors.Is(err, ErrNotFound):
		s.log.Warn("vitehost/preview: the store lost the session's record; writing it again")
		err = m.republish(ctx, s, local)
	}
	s.mu.Unlock()
	return err
}

// republish writes the files of session s, as they are on disk, and its
// record to the store. s.mu is held.
func (m *Manager) republish(ctx context.Context, s *session, rec Record) error {
	files := map[string][]byte{}
	err := fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := path.Base(p)
		switch {
		case p == ".":
			return nil
		case d.IsDir() && reserved[name]:
			return fs.SkipDir
		case d.IsDir() || !d.Type().IsRegular() || reserved[name] || strings.HasPrefix(name, tmpPrefix) || strings.Contains(name, ".timestamp-"):
			return nil
		}
		data, err := fs.ReadFile(s.root.FS(), p)
		if err != nil {
			return err
		}
		files[p] = data
		return nil
	})
	if err != nil {
		return fmt.Errorf("vitehost/preview: read session files: %w", err)
	}
	var stale []string
	if stored, err := m.store.LoadFiles(ctx, s.id); err == nil {
		for name := range stored {
			if _, ok := files[name]; !ok {
				stale = append(stale, name)
			}
		}
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := m.store.SaveFiles(ctx, s.id, files, stale, s.expires); err != nil {
		return err
	}
	if time.Now().Before(rec.ExpiresAt) {
		return m.store.Put(ctx, rec)
	}
	return nil
}

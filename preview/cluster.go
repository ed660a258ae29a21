package preview

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/vitehost/vitehost/internal/safefs"
)

// This file is what a node of several does to stay one: it renews its
// lease in the store, and it checks the records of its sessions against the
// store (syncRecords), stopping those another node has claimed and writing
// back those the store lost.

// runLease renews the node's lease every LeaseTTL/3 until the Manager
// closes. A renewal that comes after a gap longer than the lease (the
// process was stopped, or the store unreachable) means other nodes may have
// claimed this node's sessions meanwhile: the records are checked at once.
func (m *Manager) runLease() {
	every := m.opts.LeaseTTL / 3
	var last time.Time
	renew := func() {
		ctx, cancel := context.WithTimeout(m.ctx, every)
		defer cancel()
		if err := m.store.RenewLease(ctx, m.nodeID, m.opts.LeaseTTL); err != nil {
			if m.ctx.Err() == nil {
				m.log.Warn("vitehost/preview: renew the node's lease", "err", err)
			}
			return
		}
		now := time.Now()
		if !last.IsZero() && now.Sub(last) > m.opts.LeaseTTL {
			m.log.Warn("vitehost/preview: the node's lease ran out; checking its sessions", "gap", now.Sub(last).Round(time.Millisecond))
			m.syncRecords()
		}
		last = now
	}
	renew()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			renew()
		}
	}
}

// syncRecords checks the record of each session this node runs. A record
// with another epoch means another node took the session over (this one did
// not answer in time): the session stops here. A missing record of a live
// session means the store lost it (a Redis restart without persistence):
// this node claims the session again and writes its files from its own
// state.
func (m *Manager) syncRecords() {
	ctx, cancel := context.WithTimeout(m.ctx, janitorEvery)
	defer cancel()
	for _, s := range m.all() {
		if err := m.syncRecord(ctx, s); errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return // the store is down: next round
		}
	}
}

func (m *Manager) syncRecord(ctx context.Context, s *session) error {
	if !s.isReady() || s.startErr != nil {
		return nil // starting: next round
	}
	select {
	case s.turn <- struct{}{}: // no update runs meanwhile
	default:
		return nil // updating: next round
	}
	defer s.endTurn()
	local := s.record()
	rec, err := m.store.Get(ctx, s.id)
	switch {
	case err == nil && rec.Epoch != local.Epoch:
		m.remove(ctx, s, fmt.Sprintf("taken over by node %s (epoch %d)", rec.Owner, rec.Epoch))
		return nil
	case err == nil && (rec.Status != local.Status || rec.HTTPURL != local.HTTPURL):
		err = m.store.Put(ctx, local)
	case errors.Is(err, ErrNotFound) && !s.expired(time.Now()):
		s.log.Warn("vitehost/preview: the store lost the session's record; writing it again")
		err = m.republish(ctx, s, local)
	case errors.Is(err, ErrNotFound):
		err = nil
	}
	if errors.Is(err, ErrFenced) {
		m.remove(ctx, s, "claimed by another node")
		return nil
	}
	return err
}

// republish claims session s again in a store that lost it and writes its
// files, as they are on disk. The caller holds s's turn.
func (m *Manager) republish(ctx context.Context, s *session, rec Record) error {
	epoch, ok, err := m.store.Claim(ctx, 0, rec)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: session %s was recreated by another node", ErrFenced, s.id)
	}
	s.setEpoch(epoch)
	files, err := m.sessionFiles(ctx, s)
	if err != nil {
		return fmt.Errorf("vitehost/preview: read session files: %w", err)
	}
	return m.store.SaveFiles(ctx, s.id, epoch, files, nil)
}

// sessionFiles returns the files of session s as they are on disk: those
// its client wrote (what a takeover needs), and its package.json from its
// dependency set. The dev server's code may have replaced any of them: they
// are read as safefs reads, within the quotas of Limits, and one that is no
// longer a regular file, or too large, is left out and said in the log. The
// caller holds s's turn.
func (m *Manager) sessionFiles(ctx context.Context, s *session) (map[string][]byte, error) {
	lim := m.opts.Limits
	files := make(map[string][]byte, len(s.usage.files)+1)
	var total int64
	for name := range s.usage.files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := safefs.ReadFile(s.root, name, min(lim.MaxFileBytes, lim.MaxSessionBytes-total))
		var refused *safefs.Error
		switch {
		case errors.As(err, &refused), errors.Is(err, fs.ErrNotExist):
			s.log.Warn("vitehost/preview: a file of the session is left out of the store", "file", name, "err", err)
			continue
		case err != nil:
			return nil, err
		}
		files[name] = data
		total += int64(len(data))
	}
	files["package.json"] = s.deps.PackageJSON()
	return files, nil
}

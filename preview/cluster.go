package preview

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
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
			select { // the janitor checks them at once
			case m.syncNow <- struct{}{}:
			default: // it will: it was asked already
			}
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
// state. It checks janitorWorkers sessions at once. Only the janitor
// calls it (runLease asks the janitor), so that no two checks of one
// session overlap.
func (m *Manager) syncRecords() {
	ctx, cancel := context.WithTimeout(m.ctx, janitorEvery)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, janitorWorkers)
	for _, s := range m.all() {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return // the store is down, or slow: next round
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := m.syncRecord(ctx, s); errors.Is(err, ErrUnavailable) {
				cancel() // the store is down: the others give up too
			}
		})
	}
}

// syncRecord checks the record of session s. It reads the session's
// record under s.state and calls the store with none held; rewriting the
// record into a store that lost it is a move of the session (republish).
func (m *Manager) syncRecord(ctx context.Context, s *session) error {
	if !s.isReady() || s.startErr != nil {
		return nil // starting: next round
	}
	local := s.record()
	gctx, cancel := context.WithTimeout(ctx, storeTimeout)
	rec, err := m.store.Get(gctx, s.id)
	cancel()
	switch {
	case err == nil && rec.Epoch != local.Epoch:
		m.remove(ctx, s, fmt.Sprintf("taken over by node %s (epoch %d)", rec.Owner, rec.Epoch))
		return nil
	case err == nil && (rec.Status != local.Status || rec.HTTPURL != local.HTTPURL):
		pctx, cancel := context.WithTimeout(ctx, storeTimeout)
		err = m.store.Put(pctx, s.record()) // as it is now: a status may have changed since
		cancel()
	case errors.Is(err, ErrNotFound) && !s.expired(time.Now()):
		err = m.republish(ctx, s, local.Epoch)
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
// files, as they are on disk. It is a move of the session: it begins only
// when the session serves or sleeps and no update holds it, and while it
// runs updates and wakes wait for it (servingTurn, wake), so that the
// files it reads are the ones the store gets, with the epoch the session
// writes with afterwards. It does nothing (next round) when the session is
// busy, or its epoch is no longer lost, the one the store was found
// without.
func (m *Manager) republish(ctx context.Context, s *session, lost int64) error {
	s.state.Lock()
	var moved chan struct{}
	if s.rec.Epoch == lost {
		moved = s.beginMoveLocked()
	}
	rec := s.rec
	s.state.Unlock()
	if moved == nil {
		return nil
	}
	defer s.endMove(moved)
	s.log.Warn("vitehost/preview: the store lost the session's record; writing it again")
	cctx, cancel := context.WithTimeout(ctx, storeTimeout)
	epoch, ok, err := m.store.Claim(cctx, 0, rec)
	cancel()
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
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	return m.store.SaveFiles(sctx, s.id, epoch, files, nil)
}

// sessionFiles returns the files of session s as they are on disk: those
// its client wrote (what a takeover needs), and its package.json from its
// dependency set. The dev server's code may have replaced any of them: they
// are read as safefs reads, within the quotas of Limits, and one that is no
// longer a regular file, or too large, is left out and said in the log. The
// caller moves s (republish): no update changes them meanwhile.
func (m *Manager) sessionFiles(ctx context.Context, s *session) (map[string][]byte, error) {
	lim := m.opts.Limits
	u := s.filesUsage()
	files := make(map[string][]byte, len(u.files)+1)
	var total int64
	for name := range u.files {
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
	files["package.json"] = s.depSet().PackageJSON()
	return files, nil
}

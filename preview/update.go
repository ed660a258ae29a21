package preview

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vitehost/vitehost/vite"
)

// UpdateResult is what an update did.
type UpdateResult struct {
	// Updated are the files written, Deleted the files removed, Ignored the
	// files dropped (config files Node would run, package.json).
	Updated []string
	Deleted []string
	Ignored []string
	// HMR is what Vite sent the browsers: a full reload when the
	// dependencies changed.
	HMR HMR
	// Dependencies is what the update changed in the session's dependency
	// set, nil when it changed nothing (see DependencyChange).
	Dependencies *DependencyChange
}

// HMRTriggered reports whether Vite sent an update or a full reload.
func (r *UpdateResult) HMRTriggered() bool { return r.HMR.Type != HMRNone }

// update applies one update to session s, waking it when it hibernates,
// and answers as for a running one. Nothing is staged before the dev
// server has loaded its module graph (the warm-up): a client that goes away
// before then changes nothing. Then, holding the session's turn, the
// update checks that what the session holds after it fits the quotas of l,
// stages its files next to their names and takes its place in the commit
// line (line.go); the turn ends there. In the line, once the updates before
// it are committed, the store (on a node of several) commits the files,
// and only then do they replace the old files on disk, whatever the client
// does from then on, so that the store and the disk agree after any
// failure: a failed disk write leaves both unchanged, and a store that
// refuses (ErrFenced: another node owns the session now) or cannot be
// reached leaves the disk unchanged. The renames are one batch for Vite
// (vite.Server.Hold): it handles the files once all of them are on disk,
// and the result's HMR is what it did. declared is the dependency set the
// request declared, if any: another than the session's, or any while a
// change is under way, is a dependency change (depschange.go) when change
// allows it, and ErrConflict otherwise.
func (s *session) update(ctx context.Context, files checkedFiles, deletes []string, declared Deps, change bool, l Limits) (*UpdateResult, error) {
	if err := s.waitReady(ctx); err != nil {
		if errors.Is(err, ErrNotFound) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: session %s did not start", ErrDevServer, s.id)
	}
	if rec := s.record(); rec.Status == StatusError {
		return nil, fmt.Errorf("%w: %s", ErrDevServer, rec.Error)
	}
	if declared != nil && (declared.Key() != s.depSet().Key() || s.changingDeps()) {
		if !change {
			return nil, fmt.Errorf("%w: session %s runs on another dependency set: a create does not change it (an update does)", ErrConflict, s.id)
		}
		return s.changeDeps(ctx, files, deletes, declared, l)
	}
	files.ignoreManifest()
	r, err := s.servingTurn(ctx, "an update")
	if err != nil {
		return nil, err
	}
	return s.updateFiles(ctx, r, files, deletes, l)
}

// updateFiles is the update of files that leaves the dependencies as they
// are: r serves, and the caller holds the turn, which updateFiles ends:
// with endTurn when it stops before the commit line, else it gives the
// turn back as it enters the line and ends its use of r (doneUsing) when
// it returns.
func (s *session) updateFiles(ctx context.Context, r *devRun, files checkedFiles, deletes []string, l Limits) (*UpdateResult, error) {
	turn := true
	defer func() {
		if turn {
			s.endTurn()
		} else {
			s.doneUsing()
		}
	}()
	select { // until the module graph is loaded, Vite has nothing to update
	case <-r.warmed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Against what the updates before this one committed: checked again
	// in the line, once those still in it are done.
	committed := s.filesUsage()
	if err := checkQuota(committed, committed.after(files.write, deletes), l); err != nil {
		return nil, err
	}
	res := &UpdateResult{Ignored: files.ignored, Updated: []string{}, Deleted: []string{}, HMR: HMR{Type: HMRNone, Paths: []string{}}}
	if len(files.write)+len(deletes) == 0 {
		return res, nil
	}

	staged, err := stageFiles(s.root, files.write, s.owner())
	if err != nil {
		return nil, fmt.Errorf("vitehost/preview: write files: %w", err)
	}
	defer staged.discard() // what was not committed
	prev, done := s.enterLine()
	defer leaveLine(prev, done)
	<-s.turn // the next update checks and stages while this one commits
	turn = false
	if err := s.waitLine(ctx, prev); err != nil {
		return nil, err
	}
	cur := s.filesUsage()
	next := cur.after(files.write, deletes)
	if err := checkQuota(cur, next, l); err != nil {
		return nil, err
	}
	if s.env.clustered {
		write := make(map[string][]byte, len(files.write))
		for _, f := range files.write {
			write[f.name] = f.data
		}
		// The client's going away does not cut the write short: a store
		// that committed while its caller gave up would hold files the disk
		// does not.
		sctx, cancel := storeCtx(ctx)
		err := s.env.store.SaveFiles(sctx, s.id, s.epoch(), write, deletes)
		cancel()
		if err != nil {
			return nil, err
		}
	}

	// The store has the files: the disk gets them too, whether the client
	// waits or not. One batch for Vite: it handles the files once all of
	// them are on disk, and says what it did as soon as it knows.
	names := make([]string, len(files.write))
	for i, f := range files.write {
		names[i] = f.name
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.env.hmrWait)
	defer cancel()
	hold, herr := r.server.Hold(hctx, names, deletes)
	if herr == nil {
		defer hold.Release() // a hold left by a failed write
	}
	if commitErr := staged.commit(s.root); commitErr != nil {
		// The store has the new files and the disk only some: the session
		// cannot be trusted to show what the client sent.
		s.setStatus(ctx, StatusError, "writing the files of an update failed")
		return nil, fmt.Errorf("vitehost/preview: write files: %w", commitErr)
	}
	removed, removeErr := removeFiles(s.root, deletes)
	written := time.Now()
	res.Updated = append(res.Updated, names...)
	res.Deleted = append(res.Deleted, removed...)
	s.setUsage(next) // what the store holds, whatever the disk did
	if removeErr != nil {
		return res, fmt.Errorf("vitehost/preview: delete files: %w", removeErr)
	}
	var outcome *vite.BatchResult
	if herr == nil {
		cctx, cancel := context.WithTimeout(ctx, s.env.hmrWait)
		defer cancel()
		outcome, herr = hold.Commit(cctx)
	}
	if herr != nil {
		s.log.Warn("vitehost/preview: no outcome of the update from the dev server", "err", herr)
	} else {
		res.HMR = hmrOutcome(outcome)
		if res.HMR.Type != HMRNone {
			s.env.metrics.observeHMR(time.Since(written))
		}
	}
	s.events.add(eventUpdate, updateEvent{Updated: res.Updated, Deleted: res.Deleted, HMR: res.HMR})
	if outcome != nil {
		for i := range outcome.Errors {
			s.events.add(eventCompileError, compileError(&outcome.Errors[i]))
		}
	}
	s.log.Info("vitehost/preview: updated", "files", describeFiles(files.write), "deleted", len(res.Deleted),
		"hmr", res.HMR.Type, "paths", res.HMR.Paths, "compileError", res.HMR.Error != nil)
	return res, nil
}

package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/vitehost/vitehost/preview/internal/deps"
)

// This file changes a live session's dependency set: an update whose
// package.json declares another set. The session keeps its id, its URL and
// its files. The new set resolves and installs while the dev server serves
// on the old one; then the update stores the files and the new
// package.json (fenced, on a node of several), stops the dev server, puts
// the files on disk, and starts it again on the new set.
// The open pages' Vite clients see their socket close, wait for the server
// and reload once. A set that cannot be installed (no such package or
// version, ERESOLVE, the Vite floor) changes nothing: the session serves on
// its old set with its old package.json on disk.
//
// The turn is held while the files are staged, as an update's is; then
// the change takes its place in the commit line (line.go) and, once the
// updates before it are committed, stores the files and points the session
// at its new run: the old dev server's stop, the files' commit and the new
// server's start come after that (switchDeps), in the background, whether
// the client waits or not. An update that takes the turn meanwhile waits
// for the switch (switching), then for the new run to serve, as requests
// do.
//
// Changes apply in the order they arrived, the last one winning: each
// waits for the one before it to be applied or refused before it takes the
// turn, while the installs of both may run at once.

// DependencyChange is what an update changed in a session's dependency set,
// with the versions installed (the spec when a version cannot be read).
type DependencyChange struct {
	// Added are the packages the new set has and the old did not, by name.
	Added map[string]string `json:"added"`
	// Removed are the packages of the old set that the new one lacks.
	Removed map[string]string `json:"removed"`
	// Changed are the packages whose spec or installed version changed.
	Changed map[string]VersionChange `json:"changed"`
}

// VersionChange is a package's installed version before and after a
// dependency change.
type VersionChange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// eventInstall is a step of a dependency change's install in the event
// stream: {phase, packages?}, the phases of deps.Phase, and "failed"
// {phase, error} when the set is refused.
const eventInstall = "install"

// installFailed is the phase of an eventInstall whose set was refused.
const installFailed deps.Phase = "failed"

// installEvent is the data of an eventInstall.
type installEvent struct {
	deps.Progress
	Error string `json:"error,omitempty"`
}

// setDeps sets the session's dependency set.
func (s *session) setDeps(d Deps) {
	s.state.Lock()
	s.deps = d
	s.state.Unlock()
}

// depSet returns the session's dependency set.
func (s *session) depSet() Deps {
	s.state.Lock()
	defer s.state.Unlock()
	return s.deps
}

// changingDeps reports whether a dependency change is under way: an update
// that declares a set must then queue behind it, whatever the set, so that
// the last one wins.
func (s *session) changingDeps() bool {
	s.state.Lock()
	q := s.depsQueue
	s.state.Unlock()
	if q == nil {
		return false
	}
	select {
	case <-q:
		return false
	default:
		return true
	}
}

// queueDeps puts a dependency change in line: it returns the done channel
// of the change before it (nil for none) and its own, which the caller
// closes once it is applied or refused.
func (s *session) queueDeps() (prev <-chan struct{}, done chan struct{}) {
	done = make(chan struct{})
	s.state.Lock()
	prev, s.depsQueue = s.depsQueue, done
	s.state.Unlock()
	return prev, done
}

// changeDeps applies an update that declares the dependency set next: see
// the top of this file.
func (s *session) changeDeps(ctx context.Context, files checkedFiles, deletes []string, next Deps, l Limits) (*UpdateResult, error) {
	prev, done := s.queueDeps()
	// The next change waits for this one's turn in line, even when this
	// one gave up before its predecessor was done.
	defer leaveLine(prev, done)

	hold, release := context.WithCancel(s.ctx)
	owned := false // switchDeps has the lease
	defer func() {
		if !owned {
			release()
		}
	}()
	began := time.Now()
	report := func(p deps.Progress) { s.events.add(eventInstall, installEvent{Progress: p}) }
	// From the set it replaces: the store resolves and links only what
	// differs.
	modules, err := s.env.deps.Install(ctx, hold, next, s.depSet(), report)
	if err != nil {
		err = requestError(err)
		var re *RequestError
		if errors.As(err, &re) {
			s.events.add(eventInstall, installEvent{Progress: deps.Progress{Phase: installFailed}, Error: re.Msg})
		} else if ctx.Err() == nil {
			s.events.add(eventInstall, installEvent{Progress: deps.Progress{Phase: installFailed}, Error: clientText(err)})
		}
		if errors.Is(err, ErrInstall) {
			return nil, fmt.Errorf("%w: %w", ErrDevServer, err)
		}
		return nil, err
	}
	s.addWarnings(s.env.deps.Warnings(next))
	installed := time.Now()

	if prev != nil {
		select {
		case <-prev:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stopped:
			return nil, errStopped
		}
	}
	r, err := s.servingTurn(ctx, "a dependency change")
	if err != nil {
		return nil, err
	}
	old := s.depSet()
	if next.Key() == old.Key() {
		// A change before this one went back to this set.
		files.ignoreManifest()
		return s.updateFiles(ctx, r, files, deletes, l)
	}
	committed := s.filesUsage()
	if err := checkQuota(committed, committed.after(files.write, deletes), l); err != nil {
		s.endTurn()
		return nil, err
	}
	change := diffDeps(old, next, s.nodeModules, modules)
	write := append(slices.Clone(files.write), pendingFile{name: "package.json", data: next.PackageJSON()})
	staged, err := stageFiles(s.root, write, s.owner())
	if err != nil {
		s.endTurn()
		return nil, fmt.Errorf("vitehost/preview: write files: %w", err)
	}
	prevLine, doneLine := s.enterLine()
	defer leaveLine(prevLine, doneLine)
	switching := make(chan struct{})
	s.state.Lock()
	s.switching = switching
	s.state.Unlock()
	<-s.turn // as an update's: the next one stages meanwhile
	// endSwitch ends the change's use of the session: the session points
	// at its new run by then, or never will (handed false: the staged
	// files go).
	handed := false
	endSwitch := sync.OnceFunc(func() {
		if !handed {
			staged.discard()
		}
		s.state.Lock()
		s.switching = nil
		s.users--
		s.state.Unlock()
		close(switching)
	})
	defer endSwitch()
	if err := s.waitLine(ctx, prevLine); err != nil {
		return nil, err
	}
	committed = s.filesUsage()
	nextUsage := committed.after(files.write, deletes)
	if err := checkQuota(committed, nextUsage, l); err != nil {
		return nil, err
	}
	if s.env.clustered {
		stored := make(map[string][]byte, len(write))
		for _, f := range write {
			stored[f.name] = f.data
		}
		// As an update's: the client's going away does not cut it short.
		sctx, cancel := storeCtx(ctx)
		err := s.env.store.SaveFiles(sctx, s.id, s.epoch(), stored, deletes)
		cancel()
		if err != nil {
			return nil, err
		}
	}

	// The store has the new set: the switch to it goes on whatever the
	// client does. Requests wait for the new run from here on (serving),
	// the next update among them, not across the old dev server's stop
	// and the new one's start.
	nr := newDevRun(s.ctx)
	s.state.Lock()
	s.cur = nr
	s.proxy.Store(nil)
	s.usage = nextUsage // what the store holds
	s.state.Unlock()
	names := make([]string, 0, len(write))
	for _, f := range write {
		names = append(names, f.name)
	}
	switched := make(chan error, 1)
	res := &UpdateResult{
		Updated: names, Ignored: files.ignored,
		HMR:          HMR{Type: HMRFullReload, Paths: []string{"*"}},
		Dependencies: change,
	}
	if !s.spawn(func() {
		removed, err := s.switchDeps(r, nr, staged, deletes, next, modules, release)
		if err == nil {
			res.Deleted = append([]string{}, removed...)
			s.events.add(eventUpdate, updateEvent{Updated: res.Updated, Deleted: res.Deleted, HMR: res.HMR})
			s.log.Info("vitehost/preview: dependencies changed", "added", len(change.Added), "removed", len(change.Removed),
				"changed", len(change.Changed), "install", installed.Sub(began).Round(time.Millisecond),
				"restart", time.Since(installed).Round(time.Millisecond))
		}
		switched <- err
	}) {
		return nil, errStopped
	}
	owned = true  // switchDeps ends the lease, or keeps it for the new set
	handed = true // and commits or discards the staged files
	endSwitch()

	select {
	case err := <-switched:
		if err != nil {
			return nil, err
		}
		return res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// switchDeps moves the session from its run old to the run nr on the
// dependency set next, installed in modules, whose lease in the dependency
// cache release ends: it stops the old dev server, puts the staged files
// on disk, removes deletes, and starts nr on the new set, with the
// session's context, not a client's. It returns the files it removed. It
// runs in the background (spawn), no turn held; a failure fails the
// session (failChange), since its disk no longer holds what it served.
func (s *session) switchDeps(old, nr *devRun, staged *stagedFiles, deletes []string, next Deps, modules string, release context.CancelFunc) ([]string, error) {
	defer staged.discard() // what was not committed
	switched := false
	defer func() {
		if !switched {
			release()
		}
	}()
	s.stopRun(old)
	old.wg.Wait()
	if err := staged.commit(s.root); err != nil {
		return nil, s.failChange(nr, fmt.Errorf("vitehost/preview: write files: %w", err))
	}
	removed, err := removeFiles(s.root, deletes)
	if err != nil {
		return nil, s.failChange(nr, fmt.Errorf("vitehost/preview: delete files: %w", err))
	}
	if err := s.launchOn(next, modules); err != nil {
		return nil, s.failChange(nr, err)
	}
	s.setDeps(next)
	s.releaseDeps()
	s.releaseDeps, switched = release, true
	if err := s.startRun(nr.ctx, nr); err != nil {
		return nil, s.failChange(nr, err)
	}
	return removed, nil
}

// failChange ends a dependency change that failed once the old dev server
// was stopped: the new run r fails, and the session with it (as a wake
// that fails does), since its disk no longer holds what it served.
func (s *session) failChange(r *devRun, err error) error {
	r.setUp(err)
	s.stopRun(r)
	if s.ctx.Err() != nil {
		return errStopped
	}
	s.log.Error("vitehost/preview: dependency change failed", "err", err)
	s.setStatus(context.Background(), StatusError, "restarting the dev server on the new dependencies failed")
	if errors.Is(err, ErrDevServer) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrDevServer, err)
}

// ignoreManifest lists the request's package.json as ignored: its set is
// the session's already.
func (f *checkedFiles) ignoreManifest() {
	if f.packageJSON != nil {
		f.ignored = append(f.ignored, "package.json")
	}
}

// diffDeps says what changed from the set old, installed in oldModules, to
// next, installed in nextModules. Either directory may be "" (unknown):
// the specs stand in for the versions.
func diffDeps(old, next Deps, oldModules, nextModules string) *DependencyChange {
	c := &DependencyChange{Added: map[string]string{}, Removed: map[string]string{}, Changed: map[string]VersionChange{}}
	for _, name := range slices.Sorted(maps.Keys(next)) {
		to := installedVersion(nextModules, name, next[name])
		spec, had := old[name]
		if !had {
			c.Added[name] = to
			continue
		}
		from := installedVersion(oldModules, name, spec)
		if spec != next[name] || from != to {
			c.Changed[name] = VersionChange{From: from, To: to}
		}
	}
	for name, spec := range old {
		if _, ok := next[name]; !ok {
			c.Removed[name] = installedVersion(oldModules, name, spec)
		}
	}
	return c
}

// installedVersion returns the version of package name installed in
// modules, or spec when it cannot be read.
func installedVersion(modules, name, spec string) string {
	if modules == "" {
		return spec
	}
	data, err := os.ReadFile(filepath.Join(modules, name, "package.json"))
	if err != nil {
		return spec
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(data, &pkg) != nil || pkg.Version == "" {
		return spec
	}
	return pkg.Version
}

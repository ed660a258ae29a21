package preview

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/preview/internal/launch"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// This file keeps sandboxed runners started ahead of the sessions that
// will use them (vite.Spare): Node with Vite imported, warmed up by one
// page load of the React template. A spare runs no tenant's code before
// the one session that takes it, and no other session after. A session that starts or wakes in one
// skips Node's start and Vite's import, and its first page load costs what
// a reload does, several times less than in a fresh process. The spares
// run the template's dependency set, the one most sessions have; a session
// of another set starts a runner of its own.
//
// The stock follows demand (see demand.go): it keeps Options.Spares, and
// as many more as sessions of the template's set arrived within the time
// it takes to make one, at the peak of the last Options.SpareIdle, within
// Options.SpareMemory. A spare beyond that waits SpareIdle unused, then
// stops. When the stock is short of several (a burst was seen), it makes
// several at once on all cores but one (atOnce), so that it is full again
// in a fraction of the time: a spare's warm-up keeps one core busy for
// about a second. The core left is the sessions' that arrive meanwhile: a
// warm-up begun goes on when a session starts.

// spares is the Manager's stock of spare runners.
type spares struct {
	env     *sessionEnv
	deps    Deps   // the template's dependency set
	baseDir string // the spares' directories are spare-<random> in it
	log     *slog.Logger

	kick     chan struct{} // buffered: something changed, see whether a spare is missing
	parallel int           // the machine's cores, of which atOnce makes spares on all but one

	mu       sync.Mutex
	demand   demand       // the stock's bounds, and the sessions that asked for a spare
	starting int          // dev servers of sessions starting now: a spare's warm-up waits for them
	making   int          // spares being made now
	modules  string       // where deps is installed, once a spare runs on it
	idle     []*idleSpare // oldest first
	taken    atomic.Int64 // starts and wakes that found a spare
	missed   atomic.Int64 // starts and wakes of the template's set that found none
}

// idleSpare is a spare that waits for a session, since when.
type idleSpare struct {
	sp    *vite.Spare
	since time.Time
}

func newSpares(o *Options, env *sessionEnv, log *slog.Logger) (*spares, error) {
	deps, err := templateDeps()
	if err != nil {
		return nil, err
	}
	d := newDemand(o.Spares, o.SpareMemory, o.SpareIdle)
	return &spares{
		env:      env,
		deps:     deps,
		baseDir:  o.BaseDir,
		log:      log.With("spares", d.min, "max_spares", d.max),
		kick:     make(chan struct{}, 1),
		parallel: runtime.NumCPU(),
		demand:   d,
	}, nil
}

// begin counts a session's dev server that starts, and end one that has
// started (its page loaded): spares start only while none does, so that
// their warm-up (about a second of CPU) never slows a session down. end
// asks for a refill.
func (p *spares) begin() {
	if p != nil {
		p.mu.Lock()
		p.starting++
		p.mu.Unlock()
	}
}

func (p *spares) end() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.starting--
	p.mu.Unlock()
	p.refill()
}

// refill asks the stock to make up for a spare taken, or to begin once the
// template's optimized dependencies exist; it never blocks.
func (p *spares) refill() {
	if p == nil {
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// fit reports whether the spares can run a session whose dependencies are
// installed in modules.
func (p *spares) fit(modules string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.modules != "" && modules == p.modules
}

// take returns an idle spare, or nil. counted: the session that asks
// counts in the demand the stock follows (the service's own does not).
func (p *spares) take(counted bool) *vite.Spare {
	var dead []*vite.Spare // runners that died while they waited
	defer func() {
		for _, sp := range dead {
			p.discard(sp)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if counted {
		p.demand.arrive(time.Now())
	}
	for len(p.idle) > 0 {
		sp := p.idle[0].sp
		p.idle = p.idle[1:]
		if sp.Alive() {
			p.taken.Add(1)
			return sp
		}
		dead = append(dead, sp)
	}
	p.missed.Add(1)
	return nil
}

// run keeps the stock until ctx ends, making spares when kicked, while no
// session's dev server starts: once a session of the template's set has
// started (and its page is loaded), and when the service's own session has
// shared the template's optimized dependencies (Prepare). A spare starts
// only once those are there, so that its warm-up never optimizes the
// dependencies itself, which would leave it with the optimizer's memory. A
// Manager whose sessions never start keeps none. Every tick, it stops the
// spares that the demand no longer asks for, and tries again to make
// those that failed. It returns once the spares it was making are made,
// and every spare is stopped.
func (p *spares) run(ctx context.Context) {
	var making sync.WaitGroup
	defer func() {
		making.Wait()
		p.closeAll()
	}()
	tick := time.NewTicker(p.demand.tick())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-tick.C:
			p.shrink(time.Now())
		}
		for ctx.Err() == nil && p.beginMaking() {
			making.Go(func() { p.make(ctx) })
		}
	}
}

// make makes one spare that beginMaking counted, and asks for the next
// one when it is made; after a failure, the next kick or tick tries again.
func (p *spares) make(ctx context.Context) {
	began := time.Now()
	sp, err := p.start(ctx)
	p.mu.Lock()
	p.making--
	if err == nil {
		p.demand.made(time.Since(began))
		p.idle = append(p.idle, &idleSpare{sp: sp, since: time.Now()})
	}
	p.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, errNotYet) {
			p.log.Warn("vitehost/preview: start a spare runner", "err", err)
		}
		return
	}
	p.refill()
}

// shrink stops the oldest spares beyond what the demand asks for at now
// that waited longer than the demand's idle time.
func (p *spares) shrink(now time.Time) {
	var gone []*vite.Spare
	p.mu.Lock()
	want := p.demand.target(now)
	for len(p.idle) > want && now.Sub(p.idle[0].since) >= p.demand.idle {
		gone = append(gone, p.idle[0].sp)
		p.idle = p.idle[1:]
	}
	p.mu.Unlock()
	for _, sp := range gone {
		p.discard(sp)
	}
	if len(gone) > 0 {
		p.log.Debug("vitehost/preview: spare runners stopped, unused", "stopped", len(gone), "kept", want)
	}
}

// ready returns how many spares wait for a session.
func (p *spares) ready() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// beginMaking counts a spare as being made when one should start now:
// fewer than the demand asks for wait or are being made, fewer than
// atOnce of those missing are being made, and no session's dev server is
// starting. It reports whether it did; the caller then makes one and takes
// making back down.
func (p *spares) beginMaking() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	missing := p.demand.target(time.Now()) - len(p.idle)
	if p.making >= missing || p.making >= atOnce(missing, p.parallel) || p.starting > 0 {
		return false
	}
	p.making++
	return true
}

// atOnce returns how many spares are made at once when missing are
// missing, on a machine of cores: one when a spare or two are missing, as
// a steady rate asks for, up to one per core but one when more are, after
// a burst; the core left stays with the sessions that keep arriving.
func atOnce(missing, cores int) int {
	if missing <= 2 {
		return 1
	}
	return max(1, min(missing, cores-1))
}

// spareCPUWeight is a spare's share of a contended CPU while it waits
// (sandbox.Limits.CPUWeight), a tenth of a session's.
const spareCPUWeight = 10

// errNotYet: the template's dependencies or their optimized form are not
// there yet.
var errNotYet = errors.New("vitehost/preview: the template's optimized dependencies are not there yet")

// start makes one spare: a directory of its own with the template's files
// and optimized dependencies, and a runner warmed up on them. The spares
// hold the template's installed set until ctx ends (the Manager's life, as
// Prepare does), so that the dependency cache keeps it.
func (p *spares) start(ctx context.Context) (*vite.Spare, error) {
	if !p.env.deps.Installed(p.deps) {
		return nil, errNotYet // a spare never waits for npm
	}
	modules, err := p.env.deps.Ensure(ctx, ctx, p.deps)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.modules = modules
	p.mu.Unlock()
	var rnd [8]byte
	rand.Read(rnd[:])
	dir := filepath.Join(p.baseDir, "spare-"+hex.EncodeToString(rnd[:]))
	sp, err := p.startIn(ctx, dir, modules)
	if err != nil {
		removeDir(dir)
	}
	return sp, err
}

func (p *spares) startIn(ctx context.Context, dir, modules string) (*vite.Spare, error) {
	files, err := readTemplate()
	if err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	if p.env.disks != nil {
		// The session that takes the spare mounts its disk over dir
		// (moveInto); its runner sees it there.
		if err := sandbox.Share(dir); err != nil {
			return nil, err
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := writeFiles(root, files, sandboxOwner(p.env.sandbox)); err != nil {
		return nil, err
	}
	if err := root.WriteFile("package.json", p.deps.PackageJSON(), 0o644); err != nil {
		return nil, err
	}
	l := launch.For(launch.Project{Files: root, Dir: dir, Modules: modules, Deps: p.deps,
		Sandboxed: true, AllowConfig: p.env.allowConfig, TempPrefix: tmpPrefix})
	sb := *p.env.sandbox
	sb.Modules, sb.Name = modules, "spare"
	// A spare is work for later: the sessions serving now go first on a
	// busy CPU, and the one that takes it gets the session's share back
	// (vite.Spare.Start).
	sb.Limits.CPUWeight = spareCPUWeight
	ok, err := launch.SeedOptimized(l.Optimized, filepath.Join(dir, ".vite-cache", "deps"), &sb)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotYet
	}
	return vite.StartSpare(ctx, dir, &vite.Options{
		Framework:    vite.Vite,
		NoConfigFile: l.NoConfigFile,
		Config:       l.Config,
		Plugins:      l.Plugins,
		Node:         p.env.node,
		Logger:       p.log,
		StartTimeout: p.env.startTimeout,
		Sandbox:      &sb,
	})
}

// discard ends a spare and removes its directory.
func (p *spares) discard(sp *vite.Spare) {
	if err := sp.Close(); err != nil {
		p.log.Warn("vitehost/preview: stop a spare runner", "err", err)
	}
	if err := removeDir(sp.Dir()); err != nil {
		p.log.Warn("vitehost/preview: remove a spare's directory", "err", err)
	}
}

func (p *spares) closeAll() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		p.discard(w.sp)
	}
}

// moveInto gives the session's files to the spare sp, whose sandbox holds
// its directory (the slot), and to the user that sandbox runs as. A
// session on a disk of its own mounts it over the slot, which stays until
// the run ends (r.slot); without, what the session directory holds moves
// into the slot, which then takes the session directory's name. What sp
// warmed up on goes. On failure the session directory is as it was.
func (s *session) moveInto(r *devRun, sp *vite.Spare) error {
	slot := sp.Dir()
	info, err := os.Stat(slot)
	if err != nil {
		return err
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	chown := func(dir string) error {
		if os.Geteuid() != 0 || st == nil {
			return nil
		}
		return sandbox.Chown(dir, int(st.Uid), int(st.Gid))
	}
	if s.disk != nil {
		if err := chown(s.dir); err != nil {
			return err
		}
		if err := sandbox.Attach(s.dir, slot); err != nil {
			return err
		}
		r.slot = slot
		return nil
	}
	old, err := os.ReadDir(slot)
	if err != nil {
		return err
	}
	for _, e := range old {
		if err := os.RemoveAll(filepath.Join(slot, e.Name())); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	moved := 0
	back := func(err error) error {
		for _, e := range entries[:moved] {
			os.Rename(filepath.Join(slot, e.Name()), filepath.Join(s.dir, e.Name()))
		}
		return fmt.Errorf("vitehost/preview: move the session into a spare: %w", err)
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(s.dir, e.Name()), filepath.Join(slot, e.Name())); err != nil {
			return back(err)
		}
		moved++
	}
	if err := chown(slot); err != nil {
		return back(err)
	}
	root, err := os.OpenRoot(slot) // the directory, whatever its name
	if err != nil {
		return back(err)
	}
	aside := slot + ".emptied"
	if err := os.Rename(s.dir, aside); err != nil {
		root.Close()
		return back(err)
	}
	if err := os.Rename(slot, s.dir); err != nil {
		os.Rename(aside, s.dir)
		root.Close()
		return back(err)
	}
	os.Remove(aside)
	s.root.Close()
	s.root = root
	return nil
}

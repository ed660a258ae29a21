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
	"sync"
	"syscall"

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

// spares is the Manager's stock of spare runners.
type spares struct {
	want    int
	env     *sessionEnv
	deps    Deps   // the template's dependency set
	baseDir string // the spares' directories are spare-<random> in it
	log     *slog.Logger

	kick chan struct{} // buffered: something changed, see whether a spare is missing

	mu       sync.Mutex
	starting int    // dev servers of sessions starting now: a spare's warm-up waits for them
	modules  string // where deps is installed, once a spare runs on it
	idle     []*vite.Spare
}

func newSpares(want int, env *sessionEnv, baseDir string, log *slog.Logger) (*spares, error) {
	deps, err := templateDeps()
	if err != nil {
		return nil, err
	}
	return &spares{
		want:    want,
		env:     env,
		deps:    deps,
		baseDir: baseDir,
		log:     log.With("spares", want),
		kick:    make(chan struct{}, 1),
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

// take returns an idle spare, or nil.
func (p *spares) take() *vite.Spare {
	var dead []*vite.Spare // runners that died while they waited
	defer func() {
		for _, sp := range dead {
			p.discard(sp)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.idle) > 0 {
		sp := p.idle[0]
		p.idle = p.idle[1:]
		if sp.Alive() {
			return sp
		}
		dead = append(dead, sp)
	}
	return nil
}

// run keeps want spares until ctx ends, making one at a time when kicked,
// while no session's dev server starts: once a session of the template's
// set has started (and its page is loaded), and when the service's own
// session has shared the template's optimized dependencies (Prepare). A spare
// starts only once those are there, so that its warm-up never optimizes
// the dependencies itself, which would leave it with the optimizer's
// memory. A Manager whose sessions never start keeps none.
func (p *spares) run(ctx context.Context) {
	defer p.closeAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		for p.missing() && ctx.Err() == nil {
			sp, err := p.start(ctx)
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, errNotYet) {
					p.log.Warn("vitehost/preview: start a spare runner", "err", err)
				}
				break // until the next kick
			}
			p.mu.Lock()
			p.idle = append(p.idle, sp)
			p.mu.Unlock()
		}
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

// missing reports whether a spare should start now: fewer than want
// wait, and no session's dev server is starting.
func (p *spares) missing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle) < p.want && p.starting == 0
}

// errNotYet: the template's dependencies or their optimized form are not
// there yet.
var errNotYet = errors.New("vitehost/preview: the template's optimized dependencies are not there yet")

// start makes one spare: a directory of its own with the template's files
// and optimized dependencies, and a runner warmed up on them. The spares
// hold the template's installed set until ctx ends (the Manager's life, as
// Prepare does), so that the dependency cache keeps it.
func (p *spares) start(ctx context.Context) (*vite.Spare, error) {
	if !p.env.deps.installed(p.deps) {
		return nil, errNotYet // a spare never waits for npm
	}
	modules, err := p.env.deps.ensure(ctx, ctx, p.deps)
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
	if err := writeFiles(root, files); err != nil {
		return nil, err
	}
	if err := root.WriteFile("package.json", p.deps.packageJSON(), 0o644); err != nil {
		return nil, err
	}
	l := sessionLaunch(dir, modules, p.deps, true, p.env.allowConfig)
	sb := *p.env.sandbox
	sb.Modules, sb.Name = modules, "spare"
	ok, err := seedOptimized(sharedOptimized(modules, p.deps, l, dir), filepath.Join(dir, ".vite-cache", "deps"), &sb)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotYet
	}
	return vite.StartSpare(ctx, dir, &vite.Options{
		Framework:    vite.Vite,
		NoConfigFile: l.noConfig,
		Config:       l.config,
		Plugins:      l.plugins,
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
	for _, sp := range idle {
		p.discard(sp)
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

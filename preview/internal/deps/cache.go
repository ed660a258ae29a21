package deps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/internal/flock"
)

// Cache installs each dependency set once into dir/<key>/node_modules,
// where key names what npm resolves the set to (see lockfile.go): a set is
// first resolved into a lockfile (Options.Resolve), and sets that resolve
// to the same packages share one install. The resolution of each declared
// set is remembered in dir/specs, so that a set seen before costs no npm
// run.
//
// At most Options.MaxInstalls resolutions and installs run at once; the
// others wait in order of arrival. Concurrent requests for one set share
// one install, in this process (a map of calls) and across processes that
// share dir (a file lock); the install stops when every request waiting for
// it has given up. A failed install leaves nothing behind, so the next
// request tries again. Each caller holds a lease on its set (a shared file
// lock) for as long as it says; gc.go removes the least recently used sets
// that no lease holds once the cache outgrows its bound.
type Cache struct {
	dir      string
	install  []string
	resolve  []string
	timeout  time.Duration
	maxBytes int64 // < 0: no bound
	queue    *installQueue
	pnpm     *pnpm // the node's package store; nil: the Install and Resolve commands
	log      *slog.Logger
	observe  func(time.Duration, error)
	floor    string // Options.ViteFloor

	// ctx ends every install when the cache stops; wg waits for them and
	// for the evictions that follow them.
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	calls    map[string]*installCall // by the declared set's Key
	evicting bool
}

// Options configures a Cache.
type Options struct {
	// Install installs a dependency set in the current directory, which
	// holds its package.json and the package-lock.json Resolve wrote. Nil,
	// with Resolve nil too, means the node's package store (pnpm.go);
	// alone, DefaultInstall().
	Install []string
	// Resolve resolves a dependency set without installing it: run in a
	// directory that holds the set's package.json, it writes
	// package-lock.json (lockfile version 2 or 3). Nil, with Install nil
	// too, means the node's package store; alone, DefaultResolve().
	Resolve []string
	// Timeout bounds one install, its resolution included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxBytes bounds the disk the cache uses: after each install, the sets
	// that no lease holds are removed, least recently used first, until
	// the cache fits. Negative means no bound.
	MaxBytes int64
	// MaxInstalls bounds the resolutions and installs that run at once.
	// Zero means 1.
	MaxInstalls int
	// Logger receives the installs' progress and npm's output on failures.
	// Nil means slog.Default().
	Logger *slog.Logger
	// Observe, if not nil, is called after each resolution and install
	// with the time it took and its error.
	Observe func(took time.Duration, err error)
	// ViteFloor is the oldest vite a set may resolve to (see ParseFloor);
	// "" means MinVite.
	ViteFloor string
}

// DefaultTimeout is the bound of one install when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Minute

// DefaultInstall returns the install command of a nil Options.Install: npm
// install. Lifecycle scripts of dependencies never run; the registry is the
// only source (the specs were checked by Parse).
func DefaultInstall() []string {
	return []string{"npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"}
}

// DefaultResolve returns the resolve command of a nil Options.Resolve: npm
// install --package-lock-only, which writes package-lock.json.
func DefaultResolve() []string {
	return []string{"npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"}
}

// New returns the cache of dependency sets in dir.
func New(dir string, opts *Options) *Cache {
	var o Options
	if opts != nil {
		o = *opts
	}
	store := o.Install == nil && o.Resolve == nil
	if o.Install == nil {
		o.Install = DefaultInstall()
	}
	if o.Resolve == nil {
		o.Resolve = DefaultResolve()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxInstalls <= 0 {
		o.MaxInstalls = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Observe == nil {
		o.Observe = func(time.Duration, error) {}
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Cache{
		dir:      dir,
		install:  append([]string(nil), o.Install...),
		resolve:  append([]string(nil), o.Resolve...),
		timeout:  o.Timeout,
		maxBytes: o.MaxBytes,
		queue:    newInstallQueue(o.MaxInstalls),
		log:      o.Logger,
		observe:  o.Observe,
		floor:    o.ViteFloor,
		ctx:      ctx,
		stop:     stop,
		calls:    make(map[string]*installCall),
	}
	if store {
		c.pnpm = newPNPM(dir, c.command)
	}
	return c
}

// Stop ends every install that runs and every one that starts after: the
// requests that wait for them get ErrInstall. It does not wait; Close
// does.
func (c *Cache) Stop() { c.stop() }

// Close stops the cache and waits for its installs and evictions to end.
func (c *Cache) Close() {
	c.stop()
	c.wg.Wait()
}

// Counts returns the installs running and waiting for their turn.
func (c *Cache) Counts() (running, waiting int) { return c.queue.counts() }

// installCall is the resolution and install of one declared set, shared by
// every request that waits for it.
type installCall struct {
	done    chan struct{}
	err     error              // set before done is closed
	waiters int                // requests waiting; guarded by Cache.mu
	cancel  context.CancelFunc // stops the install when the last waiter leaves
	// watchers get the install's progress; guarded by Cache.mu.
	watchers []progressFunc
}

// leaseRetries bounds ensure's rounds when the set it found is removed
// before it holds it (another process's eviction).
const leaseRetries = 3

// Ensure returns the node_modules directory of deps, resolving and
// installing the set first when needed. ctx bounds the wait: a request
// that gives up leaves the install to the others, and stops it when nobody
// else waits. The set stays in the cache, safe from eviction, until hold
// ends. A set whose vite is below the floor (vitefloor.go) or that npm
// cannot resolve as declared is an *InvalidError.
func (c *Cache) Ensure(ctx, hold context.Context, deps Set) (string, error) {
	return c.Install(ctx, hold, deps, nil, nil)
}

// Install is Ensure that reports its progress to report (which may be
// nil), ending with PhaseDone when it succeeds. An install that another
// request started reports its steps from where it is. like (which may be
// nil) is a set that deps resembles, such as the one it replaces: when it
// is installed, the store's resolution starts from it (storeseed.go).
func (c *Cache) Install(ctx, hold context.Context, deps, like Set, report func(Progress)) (string, error) {
	modules, err := c.ensure(ctx, hold, deps, like, report)
	if err == nil {
		progressFunc(report).report(Progress{Phase: PhaseDone})
	}
	return modules, err
}

func (c *Cache) ensure(ctx, hold context.Context, deps, like Set, report progressFunc) (string, error) {
	spec := deps.Key()
	for range leaseRetries {
		if res, ok := c.resolved(spec); ok {
			if err := CheckViteVersion(res.vite, c.floor, deps); err != nil {
				return "", err
			}
			if modules, ok := c.lease(res.key, hold); ok {
				return modules, nil
			}
		}
		call := c.join(spec, deps, like, report)
		select {
		case <-call.done:
			if call.err != nil {
				return "", call.err
			}
		case <-ctx.Done():
			c.leave(spec, call)
			return "", ctx.Err()
		}
	}
	return "", fmt.Errorf("%w: the installed set was removed %d times while it was being used", ErrInstall, leaseRetries)
}

// Installed reports whether deps has been resolved and installed, without
// running anything.
func (c *Cache) Installed(deps Set) bool {
	res, ok := c.resolved(deps.Key())
	if !ok {
		return false
	}
	_, err := os.Stat(filepath.Join(c.dir, res.key, "node_modules"))
	return err == nil
}

// join returns the install call of the declared set spec, starting it when
// none runs, and counts the caller as one of its waiters.
func (c *Cache) join(spec string, deps, like Set, report progressFunc) *installCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	call := c.calls[spec]
	if call == nil {
		ctx, cancel := context.WithCancel(c.ctx)
		call = &installCall{done: make(chan struct{}), cancel: cancel}
		c.calls[spec] = call
		c.wg.Go(func() {
			call.err = c.run(ctx, spec, deps, like, func(p Progress) { c.notify(call, p) })
			cancel()
			c.mu.Lock()
			if c.calls[spec] == call {
				delete(c.calls, spec)
			}
			c.mu.Unlock()
			close(call.done)
			if call.err == nil {
				c.evict()
			}
		})
	}
	call.waiters++
	if report != nil {
		call.watchers = append(call.watchers, report)
	}
	return call
}

// leave counts a waiter of call out; the last one stops the install and
// forgets it, so that the next request starts afresh.
func (c *Cache) leave(spec string, call *installCall) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if call.waiters--; call.waiters > 0 {
		return
	}
	call.cancel()
	if c.calls[spec] == call {
		delete(c.calls, spec)
	}
}

// run resolves the declared set spec and installs what it resolves to, in
// its turn of the queue.
func (c *Cache) run(ctx context.Context, spec string, deps, like Set, report progressFunc) (err error) {
	release, err := c.queue.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	start := time.Now()
	defer func() { c.observe(time.Since(start), err) }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	if err := os.MkdirAll(filepath.Join(c.dir, "specs"), 0o755); err != nil {
		return err
	}
	if c.pnpm != nil {
		return c.runStore(ctx, spec, deps, like, report) // storeinstall.go
	}
	work, err := c.workDir(deps)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	resolveStart := time.Now()
	report.report(Progress{Phase: PhaseResolving})
	argv, lockName := c.resolve, "package-lock.json"
	legacy := false
	if err := c.command(ctx, argv, work, "resolve"); errors.Is(err, errPeerConflict) {
		// What projects made with pnpm or yarn need: both tolerate what
		// npm 7 and later refuse (https://docs.npmjs.com/cli/v10/using-npm/config#legacy-peer-deps).
		// The store's pnpm tolerates them itself (storeinstall.go).
		c.log.Info("vitehost/preview: npm refused a peer conflict; resolving with --legacy-peer-deps", "spec", spec)
		legacy = true
		if err := c.command(ctx, withLegacyPeers(argv), work, "resolve"); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	lock, err := os.ReadFile(filepath.Join(work, lockName))
	if err != nil {
		return fmt.Errorf("%w: %s wrote no %s", ErrInstall, argv[0], lockName)
	}
	res, err := parseLockfile(lock)
	if err != nil {
		return fmt.Errorf("%w: reading the resolved lockfile: %v", ErrInstall, err)
	}
	res.legacyPeers = legacy
	c.log.Info("vitehost/preview: resolved dependencies", "spec", spec, "key", res.key, "vite", res.vite,
		"took", time.Since(resolveStart).Round(time.Millisecond))
	if err := c.remember(spec, res); err != nil {
		return err
	}
	if err := CheckViteVersion(res.vite, c.floor, deps); err != nil {
		return err
	}
	res.lockfile = lockName
	return c.installLocked(ctx, res, work, report)
}

// workDir makes a private working directory for an install of deps, with
// its package.json. Its name ("resolve-...") keeps it out of sets() and
// lets the eviction pass remove it once no install can still use it.
func (c *Cache) workDir(deps Set) (string, error) {
	dir, err := os.MkdirTemp(c.dir, "resolve-")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), deps.PackageJSON(), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// withLegacyPeers returns argv with --legacy-peer-deps added.
func withLegacyPeers(argv []string) []string {
	return append(slices.Clone(argv), "--legacy-peer-deps")
}

// Warnings returns what the client should know about the resolution of
// deps (a resolved set: Ensure returned): the peer conflicts npm was told
// to tolerate, the advisories of its vite.
func (c *Cache) Warnings(deps Set) []Warning {
	res, ok := c.resolved(deps.Key())
	if !ok {
		return nil
	}
	var out []Warning
	if res.legacyPeers {
		out = append(out, Warning{Code: WarnLegacyPeerDeps, Message: "npm refused the dependencies for a peer conflict (ERESOLVE); " +
			"they were installed with --legacy-peer-deps, as pnpm and yarn install them: a package may run with a peer version it does not declare"})
	}
	if w, ok := ViteWarning(res.vite, deps); ok {
		out = append(out, w)
	}
	return out
}

// installLocked installs the lockfile in work into dir/key, unless it is
// there, holding the set's install lock: another process that shares dir
// may be installing the same set.
func (c *Cache) installLocked(ctx context.Context, res resolution, work string, report progressFunc) error {
	key := res.key
	modules := filepath.Join(c.dir, key, "node_modules")
	if _, err := os.Stat(modules); err == nil {
		return nil
	}
	unlock, err := lockContext(ctx, filepath.Join(c.dir, key+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(modules); err == nil {
		return nil // another process installed it while we waited
	}
	stage, err := os.MkdirTemp(c.dir, key+".stage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	for _, name := range []string{"package.json", res.lockfile} {
		data, err := os.ReadFile(filepath.Join(work, name))
		if err == nil {
			err = os.WriteFile(filepath.Join(stage, name), data, 0o644)
		}
		if err != nil {
			return err
		}
	}
	start := time.Now()
	c.log.Info("vitehost/preview: installing dependencies", "key", key)
	report.report(Progress{Phase: PhaseDownloading, Packages: res.packages})
	argv := c.install
	if res.legacyPeers {
		argv = withLegacyPeers(argv) // else npm install refuses the lockfile's tree again
	}
	if err := c.command(ctx, argv, stage, "install"); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(stage, "node_modules")); err != nil {
		return fmt.Errorf("%w: %s made no node_modules", ErrInstall, argv[0])
	}
	report.report(Progress{Phase: PhaseLinking})
	size, err := c.place(stage, key)
	if err != nil {
		return err
	}
	c.log.Info("vitehost/preview: installed dependencies", "key", key, "bytes", size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// place puts the install in stage (a private directory in the cache) in
// place as set key, with its size recorded, and returns the size; the
// caller holds the set's install lock.
func (c *Cache) place(stage, key string) (int64, error) {
	size := c.setUsage(stage)
	if err := os.WriteFile(filepath.Join(stage, sizeFile), []byte(fmt.Sprint(size)), 0o644); err != nil {
		return 0, err
	}
	// MkdirTemp made stage private; a sandbox's user reads the install.
	if err := os.Chmod(stage, 0o755); err != nil {
		return 0, err
	}
	return size, os.Rename(stage, filepath.Join(c.dir, key))
}

// command runs a resolve or install command in dir. Its output goes to the
// log; the error a client may see carries npm's code and one-line reason
// only (npmerror.go): an *InvalidError when the set cannot be resolved as
// declared, ErrInstall otherwise.
func (c *Cache) command(ctx context.Context, argv []string, dir, what string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	// Belt and braces: npm also reads the setting from the environment.
	cmd.Env = append(os.Environ(), "npm_config_ignore_scripts=true", "npm_config_update_notifier=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	// npm starts node, which may start esbuild's binary: end the group.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	switch {
	case c.ctx.Err() != nil:
		return fmt.Errorf("%w: the service is shutting down", ErrInstall)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		c.log.Warn("vitehost/preview: dependency "+what+" timed out", "command", strings.Join(argv, " "), "output", lastLines(out.String(), 30))
		return fmt.Errorf("%w: the %s timed out after %s", ErrInstall, what, c.timeout)
	case ctx.Err() != nil:
		return ctx.Err() // nobody waits any more
	}
	f := parseFailure(argv, out.String())
	if nf, ok := f.(npmFailure); ok && nf.code == "ERESOLVE" && what == "resolve" && !slices.Contains(argv, "--legacy-peer-deps") {
		return errPeerConflict // run resolves again, and says so
	}
	c.log.Warn("vitehost/preview: dependency "+what+" failed", "command", strings.Join(argv, " "), "err", err, "output", lastLines(out.String(), 30))
	if f.client() {
		return invalid(CodeBadDependency, "the dependencies cannot be resolved: %s", f)
	}
	return fmt.Errorf("%w: %s", ErrInstall, f)
}

// lockContext takes the exclusive lock at path, waiting until ctx ends.
func lockContext(ctx context.Context, path string) (func(), error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		unlock, err := flock.TryLock(path)
		if !errors.Is(err, flock.ErrLocked) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// legacyMark ends the line of a resolution made with --legacy-peer-deps.
const legacyMark = "legacy-peer-deps"

// errPeerConflict: npm refused to resolve a set for a peer conflict
// (ERESOLVE); run resolves it again with --legacy-peer-deps.
var errPeerConflict = errors.New("vitehost/deps: peer conflict")

// specFile is where the resolution of the declared set spec is kept: its
// install key, vite version and legacyMark when it applies, on one line.
func (c *Cache) specFile(spec string) string {
	if c.pnpm != nil {
		// The store's resolutions are its own: a cache that npm filled
		// before keeps its sets, and the store resolves each set afresh.
		spec = "pnpm-" + spec
	}
	return filepath.Join(c.dir, "specs", spec)
}

// resolved returns the remembered resolution of the declared set spec.
func (c *Cache) resolved(spec string) (resolution, bool) {
	data, err := os.ReadFile(c.specFile(spec))
	if err != nil {
		return resolution{}, false
	}
	fields := strings.Fields(string(data)) // a set without vite has none
	if len(fields) == 0 || len(fields[0]) != 24 {
		return resolution{}, false
	}
	res := resolution{key: fields[0], legacyPeers: slices.Contains(fields[1:], legacyMark)}
	if len(fields) > 1 && fields[1] != legacyMark {
		res.vite = fields[1]
	}
	return res, true
}

// remember keeps the resolution of spec, atomically.
func (c *Cache) remember(spec string, res resolution) error {
	f, err := os.CreateTemp(filepath.Join(c.dir, "specs"), ".tmp-")
	if err != nil {
		return err
	}
	mark := ""
	if res.legacyPeers {
		mark = " " + legacyMark
	}
	_, err = fmt.Fprintf(f, "%s %s%s\n", res.key, res.vite, mark)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.specFile(spec))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// lease holds set key until hold ends: a shared lock on dir/key.use, which
// eviction cannot take while any holder has it, and a fresh mark of use. It
// returns the set's node_modules, or false when the set is not (or no
// longer) installed.
func (c *Cache) lease(key string, hold context.Context) (string, bool) {
	unlock, err := flock.RLock(filepath.Join(c.dir, key+".use"))
	if err != nil {
		c.log.Warn("vitehost/preview: lease a dependency set", "key", key, "err", err)
		return "", false
	}
	modules := filepath.Join(c.dir, key, "node_modules")
	if _, err := os.Stat(modules); err != nil {
		unlock()
		return "", false
	}
	now := time.Now()
	if err := os.Chtimes(filepath.Join(c.dir, key), now, now); err != nil {
		c.log.Warn("vitehost/preview: mark a dependency set used", "key", key, "err", err)
	}
	context.AfterFunc(hold, unlock)
	return modules, true
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

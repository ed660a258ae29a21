package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vitehost/vitehost/preview/internal/deps"
	"github.com/vitehost/vitehost/preview/internal/launch"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

// errStopped is the error of a request that waited for a session of this
// node while the session stopped (deleted, expired, claimed by another
// node): resolving the session again says where it is now.
var errStopped = fmt.Errorf("%w: it stopped on this node during the request", ErrNotFound)

// retry reports whether a request that acted on a session of this node
// should resolve the session again: another node claimed it (ErrFenced),
// or it stopped here meanwhile.
func retry(err error) bool { return errors.Is(err, ErrFenced) || errors.Is(err, errStopped) }

// sessionEnv is what every session of a Manager uses, fixed when the
// Manager is made: a session gets it at birth and never reaches back into
// its Manager.
type sessionEnv struct {
	store     Store
	deps      *deps.Cache
	transport http.RoundTripper // the proxies' requests to the dev servers
	client    *http.Client      // the service's own requests to them (warm-up)
	clustered bool              // one node of several: files go to the store too

	node         string
	startTimeout time.Duration
	hmrWait      time.Duration
	allowConfig  bool
	// maxMessage bounds the WebSocket messages clients send to a preview
	// (Limits.MaxWebSocketMessage).
	maxMessage int64
	// sandbox is the template of every session's sandbox; nil runs the dev
	// servers unsandboxed (Options.NoSandbox).
	sandbox *sandbox.Config
	// disks makes each sandboxed session's disk; nil for none (disk.go).
	disks   *sandbox.Disks
	metrics *metrics
	// spares are runners started ahead for the template's dependency set;
	// nil for none.
	spares *spares
	// starts admits the dev servers' starts a few at a time (starts.go).
	starts *starts
}

// session is one preview: a directory, and a dev server that runs from a
// start to a hibernation or the session's end (a run, in devrun.go) with
// the proxy in front of it, and the log of its events.
//
// A session is started once (run) and stopped once (stop); in between, its
// dev server may hibernate and wake any number of times (hibernate.go).
// Until ready is closed, only run touches the fields under "set by run";
// afterwards they are read-only until stop, which waits for ready first,
// but for root, which a wake into a spare runner replaces (moveInto)
// before its run serves: updates wait for the run to serve, and no move
// begins while the session wakes.
//
// No mutex of a session is held across I/O. Its dev server moves through
// states that the state mutex guards (cur, moving, users), each change a
// short step under it, the slow work (a process stop or start, a store
// call) done outside it:
//
//	serving      cur is up
//	hibernating  cur is nil, moving is the hibernation's (hibernate)
//	hibernated   cur is nil, moving is nil
//	waking       cur is not up yet: its up channel closes when it serves
//
// and a record check that writes the session into a store that lost it
// (republish) is a move too. A status request never waits. A request
// that needs the dev server while the session moves waits for that move's
// outcome (the dev server gone and the status stored, or the record
// written) on its channel, with its own context, then goes on: it wakes
// the session, and the wake starts once the hibernation before it is
// done. Updates take turns among themselves (turn) to check and stage
// their files, and then commit them in the order of their turns, no turn
// held (line.go), so that the store and the disk take them in one order:
// only another update of the session waits for an update; while one runs
// (users) the session neither hibernates nor moves.
type session struct {
	id         string
	dir        string
	previewURL *url.URL
	created    time.Time
	expires    time.Time
	env        *sessionEnv
	log        *slog.Logger

	ctx    context.Context // lives as long as the session
	cancel context.CancelFunc

	ready    chan struct{} // closed when run is done
	startErr error         // why run failed; set before ready is closed

	// set by run
	disk   *sandbox.Disk // where the files are, mounted at dir; nil without (disk.go)
	root   *os.Root
	opts   *vite.Options // how the dev server starts, at each wake too
	shared string        // where the optimized dependencies are shared (a trusted session's); "" for nowhere
	// nodeModules is where the session's dependency set is installed; set
	// with opts (launchOn)
	nodeModules string

	events   *eventLog  // what the event stream tells; safe for concurrent use
	warnings []Warning  // about its dependencies; guarded by state
	crashes  chan crash // the dev server's crashes, from onCrash to the run's watch

	// proxy is the serving run's proxy, nil while the dev server is down
	// (starting, hibernated): the router's one atomic load.
	proxy atomic.Pointer[ssrproxy.Proxy]

	// active is when a request, a WebSocket message or an update last
	// reached the session (Unix nanoseconds): the janitor hibernates it
	// after Options.IdleTimeout without one.
	active atomic.Int64

	// warm is what the session's pages asked its dev server for: a wake
	// loads it again before they ask.
	warm warmList

	// sockets counts the WebSockets open to the session's preview, and
	// requests its HTTP/1 requests in flight (visitors.go).
	sockets, requests atomic.Int32

	turn chan struct{} // holds a token while an update checks and stages its files (servingTurn)
	// lineTail is the done channel of the last update to enter the commit
	// line (line.go); guarded by the turn.
	lineTail chan struct{}
	bg       sync.WaitGroup // wakes and hibernations under way; teardown waits for them

	// trusted marks the service's own session (Prepare's), which runs no
	// tenant's code: only its optimized dependencies are shared, and it has
	// no record in the store.
	trusted bool

	stopOnce sync.Once
	stopped  chan struct{}

	// state guards rec, cur, moving, users, switching, usage and closing:
	// status requests never wait for an update, a hibernation or a wake.
	state sync.Mutex
	rec   Record
	cur   *devRun // the dev server's current run; nil while it hibernates
	// moving is closed when the move under way ends (a hibernation, a
	// rewrite of the record); nil when none is.
	moving chan struct{}
	// users counts the updates that hold the serving run (servingTurn),
	// from their turn to the end of their commit: no move begins while one
	// does.
	users int
	// switching is closed when the dependency change that ended its turn
	// has moved the session to its new run or given up; nil when none is
	// between the two (depschange.go). An update that takes the turn
	// meanwhile waits for it.
	switching chan struct{}
	closing   bool // stop began: nothing wakes or hibernates any more

	// deps is the session's dependency set (under state: updates read it
	// before they take the turn), set by run, then changed by dependency
	// changes holding the turn; releaseDeps ends its lease in the
	// dependency cache. depsQueue is the last dependency change's done
	// channel, under state: each waits for the one before it (depschange.go).
	deps        Deps
	releaseDeps context.CancelFunc
	depsQueue   chan struct{}
	// usage is what the session's files add up to (quota.go), under
	// state: set by run, then changed by updates only, each at its commit
	// (line.go). A usage is never changed once set.
	usage *usage
}

func newSession(env *sessionEnv, rec Record, previewURL *url.URL, log *slog.Logger) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		id:         rec.ID,
		dir:        rec.Dir,
		previewURL: previewURL,
		created:    rec.CreatedAt,
		expires:    rec.ExpiresAt,
		env:        env,
		log:        log.With("session", rec.ID),
		ctx:        ctx,
		cancel:     cancel,
		ready:      make(chan struct{}),
		turn:       make(chan struct{}, 1),
		stopped:    make(chan struct{}),
		rec:        rec,
		events:     newEventLog(),
		crashes:    make(chan crash, 1),
	}
	s.cur = newDevRun(ctx)
	s.touch()
	return s
}

// projectDir is the project's directory as the dev server sees it: the
// fixed path inside the sandbox, or the session directory.
func (s *session) projectDir() string {
	if s.env.sandbox != nil {
		return sandbox.ProjectDir
	}
	return s.dir
}

func (s *session) expired(now time.Time) bool { return !now.Before(s.expires) }

func (s *session) record() Record {
	s.state.Lock()
	defer s.state.Unlock()
	return s.rec
}

func (s *session) epoch() int64 {
	s.state.Lock()
	defer s.state.Unlock()
	return s.rec.Epoch
}

func (s *session) setEpoch(e int64) {
	s.state.Lock()
	s.rec.Epoch = e
	s.state.Unlock()
}

// isReady reports whether run has ended, well or not.
func (s *session) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// waitReady waits for run to end and returns its error.
func (s *session) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return s.startErr
	case <-s.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeTurn waits until no other update runs on the session.
func (s *session) takeTurn(ctx context.Context) error {
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-s.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// endTurn ends the turn of an update that servingTurn gave and its use
// of the serving run: the session may hibernate or move again, and the
// next update go.
func (s *session) endTurn() {
	<-s.turn
	s.doneUsing()
}

// doneUsing ends the use of the serving run that servingTurn gave, once
// the turn has ended (an update that committed in the line).
func (s *session) doneUsing() {
	s.state.Lock()
	s.users--
	s.state.Unlock()
}

// filesUsage returns what the session's files add up to now.
func (s *session) filesUsage() *usage {
	s.state.Lock()
	defer s.state.Unlock()
	return s.usage
}

// setUsage records what the session's files add up to after a commit.
func (s *session) setUsage(u *usage) {
	s.state.Lock()
	s.usage = u
	s.state.Unlock()
}

// beginMoveLocked begins a move of the session (a hibernation, a rewrite of
// its record) when none is under way, no update holds the dev server and
// none wakes it: it returns the channel to close when the move ends
// (endMove), or nil. The caller holds s.state.
func (s *session) beginMoveLocked() chan struct{} {
	if s.closing || s.moving != nil || s.users > 0 || (s.cur != nil && !s.cur.isUp()) {
		return nil
	}
	s.moving = make(chan struct{})
	return s.moving
}

// endMove ends the move that beginMoveLocked began: who waits for it goes on.
func (s *session) endMove(moved chan struct{}) {
	s.state.Lock()
	if s.moving == moved {
		s.moving = nil
	}
	s.state.Unlock()
	close(moved)
}

// storeTimeout bounds each call to the store that a session's own
// transitions make (its status, its record checks): a store that does not
// answer holds nothing up for longer.
const storeTimeout = 10 * time.Second

// storeCtx is ctx for one store call: bounded by storeTimeout, and not
// cancelled with ctx (a write begun is finished or timed out, not left
// half said).
func storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}

// setStatus records a new status locally and in the store. The store's
// ErrFenced means another node owns the session now: the caller stops it.
func (s *session) setStatus(ctx context.Context, st Status, errMsg string) error {
	return s.setStatusCode(ctx, st, "", errMsg)
}

// setStatusCode is setStatus with the code of the error's cause.
func (s *session) setStatusCode(ctx context.Context, st Status, code, errMsg string) error {
	s.state.Lock()
	s.rec.Status, s.rec.Error, s.rec.ErrorCode = st, errMsg, code
	rec := s.rec
	s.state.Unlock()
	s.events.add(eventStatus, statusEvent{Status: st, Error: errMsg, Code: code})
	if s.trusted {
		return nil
	}
	sctx, cancel := storeCtx(ctx)
	defer cancel()
	err := s.env.store.Put(sctx, rec)
	if err != nil && !errors.Is(err, ErrFenced) {
		s.log.Warn("vitehost/preview: store record", "err", err)
		return nil // the record catches up at the next janitor round
	}
	return err
}

// run starts the session and closes ready: ctx is the creating request's
// (a takeover's is Background). When ctx ends before the start does, the
// start is abandoned.
func (s *session) run(ctx context.Context, deps Deps, files []pendingFile) error {
	s.setDeps(deps)
	s.setUsage(newUsage(files))
	s.startErr = s.start(ctx, deps, files)
	if s.startErr != nil {
		s.current().setUp(s.startErr) // when the start failed before the dev server's
	}
	close(s.ready)
	return s.startErr
}

// abort ends a session that never runs: ready is closed with err.
func (s *session) abort(err error) {
	s.startErr = err
	s.current().setUp(err)
	close(s.ready)
}

// start writes the project's files (all of them: a new session's template
// and client files, or what a takeover loaded from the store) and its
// package.json, links the dependencies, starts the dev server and warms it
// up.
func (s *session) start(ctx context.Context, deps Deps, files []pendingFile) error {
	began := time.Now()
	stopAbandon := context.AfterFunc(ctx, s.cancel)
	defer stopAbandon()
	abandoned := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.ctx.Err() != nil {
			return fmt.Errorf("%w: %s was removed while it started", ErrNotFound, s.id)
		}
		return err
	}

	if err := s.setStatus(ctx, StatusInstalling, ""); err != nil {
		return err
	}
	if err := removeDir(s.dir); err != nil {
		return err
	}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		return fmt.Errorf("vitehost/preview: session directory: %w", err)
	}
	if s.env.disks != nil {
		d, err := s.env.disks.Mount(ctx, s.dir, s.dir+diskSuffix)
		if err != nil {
			return err
		}
		s.disk = d
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return err
	}
	s.root = root
	if err := writeFiles(root, files, s.owner()); err != nil {
		return fmt.Errorf("vitehost/preview: write files: %w", err)
	}
	if err := root.WriteFile("package.json", deps.PackageJSON(), 0o644); err != nil {
		return err
	}

	hold, release := context.WithCancel(s.ctx)
	s.releaseDeps = release
	// A project's set is most often the template's and a few packages: the
	// store starts from the template's set (internal/deps/storeseed.go).
	like, _ := templateDeps()
	modules, err := s.env.deps.Install(s.ctx, hold, deps, like, nil)
	if err != nil {
		if errors.Is(err, ErrInstall) {
			return fmt.Errorf("%w: %w", ErrDevServer, err)
		}
		return abandoned(requestError(err))
	}
	s.addWarnings(s.env.deps.Warnings(deps))
	if err := s.launchOn(deps, modules); err != nil {
		return err
	}
	installed := time.Now()

	// The create answers once the page is served (startRun loads it).
	r := s.current()
	if err := s.startRun(ctx, r); err != nil {
		return abandoned(requestError(err))
	}
	s.log.Info("vitehost/preview: session active",
		"files", len(files), "install", installed.Sub(began).Round(time.Millisecond),
		"start", time.Since(installed).Round(time.Millisecond), "vite", r.server.Version())
	return nil
}

// launchOn sets how the dev server starts on the dependency set deps,
// installed in modules: the options of vite.Start, the sandbox's
// /node_modules (or the project's node_modules link without the sandbox),
// and the optimized dependencies, seeded from the shared ones of the set
// (those of a set before are stale). start calls it, and a dependency
// change holding the turn while no dev server runs.
func (s *session) launchOn(deps Deps, modules string) error {
	optimized := filepath.Join(s.dir, ".vite-cache", "deps")
	if err := os.RemoveAll(optimized); err != nil {
		return err
	}
	sandboxed := s.env.sandbox != nil
	l := launch.For(launch.Project{Files: s.root, Dir: s.dir, Modules: modules, Deps: deps,
		Sandboxed: sandboxed, AllowConfig: s.env.allowConfig, TempPrefix: tmpPrefix})
	s.nodeModules = modules
	s.opts = &vite.Options{
		Framework:       vite.Vite,
		PublicURL:       s.previewURL,
		HMRPath:         HMRPath,
		NoConfigFile:    l.NoConfigFile,
		Config:          l.Config,
		Plugins:         l.Plugins,
		ClientErrors:    true,
		OnEvent:         s.onViteEvent,
		OnCrash:         s.onCrash,
		MaxLimitCrashes: maxLimitCrashes,
		Stdout:          outputLines{events: s.events, stream: "stdout", dir: s.projectDir(), log: s.log},
		Stderr:          outputLines{events: s.events, stream: "stderr", dir: s.projectDir(), log: s.log},
		Node:            s.env.node,
		Logger:          s.log,
		StartTimeout:    s.env.startTimeout,
	}
	if sandboxed {
		sb := *s.env.sandbox
		sb.Modules, sb.Name = modules, s.id
		s.opts.Sandbox = &sb
		// Every project is at one path in the sandbox: sessions with the
		// same dependencies and config share the optimizer's output, which
		// only the service's own session writes there (see prepare.go).
		shared := l.Optimized
		if s.trusted {
			s.shared = shared
		}
		if _, err := launch.SeedOptimized(shared, optimized, &sb); err != nil {
			s.log.Warn("vitehost/preview: copy the shared optimized dependencies", "err", err)
		}
		return nil
	}
	return relink(filepath.Join(s.dir, "node_modules"), modules)
}

// relink makes link a symbolic link to target, replacing what was there in
// one rename.
func relink(link, target string) error {
	tmp := link + ".vitehost-new"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

// stop ends the session's processes and removes its directory, once; later
// calls wait for the first. A start under way gives up first. why goes to
// the event stream's last event. It returns early with ctx's error; the
// stop then completes in the background.
func (s *session) stop(ctx context.Context, why string) error {
	s.stopOnce.Do(func() {
		s.events.add(eventStatus, statusEvent{Status: statusStopped, Reason: why})
		s.cancel()
		go func() {
			defer close(s.stopped)
			<-s.ready // run ends soon once s.ctx is cancelled
			s.teardown()
		}()
	})
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) teardown() {
	s.state.Lock()
	s.closing = true // no wake or hibernation begins after this
	s.state.Unlock()
	s.bg.Wait() // a wake's start ends with s.ctx
	s.proxy.Store(nil)
	if r := s.current(); r != nil {
		s.stopRun(r)
		r.wg.Wait()
	}
	if s.root != nil {
		s.root.Close()
	}
	if err := removeDir(s.dir); err != nil {
		s.log.Warn("vitehost/preview: remove session directory", "err", err)
	}
}

// current returns the dev server's current run, nil while it hibernates.
func (s *session) current() *devRun {
	s.state.Lock()
	defer s.state.Unlock()
	return s.cur
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

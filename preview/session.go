package preview

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	deps      *depCache
	transport http.RoundTripper // the proxies' requests to the dev servers
	client    *http.Client      // the service's own requests to them (warm-up)
	clustered bool              // one node of several: files go to the store too

	node         string
	startTimeout time.Duration
	hmrWait      time.Duration
	allowConfig  bool
	// sandbox is the template of every session's sandbox; nil runs the dev
	// servers unsandboxed (Options.NoSandbox).
	sandbox *sandbox.Config
	metrics *metrics
}

// session is one preview: a directory, a dev server, the proxy in front of
// it and the log of its events.
//
// A session is started once (run) and stopped once (stop). Until ready is
// closed, only run touches the fields under "set by run"; afterwards they
// are read-only until stop, which waits for ready first. No mutex of a
// session is held across I/O: updates take turns through the turn channel,
// waiting with their own contexts.
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
	root   *os.Root
	server *vite.Server
	warmed chan struct{} // closed when the background warm-up is done

	events *eventLog // what the event stream tells; safe for concurrent use

	// proxy is set once the dev server is up; the router reads it before
	// ready is closed too.
	proxy atomic.Pointer[ssrproxy.Proxy]

	turn chan struct{} // holds a token while an update (or a record sync) runs

	// trusted marks the service's own session (Prepare's), which runs no
	// tenant's code: only its optimized dependencies are shared, and it has
	// no record in the store.
	trusted bool

	stopOnce sync.Once
	stopped  chan struct{}

	// state guards rec: status requests never wait for an update.
	state sync.Mutex
	rec   Record

	// deps is the session's dependency set and usage what its files add up
	// to (quota.go): set by run, then changed by updates only, each holding
	// the turn.
	deps  Deps
	usage *usage
}

func newSession(env *sessionEnv, rec Record, previewURL *url.URL, log *slog.Logger) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
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
	}
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

func (s *session) endTurn() { <-s.turn }

// setStatus records a new status locally and in the store. The store's
// ErrFenced means another node owns the session now: the caller stops it.
func (s *session) setStatus(ctx context.Context, st Status, errMsg string) error {
	s.state.Lock()
	s.rec.Status, s.rec.Error = st, errMsg
	if s.server != nil {
		t := s.server.Targets()
		s.rec.HTTPURL, s.rec.HMRURL = urlString(t.HTTP), urlString(t.HMR)
	}
	rec := s.rec
	s.state.Unlock()
	s.events.add(eventStatus, statusEvent{Status: st, Error: errMsg})
	if s.trusted {
		return nil
	}
	err := s.env.store.Put(context.WithoutCancel(ctx), rec)
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
	s.deps, s.usage = deps, newUsage(files)
	s.startErr = s.start(ctx, deps, files)
	close(s.ready)
	return s.startErr
}

// abort ends a session that never runs: ready is closed with err.
func (s *session) abort(err error) {
	s.startErr = err
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
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	if err := os.Mkdir(s.dir, 0o755); err != nil {
		return fmt.Errorf("vitehost/preview: session directory: %w", err)
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return err
	}
	s.root = root
	if err := writeFiles(root, files); err != nil {
		return fmt.Errorf("vitehost/preview: write files: %w", err)
	}
	if err := root.WriteFile("package.json", deps.packageJSON(), 0o644); err != nil {
		return err
	}

	modules, err := s.env.deps.ensure(s.ctx, s.ctx, deps)
	if err != nil {
		if errors.Is(err, ErrInstall) {
			return fmt.Errorf("%w: %w", ErrDevServer, err)
		}
		return abandoned(err)
	}
	sandboxed := s.env.sandbox != nil
	l := sessionLaunch(s.dir, modules, deps, sandboxed, s.env.allowConfig)
	opts := &vite.Options{
		Framework:    vite.Vite,
		PublicURL:    s.previewURL,
		HMRPath:      HMRPath,
		NoConfigFile: l.noConfig,
		Config:       l.config,
		Plugins:      l.plugins,
		ClientErrors: true,
		OnEvent:      s.onViteEvent,
		Stdout:       outputLines{events: s.events, stream: "stdout", dir: s.projectDir(), log: s.log},
		Stderr:       outputLines{events: s.events, stream: "stderr", dir: s.projectDir(), log: s.log},
		Node:         s.env.node,
		Logger:       s.log,
		StartTimeout: s.env.startTimeout,
	}
	var shared string // where this session's optimized dependencies are shared
	if sandboxed {
		sb := *s.env.sandbox
		sb.Modules, sb.Name = modules, s.id
		opts.Sandbox = &sb
		// Every project is at one path in the sandbox: sessions with the
		// same dependencies and config share the optimizer's output.
		shared = filepath.Join(filepath.Dir(modules), "optimized", optimizedKey(deps, l.config, l.plugins, projectConfigFiles(s.dir)))
		if err := s.seedOptimized(shared, &sb); err != nil {
			s.log.Warn("vitehost/preview: copy the shared optimized dependencies", "err", err)
		}
	} else if err := os.Symlink(modules, filepath.Join(s.dir, "node_modules")); err != nil {
		return err
	}
	installed := time.Now()

	if err := s.setStatus(ctx, StatusStarting, ""); err != nil {
		return err
	}
	server, err := vite.Start(s.ctx, s.dir, opts)
	if err != nil {
		return abandoned(devServerFailure(s.log, err))
	}
	s.server = server
	s.proxy.Store(ssrproxy.New(server, &ssrproxy.Options{Transport: s.env.transport, Logger: s.log}))
	started := time.Now()
	s.env.metrics.observeStart(started.Sub(installed))

	// The create answers once the page is served. Its modules are fetched
	// in the background meanwhile, as a browser would: the browser that
	// opens the page next shares the work, the dependencies get optimized,
	// and an update waits for the warm-up so that its edits bring HMR
	// updates, and compile errors, even when no browser has loaded the
	// modules.
	entries, err := loadPage(s.ctx, s.env.client, server.Targets().HTTP)
	if err != nil {
		s.log.Warn("vitehost/preview: the page is not served", "err", err)
	}
	s.warmed = make(chan struct{})
	go func() {
		defer close(s.warmed)
		start := time.Now()
		warmModules(s.ctx, s.env.client, server.Targets().HTTP, entries)
		s.log.Debug("vitehost/preview: modules warmed", "took", time.Since(start).Round(time.Millisecond))
		if shared != "" && s.trusted && s.ctx.Err() == nil {
			if err := shareOptimized(filepath.Join(s.dir, ".vite-cache", "deps"), shared); err != nil {
				s.log.Warn("vitehost/preview: share the optimized dependencies", "err", err)
			}
		}
	}()
	if s.ctx.Err() != nil {
		return abandoned(s.ctx.Err())
	}
	if err := s.setStatus(ctx, StatusActive, ""); err != nil {
		return err
	}
	go s.watch(server)
	s.log.Info("vitehost/preview: session active",
		"files", len(files), "install", installed.Sub(began).Round(time.Millisecond),
		"start", started.Sub(installed).Round(time.Millisecond), "page", time.Since(started).Round(time.Millisecond),
		"vite", server.Version())
	return nil
}

// seedOptimized copies the shared optimized dependencies into the
// session's Vite cache, owned by the sandbox's user, who must rewrite them
// when the project's dependencies turn out to differ.
func (s *session) seedOptimized(shared string, sb *sandbox.Config) error {
	dst := filepath.Join(s.dir, ".vite-cache", "deps")
	ok, err := seedOptimized(shared, dst)
	if !ok || err != nil || os.Geteuid() != 0 {
		return err
	}
	uid, gid := cmp.Or(sb.UID, sandbox.DefaultUID), cmp.Or(sb.GID, sandbox.DefaultGID)
	return filepath.WalkDir(filepath.Dir(dst), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// watch marks the session failed when its dev server stops for good (the
// vite package restarts it after a crash; this is when it gave up).
func (s *session) watch(server *vite.Server) {
	limits := time.NewTicker(limitPoll)
	defer limits.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-limits.C:
			err := server.LimitErr()
			if err == nil {
				continue
			}
			// Its memory or process limit: the session fails alone, and
			// frees what it held.
			msg := "the session reached a limit of its sandbox: " + strings.TrimPrefix(err.Error(), "vitehost/sandbox: ")
			s.log.Error("vitehost/preview: "+msg, "err", err)
			s.setStatus(context.Background(), StatusError, msg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			server.Stop(ctx)
			cancel()
			return
		case <-server.Done():
			s.serverGone(server)
			return
		}
	}
}

// limitPoll is how often a session checks its sandbox's limits.
const limitPoll = 2 * time.Second

// serverGone records that the dev server stopped for good.
func (s *session) serverGone(server *vite.Server) {
	if s.ctx.Err() != nil {
		return // the session stopped it
	}
	// The record's message reaches clients: the reason without the host's
	// paths; the log gets the whole error.
	msg := "dev server stopped"
	err := server.Err()
	if err != nil {
		msg += ": " + devServerReason(err)
	}
	s.log.Error("vitehost/preview: dev server stopped", "err", err)
	// A fenced write here is found by the janitor's record check.
	s.setStatus(context.Background(), StatusError, msg)
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
	if s.warmed != nil {
		<-s.warmed // the warm-up ends with s.ctx
	}
	if p := s.proxy.Load(); p != nil {
		p.Close()
	}
	if s.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.server.Stop(ctx); err != nil {
			s.log.Warn("vitehost/preview: stop dev server", "err", err)
		}
		cancel()
	}
	if s.root != nil {
		s.root.Close()
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.log.Warn("vitehost/preview: remove session directory", "err", err)
	}
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

package vite

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/latest"
)

// state is what one ready run of the dev server publishes.
type state struct {
	targets hotfile.Targets
	token   string
	version string
	pid     int
	child   *child // the run's process, which Hold talks to
}

// Server is a supervised dev server started by Start or Spare.Start, or a
// framework's built server started by StartBuilt: it publishes the runs
// that its launcher starts, restarts them after a crash, and stops them.
// Its methods may be called from any number of goroutines.
type Server struct {
	*launcher

	ctx    context.Context // the lifetime: Start's context, cancelled by Stop
	cancel context.CancelFunc

	cur  atomic.Pointer[state]
	subs latest.Subscribers[hotfile.Targets]

	stopped atomic.Bool // Stop was called
	done    chan struct{}
	err     error // set before done is closed
}

// Start starts the dev server of the project in dir and returns when it is
// ready to serve. ctx bounds the start, and it stays the server's lifetime:
// cancelling it later stops the server as Stop does. A failed start returns
// a *StartError and leaves no process running.
func Start(ctx context.Context, dir string, opts *Options) (*Server, error) {
	l, err := newLauncher(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := l.makeSocketDir(); err != nil {
		return nil, l.startError(err)
	}
	return run(ctx, l, l.launch)
}

// run starts a Server of l whose first run first starts, and returns it
// once that run is ready. The socket directory of l goes with the Server,
// or with a failed start.
func run(ctx context.Context, l *launcher, first func(context.Context) (*child, *state, error)) (*Server, error) {
	s := &Server{launcher: l, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(ctx)
	c, st, err := first(s.ctx)
	if err == nil {
		if err = s.publish(st); err != nil {
			c.stop(context.WithoutCancel(ctx), l.opts.StopTimeout)
			s.unpublish()
		}
	}
	if err != nil {
		s.cancel()
		l.removeSocketDir()
		return nil, l.startError(err)
	}
	l.log.Info("vitehost/vite: dev server ready", "url", st.targets.HTTP.String(), "hmr", st.targets.HMR.String(), "vite", st.version)
	go s.supervise(c)
	return s, nil
}

// Targets returns where the dev server listens now: HTTP is its URL, HMR the
// URL of its HMR listener. Both are nil while it is down or restarting. It
// costs one atomic load.
func (s *Server) Targets() hotfile.Targets {
	if st := s.cur.Load(); st != nil {
		return st.targets
	}
	return hotfile.Targets{}
}

// Token returns the HMR WebSocket token of the current run (Vite's
// config.webSocketToken): a client of the HMR socket that sends an Origin
// header must pass it as the token query parameter. It is "" while the dev
// server is down.
func (s *Server) Token() string {
	if st := s.cur.Load(); st != nil {
		return st.token
	}
	return ""
}

// LimitErr says which limits the running dev server has hit: nil, or an
// error wrapping sandbox.ErrMemoryLimit or sandbox.ErrPidsLimit (limits of
// its sandbox, Options.Sandbox), or ErrWatcherLimit (the kernel refused it
// a file watcher, whether sandboxed or not). A dev server at its process
// limit may keep serving while every new process or thread it tries
// fails, and one without a watcher serves while edits on disk reach no
// page; the caller decides whether that is a failure. The sandbox's limits
// are nil without a sandbox or cgroups, and while the dev server is down.
func (s *Server) LimitErr() error {
	if st := s.cur.Load(); st != nil && st.child != nil {
		if err := st.child.limitErr(); err != nil {
			return err
		}
	}
	if w := s.watcher.Load(); w != nil {
		what := "the inotify instances of its user are used up"
		if w.Code == "ENOSPC" {
			what = "the inotify watches of its user are used up"
		}
		return fmt.Errorf("%w (%s: %s)", ErrWatcherLimit, w.Code, what)
	}
	return nil
}

// Version returns the Vite version of the dev server (for Nuxt and Astro,
// the Vite that the framework uses).
func (s *Server) Version() string { return s.reportedVersion() }

// Framework returns the framework of the dev server.
func (s *Server) Framework() Framework { return s.fw }

// Dir returns the absolute project directory.
func (s *Server) Dir() string { return s.dir }

// PID returns the process id of the current run's main process, which is
// also its process group id (with a sandbox, bwrap's); 0 while the dev
// server is down.
func (s *Server) PID() int {
	if st := s.cur.Load(); st != nil {
		return st.pid
	}
	return 0
}

// Subscribe returns a channel that receives the targets each time they
// change: when the dev server goes down (zero Targets), when it is ready
// again after a restart, and when it restarted itself with a new Token. The
// channel holds only the newest value; a subscriber that reads late gets the
// current one and never blocks the Server. The channel is closed by cancel
// and when the Server is done.
func (s *Server) Subscribe() (<-chan hotfile.Targets, func()) { return s.subs.Subscribe() }

// Stop stops the dev server: it closes the child's stdin, sends SIGTERM to
// its process group, SIGKILL after StopTimeout, removes the hot files (and
// the sockets), and returns when every process of the group and of the
// sandbox is gone and the sandbox's cgroup removed, or with ctx's error when
// ctx ends first (the stop then completes in the background). It is safe to
// call more than once and from several goroutines.
func (s *Server) Stop(ctx context.Context) error {
	s.stopped.Store(true)
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done returns a channel that is closed when the Server has stopped for
// good: after Stop, after Start's context ended, after a crash with
// NoRestart, or after more than MaxLimitCrashes crashes at a sandbox limit.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err returns why the Server stopped: nil after Stop, the context's error
// when Start's context ended, an error wrapping ErrExited after a crash with
// NoRestart or at a sandbox limit (then it wraps the limit's error too,
// such as sandbox.ErrMemoryLimit). It returns nil while the Server runs.
func (s *Server) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

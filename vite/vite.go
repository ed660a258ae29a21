// Package vite launches and supervises a front-end dev server (plain Vite
// with the project's own config and plugins, Nuxt 4, or Astro) as a child
// process, and publishes where it listens.
//
// [Start] picks a free HTTP port and a separate free HMR port (or takes the
// caller's), binds both on loopback unless told otherwise, and configures the
// dev server so that the browser's HMR client connects to the public address
// of the proxy in front of it ([Options.PublicURL]), never to the HMR port
// directly. It returns when the dev server answers; [Server.Targets] then
// holds the HTTP and HMR URLs, and the hot files, when asked for, hold them
// too (see package hotfile).
//
// Plain Vite runs through a small Node script embedded in the Go binary: it
// imports the project's own vite, merges the launch settings and
// [Options.Config] over the project's config file, and reports the bound
// ports, the Vite version and the HMR token in one JSON line. Nuxt runs as
// nuxi dev from the project's node_modules with a generated layer that does
// the same for Nuxt's Vite servers. Astro runs through its own dev() API,
// called by a second embedded script that hands Astro's Vite server the same
// settings. Frameworks that are a Vite plugin in the project's config
// (SvelteKit, React Router's framework mode) are plain Vite.
//
// With [Options.Sandbox], plain Vite runs in a bubblewrap sandbox (see
// package sandbox) that sees the project and its dependencies and nothing
// else of the host: the way to run a project whose config and plugins are
// not trusted. The dev server then listens on two Unix sockets, bound by
// this process and handed in, instead of ports: Vite in middleware mode on
// the runner's HTTP server, and its HMR WebSocket on its own server
// ([Options.SocketDir] does the same without a sandbox). [Server.Targets]
// are then URLs of the scheme "unix" whose Path is the socket, and nothing
// the dev server prints can point them anywhere else. The code in the
// sandbox may replace any file of the project: this process reads the
// project's package.json (at each Start) without following a
// symbolic link, without blocking on a FIFO, regular files only and at most
// a few megabytes, and refuses anything else with ErrInvalidPackageJSON. [StartSpare] starts
// such a runner before its project is known, with Vite imported and warmed
// up by one page load of a project of the caller's; Start with
// [Options.Spare] runs the real project in it, in a fraction of the time.
//
// [Server.Hold] and [Hold.Commit] have plain Vite handle a set of file
// writes as one change: the runner holds Vite's file watcher for the files
// while the caller writes them, has Vite handle all of them once they are
// on disk, and reports what Vite did (the hot updates, a full reload, the compile errors
// of the changed modules and of the modules they newly import) as soon as
// Vite has done it. [Options.OnEvent] receives what happens outside
// batches, and with [Options.ClientErrors] the runtime errors that the
// pages report, their stacks mapped to the project's files.
//
// The child runs in its own process group. When it dies, the hot files are
// removed and it is restarted with exponential backoff ([Options.OnCrash]
// hears of each crash; one killed at its sandbox's memory limit is
// restarted [Options.MaxLimitCrashes] times in a row, then left down);
// [Server.Subscribe] reports each change. [Server.Stop] ends the whole group, and the sandbox.
//
// The same package serves the front end in production. [ReadManifest] reads
// Vite's build manifest (.vite/manifest.json, from disk or an embed.FS) and
// [Manifest.Tags] gives an entry's tags as Vite would write them: its module
// script, a modulepreload for each chunk it imports statically, and the
// stylesheets of all of them, with an optional CSP nonce and integrity.
// [Assets] switches between those and the dev server's tags (Vite's client,
// the React Refresh preamble, the entry) by whether the dev server runs: one
// value for a Go template from the first go run to production. [SPA] serves a
// built single-page app. [StartBuilt] runs the built server of Nuxt,
// SvelteKit (adapter-node), Astro (node adapter) or React Router under the
// same supervision as a dev server, on loopback or a Unix socket, for
// ssrproxy to put behind the Go app.
package vite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/sandbox"
)

// Framework names the kind of dev server.
type Framework string

// The frameworks Start knows.
const (
	Auto  Framework = ""      // detect from package.json
	Vite  Framework = "vite"  // plain Vite, any plugins
	Nuxt  Framework = "nuxt"  // Nuxt 4 through nuxi dev
	Astro Framework = "astro" // Astro 5 to 7 through Astro's dev() API
)

// Defaults for the zero values of Options.
const (
	DefaultHost             = "127.0.0.1"
	DefaultViteStartTimeout = 60 * time.Second
	DefaultNuxtStartTimeout = 120 * time.Second
	DefaultStopTimeout      = 5 * time.Second
	DefaultMaxLimitCrashes  = 3
)

// Errors that callers may check with errors.Is. A failed Start returns a
// *StartError that wraps one of them (or the context's error) and quotes the
// child's last output lines, where the details are: ErrStartFailed covers
// whatever the dev server itself reported (a broken config, a plugin that
// throws) and an exit before ready, which also wraps ErrExited.
var (
	// ErrNoPackageJSON: the project directory has no package.json.
	ErrNoPackageJSON = errors.New("vitehost/vite: no package.json")
	// ErrInvalidPackageJSON: package.json is not a JSON object of the usual shape.
	ErrInvalidPackageJSON = errors.New("vitehost/vite: invalid package.json")
	// ErrNotInstalled: node_modules lacks vite (plain Vite), nuxi (Nuxt) or
	// astro (Astro).
	ErrNotInstalled = errors.New("vitehost/vite: dependencies not installed (no node_modules with vite, nuxt or astro)")
	// ErrNoNode: Options.Node (or node on PATH) cannot be run.
	ErrNoNode = errors.New("vitehost/vite: node not found")
	// ErrInvalidOptions: Options that cannot work, named in the message.
	ErrInvalidOptions = errors.New("vitehost/vite: invalid options")
	// ErrPortInUse: a port set in Options is taken, or the race for free
	// ports was lost maxPortAttempts times.
	ErrPortInUse = errors.New("vitehost/vite: port in use")
	// ErrStartTimeout: the dev server was not ready within StartTimeout.
	ErrStartTimeout = errors.New("vitehost/vite: dev server not ready in time")
	// ErrExited: the dev server's process exited when it should not have.
	ErrExited = errors.New("vitehost/vite: dev server exited")
	// ErrStartFailed: the dev server reported a failure or exited before it
	// was ready; its output says why.
	ErrStartFailed = errors.New("vitehost/vite: dev server failed to start")
	// ErrNotRunning: the dev server is down or restarting (or stopped
	// during the call), so a Hold holds nothing or a Commit got no outcome.
	ErrNotRunning = errors.New("vitehost/vite: dev server not running")
	// ErrWatcherLimit: the kernel refused the dev server a file watcher
	// (inotify instances or watches of its user used up); returned by
	// LimitErr.
	ErrWatcherLimit = errors.New("vitehost/vite: watcher limit reached: no file watcher")
)

// Plugin is a Vite plugin that the runner imports from the project by module
// name and adds to the config (plain Vite only).
type Plugin struct {
	// Module is the module to import, resolved from the project directory,
	// e.g. "@vitejs/plugin-react", or a path relative to it.
	Module string
	// Export names the export that makes the plugin; "" means the default
	// export. A function is called with Options; anything else is used as
	// the plugin itself.
	Export string
	// Options is the JSON-encodable argument of the plugin function; nil
	// means the function is called without one.
	Options any
}

// Options configures Start. A nil *Options means the defaults; Start never
// modifies the Options it is given.
type Options struct {
	// Framework says which dev server to run; Auto means Detect.
	Framework Framework

	// Host is the address both listeners bind; "" means 127.0.0.1.
	Host string
	// Port is the dev server's HTTP port and HMRPort the port of its HMR
	// WebSocket listener; 0 means a free port picked at each start, with new
	// picks when another process takes the port first.
	Port, HMRPort int

	// PublicURL is where the browser reaches the app: the public URL of the
	// proxy in front of the dev server, such as http://localhost:8000 or
	// https://preview-abc.example.com. The HMR client connects to its host
	// and port (wss for https), and its host name is allowed by the dev
	// server's host check. A URL without a host name, such as
	// http://:8000, keeps the page's host name and sets only the port (a Go
	// app that may be reached as localhost, 127.0.0.1 or a LAN name). Nil
	// means the browser talks to the dev server directly, and the HMR client
	// connects to the HMR port.
	PublicURL *url.URL
	// HMRPath is the path of the HMR WebSocket as the browser sees it, such
	// as "/hmr"; "" means the framework's default (the base, "/" or "/_nuxt/").
	HMRPath string

	// HotFile is where the HTTP URL is written when the dev server is ready
	// (and the HMR URL beside it, see hotfile.HMRPath); both are removed when
	// it stops or crashes. "" means no hot files.
	HotFile string

	// ConfigFile is the project's Vite config file (plain Vite); "" means
	// Vite's own lookup of vite.config.*.
	ConfigFile string
	// NoConfigFile makes Vite load no config file at all (plain Vite): the
	// caller builds the whole config through Config and Plugins.
	NoConfigFile bool
	// Config is inline Vite config merged over the project's config (plain
	// Vite), such as root, cacheDir, resolve.alias or server.fs.allow. It
	// must be JSON-encodable. The launch settings (host, ports, HMR) win.
	Config map[string]any
	// Plugins are imported from the project and added to the config (plain
	// Vite).
	Plugins []Plugin

	// ClientErrors adds a small module to every page the dev server serves
	// (plain Vite) that reports the page's runtime errors over the HMR
	// socket: uncaught errors, unhandled rejections, modules that fail to
	// load and console.error calls. They reach OnEvent as EventClientError,
	// their stacks mapped to the project's files. Anyone who can open the
	// HMR socket can send such reports, with any text: each socket may
	// send 30 at once and 3 a second after that, the rest are dropped.
	ClientErrors bool
	// OnEvent receives what the dev server reports as it happens (plain
	// Vite): the HMR messages and compile errors that no batch caused, and
	// the pages' runtime errors (ClientErrors). It is called from one
	// goroutine, in order, and must return quickly; nil drops the events.
	OnEvent func(Event)

	// Env is added to the child's environment (with Sandbox, to the
	// sandbox's clean environment).
	Env []string
	// Node is the node binary; "" means "node" on PATH.
	Node string
	// Stdout and Stderr receive the child's output, line by line; nil means
	// the lines go to Logger at debug level.
	Stdout, Stderr io.Writer
	// Logger receives the server's own events; nil means slog.Default().
	Logger *slog.Logger

	// StartTimeout bounds each start, from the process start to ready; 0
	// means DefaultViteStartTimeout or DefaultNuxtStartTimeout.
	StartTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL; 0 means
	// DefaultStopTimeout.
	StopTimeout time.Duration
	// NoRestart leaves a crashed dev server down: Done is closed and Err
	// says why.
	NoRestart bool
	// MaxLimitCrashes is how many crashes in a row at a limit of its
	// sandbox (the kernel killed it at Sandbox.Limits.Memory) the dev
	// server is restarted after: the next one leaves it down, Done is
	// closed and Err wraps sandbox.ErrMemoryLimit. A run that stayed up
	// for a while starts the count over. 0 means DefaultMaxLimitCrashes, a
	// negative value restarts it forever. A project that needs more memory
	// than its limit needs it at every start.
	MaxLimitCrashes int
	// OnCrash is called when the dev server crashes, with why (an error
	// that wraps ErrExited and, when a limit of its sandbox killed it,
	// sandbox.ErrMemoryLimit or sandbox.ErrPidsLimit) and whether it is
	// restarted; then Subscribe reports it back up, or Done is closed. It
	// is called from the Server's own goroutine and must return quickly;
	// nil means no call.
	OnCrash func(err error, restarting bool)

	// Sandbox runs the dev server (plain Vite only) in a bubblewrap sandbox
	// that nothing of the host but the project and its dependencies is in
	// (see package sandbox): for code the server owner does not trust, such
	// as a tenant's project with its own vite.config. Its Project must be
	// "" or dir: the project is mounted at sandbox.ProjectDir, its Modules,
	// when set, at sandbox.ModulesDir. The dev server listens on Unix
	// sockets in SocketDir, not on ports. Paths in Config and ConfigFile
	// are then paths inside the sandbox (a ConfigFile in dir is
	// translated). The runner keeps forcing the root, the sockets, the HMR
	// client's address and the allowed hosts over the project's config.
	// dir and Modules must be reachable by the sandbox's host user (see
	// sandbox.Config.UID), which gets dir's own directory; files the dev
	// server must rewrite (a copied dependency cache) must be that user's.
	Sandbox *sandbox.Config
	// SocketDir is the directory where the dev server's Unix sockets are
	// made (plain Vite only): http.sock for HTTP (Vite in middleware mode
	// on the runner's own server) and hmr.sock for the HMR WebSocket. The
	// sockets are bound by this process and handed to the dev server, so
	// that the dev server can neither move nor replace them. "" means TCP
	// ports, or with Sandbox a new temporary directory that Stop removes.
	// Targets, and HotFile, then hold URLs of the scheme "unix" whose Path
	// is the socket.
	SocketDir string
	// Spare, with Sandbox, is a runner that StartSpare started ahead on the
	// project directory dir (the same directory, whatever its name now):
	// the dev server starts in it, faster. Its sandbox is the one it was
	// started with; Sandbox serves restarts after a crash. A spare whose
	// runner is gone is not used. Nil means a runner of the Server's own.
	Spare *Spare
}

// StartError is the error of a start that failed: it names the cause and
// carries the child's last output lines.
type StartError struct {
	Dir       string
	Framework Framework
	Err       error    // the cause, wrapping one of the package's errors or a context error
	Output    []string // the child's last output lines, oldest first
}

// Error returns the cause followed by the quoted output lines.
func (e *StartError) Error() string {
	var b strings.Builder
	what := string(e.Framework)
	if what == "" {
		what = "dev server"
	}
	fmt.Fprintf(&b, "vitehost/vite: start %s in %s: %v", what, e.Dir, e.Err)
	if len(e.Output) > 0 {
		b.WriteString("\nlast output lines:")
		for _, l := range e.Output {
			b.WriteString("\n  | ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *StartError) Unwrap() error { return e.Err }

// state is what one ready run of the dev server publishes.
type state struct {
	targets hotfile.Targets
	token   string
	version string
	pid     int
	child   *child // the run's process, which Hold talks to
}

// Server is a supervised dev server started by Start, or a framework's
// built server started by StartBuilt. Its methods may be called from any
// number of goroutines.
type Server struct {
	dir  string
	fw   Framework
	opts Options // a copy, with defaults applied
	log  *slog.Logger
	out  *output

	ctx    context.Context // the lifetime: Start's context, cancelled by Stop
	cancel context.CancelFunc

	cur     atomic.Pointer[state]
	version atomic.Pointer[string]
	// watcher is why the dev server has no file watcher, once the runner
	// said so (EventWatcherError); nil while it has one.
	watcher atomic.Pointer[WatcherError]

	mu   sync.Mutex
	subs map[chan hotfile.Targets]struct{}

	sockDir    string       // where the Unix sockets are; "" for TCP ports
	ownSockDir bool         // sockDir was made by Start and goes with the Server
	spare      *Spare       // the runner the first launch takes over, if any
	built      *builtServer // how a server build runs (StartBuilt); nil for a dev server

	stopped atomic.Bool // Stop was called
	done    chan struct{}
	err     error // set before done is closed
}

// Start starts the dev server of the project in dir and returns when it is
// ready to serve. ctx bounds the start, and it stays the server's lifetime:
// cancelling it later stops the server as Stop does. A failed start returns
// a *StartError and leaves no process running.
func Start(ctx context.Context, dir string, opts *Options) (*Server, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	o, fw, err := withDefaults(abs, opts)
	if err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	s := &Server{
		dir:  abs,
		fw:   fw,
		opts: o,
		log:  o.Logger.With("framework", string(fw), "dir", abs),
		subs: map[chan hotfile.Targets]struct{}{},
		done: make(chan struct{}),
	}
	s.out = newOutput(o.Stdout, o.Stderr, s.log)
	if err := s.preflight(); err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	if sp := o.Spare; sp != nil && sp.take(s) {
		s.spare = sp
	} else if err := s.makeSocketDir(); err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	c, st, err := s.launch(s.ctx)
	if err == nil {
		if err = s.publish(st); err != nil {
			c.stop(context.WithoutCancel(ctx), s.opts.StopTimeout)
			s.unpublish()
		}
	}
	if err != nil {
		s.cancel()
		s.removeSocketDir()
		return nil, &StartError{Dir: abs, Framework: fw, Err: err, Output: s.out.tail()}
	}
	s.log.Info("vitehost/vite: dev server ready", "url", st.targets.HTTP.String(), "hmr", st.targets.HMR.String(), "vite", st.version)
	go s.supervise(c)
	return s, nil
}

// withDefaults copies opts and fills in the zero values.
func withDefaults(dir string, opts *Options) (Options, Framework, error) {
	var o Options
	if opts != nil {
		o = *opts
		o.Env = append([]string(nil), opts.Env...)
		o.Plugins = append([]Plugin(nil), opts.Plugins...)
		if opts.PublicURL != nil {
			u := *opts.PublicURL
			o.PublicURL = &u
		}
		if opts.Sandbox != nil {
			sb := *opts.Sandbox
			sb.ReadOnly = append([]sandbox.Mount(nil), sb.ReadOnly...)
			sb.Files = append([]sandbox.File(nil), sb.Files...)
			sb.Env = append([]string(nil), sb.Env...)
			o.Sandbox = &sb
		}
	}
	fw := o.Framework
	if fw == Auto {
		var err error
		if fw, err = Detect(dir); err != nil {
			return o, fw, err
		}
	}
	if fw != Vite && fw != Nuxt && fw != Astro {
		return o, fw, fmt.Errorf("%w: unknown framework %q", ErrInvalidOptions, fw)
	}
	if fw != Vite && (o.ConfigFile != "" || o.NoConfigFile || o.Config != nil || len(o.Plugins) > 0 || o.ClientErrors) {
		return o, fw, fmt.Errorf("%w: ConfigFile, NoConfigFile, Config, Plugins and ClientErrors apply to plain Vite only", ErrInvalidOptions)
	}
	if err := checkSockets(dir, fw, &o); err != nil {
		return o, fw, err
	}
	if o.Spare != nil {
		if err := checkSpare(dir, &o); err != nil {
			return o, fw, err
		}
	}
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.Port < 0 || o.Port > 65535 || o.HMRPort < 0 || o.HMRPort > 65535 {
		return o, fw, fmt.Errorf("%w: port out of range", ErrInvalidOptions)
	}
	if o.Port != 0 && o.Port == o.HMRPort {
		return o, fw, fmt.Errorf("%w: Port and HMRPort are both %d", ErrInvalidOptions, o.Port)
	}
	if err := checkPublic(o.PublicURL, o.HMRPath); err != nil {
		return o, fw, err
	}
	if o.Node == "" {
		o.Node = "node"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultViteStartTimeout
		if fw == Nuxt {
			o.StartTimeout = DefaultNuxtStartTimeout
		}
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.MaxLimitCrashes == 0 {
		o.MaxLimitCrashes = DefaultMaxLimitCrashes
	}
	return o, fw, nil
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
func (s *Server) Version() string {
	if v := s.version.Load(); v != nil {
		return *v
	}
	return ""
}

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
func (s *Server) Subscribe() (<-chan hotfile.Targets, func()) {
	ch := make(chan hotfile.Targets, 1)
	s.mu.Lock()
	if s.subs == nil {
		close(ch)
		s.mu.Unlock()
		return ch, func() {}
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// notify sends t to every subscriber, replacing a value not yet read.
func (s *Server) notify(t hotfile.Targets) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case <-ch:
		default:
		}
		ch <- t
	}
}

// closeSubs closes every subscription; later Subscribe calls get a closed
// channel.
func (s *Server) closeSubs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		close(ch)
	}
	s.subs = nil
}

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

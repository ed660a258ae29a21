package preview

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vitehost/vitehost/preview/internal/deps"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/ssrproxy"
)

// Defaults of Options.
const (
	DefaultTTL       = 24 * time.Hour
	DefaultAPIPrefix = "/kontext/preview"
	DefaultHMRWait   = 5 * time.Second
	// DefaultIdleTimeout is how long a session goes unused before its dev
	// server hibernates.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultSpares is how many spare runners a Manager keeps at least.
	DefaultSpares = 1
	// DefaultSpareMemory is the least memory budget of a Manager's spare
	// runners, five of them (about 200 MiB each): the budget by default is
	// an eighth of the machine's memory, or this when that is less or not
	// known.
	DefaultSpareMemory = 1 << 30
	// DefaultSpareIdle is how long a spare runner beyond the demand waits
	// unused before it stops, and how far back the demand looks.
	DefaultSpareIdle = time.Minute
	// DefaultLeaseTTL is how long a node of several counts as alive after
	// it last renewed its lease in the Store; it renews every third of it.
	DefaultLeaseTTL = 6 * time.Second
	// DefaultForwardTimeout bounds the wait for a node's answer to a
	// forwarded request (its response headers, or its WebSocket handshake).
	DefaultForwardTimeout = 10 * time.Second
	// HMRPath is where a session's HMR socket lives on its preview host.
	HMRPath = "/hmr"
	// DefaultSessionMemory is the memory limit of a session's sandbox
	// when Options.Sandbox.Limits.Memory is 0. Peaks of the sandbox's
	// cgroup measured on the projects of testdata/realprojects (page load
	// and one HMR edit): Lovable-style 345-405 MiB, TanStack Router 346,
	// Tailwind 4 302, pnpm-made React 285-291, bolt.new 214, open-lovable
	// 153, Svelte 118, Vue 87 MiB; a public wallet app with web3
	// dependencies needed about 1.3 GiB (issue 20). 2 GiB runs all of them
	// with room for a dependency optimization; it is a bound, not a
	// reservation.
	DefaultSessionMemory = 2 << 30
)

// Options configures a Manager. Only PublicURL is required.
type Options struct {
	// PublicURL is the public base URL of the service: https://jsbundler.example.com
	// gives previews at https://preview-{id}.jsbundler.example.com.
	PublicURL string

	// BaseDir holds the session directories (preview-{id}) and, unless
	// CacheDir says otherwise, the dependency cache. Empty means
	// vitehost-preview under the OS temp directory. One Manager at a time
	// may use a BaseDir; it removes what an earlier one left behind.
	BaseDir string
	// CacheDir holds one install per dependency set and the package store
	// they link (store, with pnpm and its metadata cache): it must be on
	// one file system. Empty means BaseDir/deps. Several Managers, on one
	// machine, may share it.
	CacheDir string

	// TTL is how long a session lives after its creation. Zero means DefaultTTL.
	TTL time.Duration
	// IdleTimeout is how long a session may go without a request to its
	// preview, a WebSocket message through its proxy in either direction,
	// or an update (status requests do not count) before it hibernates: its
	// dev server stops, its process is gone, its files and optimized
	// dependencies stay, and its status is StatusHibernated. The next
	// request to its preview or update wakes it: a page or a module waits
	// for the dev server, and an open tab's Vite client, whose HMR socket
	// closed, reloads the page once the dev server is back. Vite's client
	// sends a message every 30 s while a tab has the page open
	// (server.hmr.timeout), so a session sleeps once no tab holds it open.
	// Zero means DefaultIdleTimeout; a negative value never hibernates.
	IdleTimeout time.Duration
	// Spares is how many sandboxed runners the Manager keeps started ahead
	// at least, more when sessions ask for them (SpareMemory), for
	// sessions of the template's dependency set (Prepare's), each a
	// Node process with Vite loaded and warmed up by one page load of the
	// template (about 190 MiB measured here; a session that starts in one
	// keeps about 60 MiB of that until V8 gives it back, more than one in
	// a fresh runner holds): a session that starts or wakes in one skips
	// Node's start and Vite's import, and serves its first page load as
	// fast as a reload, several times faster than a fresh process does. A
	// spare starts once a session of that set has shared its optimized
	// dependencies, and again after each one a session took. Zero means
	// DefaultSpares; a negative value none, whatever the demand. Without
	// the sandbox there are none.
	Spares int
	// SpareMemory is the memory budget of the spare runners: beyond
	// Spares, the Manager keeps as many more as sessions of the template's
	// set started or woke within the time making one takes (a burst of
	// ten at once asks for ten, one a second for two), at the peak of the
	// last SpareIdle, while they fit in SpareMemory at 200 MiB each (an
	// idle spare's sandbox held 125-180 MiB resident here); Spares that do
	// not fit are not kept either. Spares are made in the background while
	// no session's dev server starts, one at a time, or on all cores but
	// one when more than two are missing (after a burst); a session that
	// finds none starts a runner of its own. Zero or negative means an eighth of
	// the machine's memory (its cgroup's limit when lower, on Linux), at
	// least DefaultSpareMemory: 3 GiB, 15 spares, on a machine of 24 GiB.
	SpareMemory int64
	// SpareIdle is how far back the demand for spare runners looks, and
	// how long a spare beyond it waits unused before it stops. Zero or
	// negative means DefaultSpareIdle.
	SpareIdle time.Duration
	// Limits bound requests and sessions; zero fields take defaults.
	Limits Limits

	// Store keeps session records. Nil means a MemoryStore. Nodes that
	// serve one domain together share one Store (preview/redisstore).
	Store Store
	// NodeID names this node in the records of its sessions (Record.Owner)
	// and its lease; nodes that share a Store need distinct ids. Empty means
	// a random id. A node restarted with its old NodeID starts the sessions
	// it ran again when they are next requested.
	NodeID string
	// NodeAddr is the host:port at which the other nodes reach this node's
	// handler (Router(API()) over plain HTTP); it goes into the records of
	// the sessions this node runs. Setting it makes the node one of several
	// that share Store: it keeps a lease in the store, saves its sessions'
	// files there, forwards requests for sessions of other nodes to their
	// node, and takes over the sessions of a node whose lease ran out. Empty
	// means a single node: no files in the store, no forwarding, no
	// takeover.
	NodeAddr string
	// LeaseTTL is how long this node counts as alive after it last renewed
	// its lease (NodeAddr set); it renews every LeaseTTL/3. A node that
	// hangs loses its sessions to the others LeaseTTL after its last
	// renewal. Zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// ForwardTimeout bounds the wait for another node's answer to a
	// forwarded request. When it passes, the request waits for the node's
	// lease to run out (LeaseTTL at most) and then takes the session over;
	// a node whose lease stays alive gets the request answered 503. Zero
	// means DefaultForwardTimeout.
	ForwardTimeout time.Duration

	// InstallCommand installs a dependency set in the current directory,
	// which holds its package.json and the package-lock.json ResolveCommand
	// wrote. Nil, with ResolveCommand nil too, means the node's package
	// store: pnpm (a pinned release, installed into CacheDir from npm once)
	// resolves and installs every set with --ignore-scripts, each package
	// version downloaded once into CacheDir/store and hard-linked into the
	// sets. Nil alone means npm install --ignore-scripts --no-audit
	// --no-fund --loglevel=error. A custom command must not run lifecycle
	// scripts (bun install --ignore-scripts).
	InstallCommand []string
	// InstallTimeout bounds one install, its resolution included. Zero
	// means 10 minutes.
	InstallTimeout time.Duration
	// StartTimeout bounds the start of one dev server. Zero means the vite
	// package's default.
	StartTimeout time.Duration
	// HMRWait bounds how long an update waits for the dev server's account
	// of how Vite handled its files (the answer's hmr); the account comes as
	// soon as Vite is done, in milliseconds for a few files. When the wait
	// runs out, the update answers without it. Zero means DefaultHMRWait.
	HMRWait time.Duration
	// Node is the node binary. Empty means node on PATH.
	Node string

	// Sandbox configures the bubblewrap sandbox each session's dev server
	// runs in (see package sandbox): its Limits, the Env added to its clean
	// environment, the host users it runs as when the service is root, the
	// Bwrap binary. Project, Modules and Name are set for each session. The
	// zero value means the defaults of package sandbox, but for the users:
	// when UIDs is nil and UID zero, each sandbox runs as a host user of
	// its own out of sandbox.DefaultUIDFirst and the DefaultUIDCount IDs
	// after it, one range for every Manager of the process, so that no
	// session shares the kernel's per-user budgets (inotify) with another.
	// Each session's files live on a disk of its own (sandbox.NewDisk) of
	// Limits.Disk bytes and Limits.Inodes files, which the API's writes and
	// the tenant's code fill together; Limits.Disk -1 leaves them on
	// BaseDir's file system, unbounded. In the
	// sandbox a session's project runs as written: its vite.config.*,
	// PostCSS, Tailwind and svelte configs and .env files are used, since
	// they reach nothing of the host. Limits.Memory 0 means
	// DefaultSessionMemory (not sandbox.DefaultMemory).
	Sandbox sandbox.Config
	// ViteFloor is the oldest Vite a session may run, such as "6.4.3" or
	// "7": a package.json whose vite range allows nothing newer is refused
	// before anything resolves (CodeViteVersion, with the newest line that
	// the project's plugins accept), and one that resolves below it before
	// anything installs. Empty means 4.5.0, the oldest the runner drives;
	// sessions on a line with published file-read advisories then get a
	// WarnViteAdvisories warning, and the router refuses the requests those
	// advisories use, whatever the version.
	ViteFloor string
	// NoSandbox runs the dev servers without the sandbox, as this process's
	// user with its environment, for trusted input only. The files that
	// Node would run (vite.config.*, postcss.config.*, tailwind.config.*,
	// .npmrc, ...) are then dropped unless AllowConfigFiles is set, and the
	// service builds the Vite config itself; that blocklist does not stop a
	// project from reading host files through its imports (Vite serves any
	// file a module imports), nor code run by CSS tools that a project
	// names (Tailwind's @plugin, Less @plugin, Stylus use()). Without it,
	// New fails when bubblewrap is missing.
	NoSandbox bool
	// AllowConfigFiles keeps client-sent files that Node would run on the
	// host and lets Vite load the client's vite.config, with NoSandbox (in
	// the sandbox they are always kept).
	AllowConfigFiles bool

	// APIPrefix is where the API is mounted. Empty means DefaultAPIPrefix.
	APIPrefix string
	// Token, when set, is the bearer token the API requires.
	Token string

	// Transport carries the proxies' requests to the dev servers. Nil means
	// one ssrproxy.NewTransport shared by all sessions.
	Transport http.RoundTripper

	// Logger receives the manager's logs, each with the session id. Nil means
	// slog.Default().
	Logger *slog.Logger

	// The API as a public service (doc.go, "The API as a public service").

	// AllowedOrigins are the origins (scheme://host[:port]) of browser
	// pages that may call the API besides PublicURL's own: a request with
	// an Origin header naming any other origin gets 403, code
	// "forbidden_origin", and these get CORS headers and preflight answers.
	// Requests without Origin (curl, servers) are not affected. Preview
	// origins are never allowed unless listed: a preview runs tenant code.
	AllowedOrigins []string
	// MaxInstalls bounds the dependency resolutions and installs that run
	// at once; more wait in order of arrival. Zero means DefaultMaxInstalls.
	MaxInstalls int
	// CacheMaxBytes bounds the disk the dependency cache uses, the package
	// store included, each hard-linked file counted once: after each
	// install, the store's files that no set links go first, then the sets
	// no session uses, least recently used first, until the cache fits.
	// Zero means DefaultCacheMaxBytes; negative means no bound.
	CacheMaxBytes int64
	// ResolveCommand resolves a dependency set without installing it: run
	// in a directory that holds the set's package.json, it writes the npm
	// package-lock.json (lockfile version 2 or 3) that InstallCommand then
	// installs. Sets that resolve to the same packages share one install.
	// Nil, with InstallCommand nil too, means the node's package store (see
	// InstallCommand); nil alone means npm install --package-lock-only
	// --ignore-scripts --no-audit --no-fund --loglevel=error.
	ResolveCommand []string
}

// Defaults of the Options of the public service.
const (
	DefaultMaxInstalls   = 2
	DefaultCacheMaxBytes = 10 << 30
)

// withDefaults returns a copy of opts with the zero values filled in, and
// the parsed PublicURL.
func withDefaults(opts *Options) (Options, *url.URL, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	public, err := url.Parse(o.PublicURL)
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Hostname() == "" {
		return o, nil, fmt.Errorf("vitehost/preview: PublicURL %q must be an absolute http or https URL", o.PublicURL)
	}
	if o.BaseDir == "" {
		o.BaseDir = filepath.Join(os.TempDir(), "vitehost-preview")
	}
	if o.BaseDir, err = filepath.Abs(o.BaseDir); err != nil {
		return o, nil, err
	}
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(o.BaseDir, "deps")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Spares == 0 {
		o.Spares = DefaultSpares
	}
	if o.SpareMemory <= 0 {
		o.SpareMemory = defaultSpareMemory(machineMemory())
	}
	if o.SpareIdle <= 0 {
		o.SpareIdle = DefaultSpareIdle
	}
	o.Limits = o.Limits.withDefaults()
	// Both nil: the node's package store (deps.Options).
	if o.InstallCommand == nil && o.ResolveCommand != nil {
		o.InstallCommand = deps.DefaultInstall()
	}
	o.InstallCommand = slices.Clone(o.InstallCommand)
	if o.InstallTimeout <= 0 {
		o.InstallTimeout = 10 * time.Minute
	}
	if o.HMRWait <= 0 {
		o.HMRWait = DefaultHMRWait
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.ForwardTimeout <= 0 {
		o.ForwardTimeout = DefaultForwardTimeout
	}
	if o.APIPrefix == "" {
		o.APIPrefix = DefaultAPIPrefix
	}
	o.APIPrefix = "/" + strings.Trim(o.APIPrefix, "/")
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Store == nil {
		o.Store = &MemoryStore{}
	}
	if o.Transport == nil {
		o.Transport = ssrproxy.NewTransport()
	}
	if o.NodeID == "" {
		o.NodeID = "node-" + NewID()[:10]
	}
	if o.NodeAddr != "" {
		if host, port, err := net.SplitHostPort(o.NodeAddr); err != nil || host == "" || port == "" {
			return o, nil, fmt.Errorf("vitehost/preview: NodeAddr %q must be host:port", o.NodeAddr)
		}
	}
	floor, err := deps.ParseFloor(o.ViteFloor)
	if err != nil {
		return o, nil, fmt.Errorf("vitehost/preview: ViteFloor: %w", err)
	}
	o.ViteFloor = floor
	if o.Sandbox.Limits.Memory == 0 {
		o.Sandbox.Limits.Memory = DefaultSessionMemory
	}
	o.Sandbox.ReadOnly = slices.Clone(o.Sandbox.ReadOnly)
	o.Sandbox.Files = slices.Clone(o.Sandbox.Files)
	o.Sandbox.Env = slices.Clone(o.Sandbox.Env)
	if o.Sandbox.Logger == nil {
		o.Sandbox.Logger = o.Logger
	}
	if o.Sandbox.UIDs == nil && o.Sandbox.UID == 0 {
		o.Sandbox.UIDs = processUIDs()
	}
	origins := make([]string, 0, len(o.AllowedOrigins))
	for _, raw := range o.AllowedOrigins {
		origin, ok := parseOrigin(raw)
		if !ok {
			return o, nil, fmt.Errorf("vitehost/preview: AllowedOrigins: %q is not an origin (scheme://host[:port])", raw)
		}
		origins = append(origins, origin)
	}
	o.AllowedOrigins = origins
	if o.MaxInstalls <= 0 {
		o.MaxInstalls = DefaultMaxInstalls
	}
	if o.CacheMaxBytes == 0 {
		o.CacheMaxBytes = DefaultCacheMaxBytes
	}
	if o.ResolveCommand == nil && o.InstallCommand != nil {
		o.ResolveCommand = deps.DefaultResolve()
	}
	o.ResolveCommand = slices.Clone(o.ResolveCommand)
	if (o.InstallCommand != nil || o.ResolveCommand != nil) && (len(o.InstallCommand) == 0 || len(o.ResolveCommand) == 0) {
		return o, nil, fmt.Errorf("vitehost/preview: InstallCommand and ResolveCommand must name a program (nil means the default)")
	}
	return o, public, nil
}

// allowConfig reports whether client files that Node runs are kept.
func (o *Options) allowConfig() bool { return !o.NoSandbox || o.AllowConfigFiles }

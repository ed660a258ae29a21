package preview

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vitehost/vitehost/internal/flock"
	"github.com/vitehost/vitehost/ssrproxy"
)

// Defaults of Options.
const (
	DefaultTTL       = 24 * time.Hour
	DefaultAPIPrefix = "/kontext/preview"
	DefaultHMRWait   = 1500 * time.Millisecond
	// HMRPath is where a session's HMR socket lives on its preview host.
	HMRPath = "/hmr"
)

//go:embed all:template
var templateFS embed.FS

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
	// CacheDir holds one install per dependency set. Empty means BaseDir/deps.
	// Several Managers, on one machine, may share it.
	CacheDir string

	// TTL is how long a session lives after its creation. Zero means DefaultTTL.
	TTL time.Duration
	// Limits bound requests and sessions; zero fields take defaults.
	Limits Limits

	// Store keeps session records. Nil means a MemoryStore. Nodes that
	// serve one domain together share one Store (preview/redisstore).
	Store Store
	// NodeID names this node in the records of its sessions (Record.Owner);
	// nodes that share a Store need distinct ids. Empty means a random id.
	// A node restarted with its old NodeID or NodeAddr starts the sessions
	// it ran again when they are next requested.
	NodeID string
	// NodeAddr is the host:port at which the other nodes reach this node's
	// handler (Router(API()) over plain HTTP); it goes into the records of
	// the sessions this node runs. Setting it makes the node one of several
	// that share Store: it saves its sessions' files to the store, forwards
	// requests for sessions of other nodes to their node, and takes over
	// the sessions of a node that does not answer. Empty means a single
	// node: no files in the store, no forwarding, no takeover.
	NodeAddr string

	// InstallCommand installs a dependency set in the current directory,
	// which holds its package.json. Nil means DefaultInstallCommand. A custom
	// command must not run lifecycle scripts (pnpm install --ignore-scripts,
	// bun install --ignore-scripts).
	InstallCommand []string
	// InstallTimeout bounds one install. Zero means 10 minutes.
	InstallTimeout time.Duration
	// StartTimeout bounds the start of one dev server. Zero means the vite
	// package's default.
	StartTimeout time.Duration
	// HMRWait is how long an update waits for Vite's HMR message. Zero means
	// DefaultHMRWait.
	HMRWait time.Duration
	// Node is the node binary. Empty means node on PATH.
	Node string

	// AllowConfigFiles keeps client-sent files that Node would run on the
	// host (vite.config.*, postcss.config.*, tailwind.config.*, .npmrc, ...)
	// and lets Vite load the client's vite.config. Off by default: the
	// service builds the config itself.
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
}

// Manager runs preview sessions: one Vite dev server per session, its files
// in BaseDir/preview-{id}. Its methods are safe for concurrent use.
type Manager struct {
	opts      Options
	public    *url.URL
	baseDir   string
	store     Store
	deps      *depCache
	transport http.RoundTripper
	client    *http.Client // the service's own requests to its dev servers (warm-up, re-fetches)
	log       *slog.Logger
	unlock    func()
	nodeID    string
	nodeAddr  string // "" on a single node

	// ctx ends when Close begins: the janitor's store calls give up.
	ctx    context.Context
	cancel context.CancelFunc

	// fwdTransport carries requests forwarded to other nodes.
	fwdTransport *http.Transport

	mu         sync.Mutex
	sessions   map[string]*session
	claims     map[string]*claimCall      // takeovers under way, by session id
	forwarders map[string]*ssrproxy.Proxy // one per other node's address
	closed     bool

	running  sync.WaitGroup // session operations under way
	stopDeps context.CancelFunc
	janitor  chan struct{} // closed to stop the janitor
	janDone  chan struct{}
	closeErr error
	once     sync.Once
}

// New returns a Manager. It creates BaseDir, takes its lock, removes
// session directories that an earlier process left, and starts the janitor
// that removes expired sessions.
func New(opts *Options) (*Manager, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	public, err := url.Parse(o.PublicURL)
	if err != nil || (public.Scheme != "http" && public.Scheme != "https") || public.Hostname() == "" {
		return nil, fmt.Errorf("vitehost/preview: PublicURL %q must be an absolute http or https URL", o.PublicURL)
	}
	if o.BaseDir == "" {
		o.BaseDir = filepath.Join(os.TempDir(), "vitehost-preview")
	}
	if o.BaseDir, err = filepath.Abs(o.BaseDir); err != nil {
		return nil, err
	}
	if o.CacheDir == "" {
		o.CacheDir = filepath.Join(o.BaseDir, "deps")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	o.Limits = o.Limits.withDefaults()
	if o.InstallCommand == nil {
		o.InstallCommand = DefaultInstallCommand
	}
	o.InstallCommand = append([]string(nil), o.InstallCommand...)
	if o.InstallTimeout <= 0 {
		o.InstallTimeout = 10 * time.Minute
	}
	if o.HMRWait <= 0 {
		o.HMRWait = DefaultHMRWait
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
			return nil, fmt.Errorf("vitehost/preview: NodeAddr %q must be host:port", o.NodeAddr)
		}
	}
	if err := os.MkdirAll(o.BaseDir, 0o755); err != nil {
		return nil, fmt.Errorf("vitehost/preview: %w", err)
	}
	unlock, err := flock.TryLock(filepath.Join(o.BaseDir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("vitehost/preview: BaseDir %s: %w", o.BaseDir, err)
	}
	log := o.Logger
	if o.NodeAddr != "" {
		log = log.With("node", o.NodeID)
	}
	depsCtx, stopDeps := context.WithCancel(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		stopDeps:     stopDeps,
		opts:         o,
		public:       public,
		baseDir:      o.BaseDir,
		store:        o.Store,
		transport:    o.Transport,
		client:       &http.Client{Transport: o.Transport, Timeout: 60 * time.Second},
		log:          log,
		unlock:       unlock,
		nodeID:       o.NodeID,
		nodeAddr:     o.NodeAddr,
		ctx:          ctx,
		cancel:       cancel,
		fwdTransport: ssrproxy.NewTransport(),
		sessions:     make(map[string]*session),
		claims:       make(map[string]*claimCall),
		forwarders:   make(map[string]*ssrproxy.Proxy),
		janitor:      make(chan struct{}),
		janDone:      make(chan struct{}),
		deps: &depCache{
			dir:     o.CacheDir,
			command: o.InstallCommand,
			timeout: o.InstallTimeout,
			log:     log,
			ctx:     depsCtx,
			calls:   make(map[string]*installCall),
		},
	}
	m.removeLeftovers()
	go m.runJanitor()
	return m, nil
}

// removeLeftovers removes session directories of an earlier process: their
// dev servers are gone, and the lock says no other Manager uses BaseDir.
func (m *Manager) removeLeftovers() {
	entries, _ := os.ReadDir(m.baseDir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "preview-") {
			os.RemoveAll(filepath.Join(m.baseDir, e.Name()))
		}
	}
}

// Info describes a session as the API reports it.
type Info struct {
	SessionID  string
	PreviewURL string
	WSURL      string
	Status     Status
	ExpiresAt  time.Time
	// Error says why the session failed, when Status is StatusError.
	Error string
}

// PreviewURL returns the public URL of session id's preview.
func (m *Manager) PreviewURL(id string) string {
	u := *m.public
	u.Host = "preview-" + id + "." + m.public.Host
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	return u.String()
}

// WSURL returns the public URL of session id's HMR socket.
func (m *Manager) WSURL(id string) string {
	u, _ := url.Parse(m.PreviewURL(id))
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = HMRPath
	return u.String()
}

func (m *Manager) info(r Record) *Info {
	return &Info{
		SessionID:  r.ID,
		PreviewURL: m.PreviewURL(r.ID),
		WSURL:      m.WSURL(r.ID),
		Status:     r.Status,
		ExpiresAt:  r.ExpiresAt,
		Error:      r.Error,
	}
}

// begin registers an operation, so that Close waits for it.
func (m *Manager) begin() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.running.Add(1)
	return nil
}

// lookup returns the live local session id, or ErrNotFound. An expired
// session is removed on the way.
func (m *Manager) lookup(id string) (*session, error) {
	if !ValidID(id) {
		return nil, invalid(CodeBadID, "session id %q is not 26 characters of a-z and 2-7", id)
	}
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if s.expired(time.Now()) {
		m.expire(context.Background(), s)
		return nil, fmt.Errorf("%w: %s expired", ErrNotFound, id)
	}
	return s, nil
}

// Create validates req, writes its files into a new session directory,
// installs (or reuses) its dependencies, starts its dev server and returns
// once the preview URL serves the page. With the id of a live session it
// updates that session instead. With a NodeAddr, the session's files go to
// the Store before anything starts; a Store that cannot be reached fails
// the create with ErrUnavailable.
func (m *Manager) Create(ctx context.Context, req *CreateRequest) (*Info, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()

	files, err := checkFiles(req.Files, nil, m.opts.Limits, m.opts.AllowConfigFiles)
	if err != nil {
		return nil, err
	}
	pkg := []byte(req.PackageJSON)
	if len(pkg) == 0 || string(pkg) == "null" {
		pkg = files.packageJSON
	}
	useTemplate := len(pkg) == 0
	if useTemplate {
		pkg, _ = templateFS.ReadFile("template/package.json")
	}
	deps, err := ParsePackageJSON(pkg)
	if err != nil {
		return nil, err
	}
	deps = deps.withDefaults()

	id := req.SessionID
	if id != "" {
		if !ValidID(id) {
			return nil, invalid(CodeBadID, "sessionId %q is not 26 characters of a-z and 2-7", id)
		}
		s, err := m.here(ctx, id)
		if err == nil {
			if _, err := m.update(ctx, s, files, nil); err != nil {
				return nil, err
			}
			return m.info(s.record()), nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	} else {
		id = NewID()
	}

	project, err := projectFiles(useTemplate, files.write)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	s := newSession(m, id, now, now.Add(m.opts.TTL))
	s.mu.Lock()
	if err := m.add(s); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if err := m.publish(ctx, s, deps, project); err != nil {
		s.mu.Unlock()
		s.log.Warn("vitehost/preview: create failed", "err", err)
		m.remove(context.WithoutCancel(ctx), s, "create failed")
		return nil, err
	}
	err = s.start(ctx, deps, project)
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("vitehost/preview: create failed", "err", err)
		m.drop(context.WithoutCancel(ctx), s, "create failed")
		return nil, err
	}
	return m.info(s.record()), nil
}

// add registers the new session s, within the session limit.
func (m *Manager) add(s *session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.sessions[s.id] != nil || m.claims[s.id] != nil:
		return invalid(CodeBadID, "session %s is being created by another request", s.id)
	case len(m.sessions)+len(m.claims) >= m.opts.Limits.MaxSessions:
		return fmt.Errorf("%w: %d sessions", ErrLimit, m.opts.Limits.MaxSessions)
	}
	m.sessions[s.id] = s
	return nil
}

// publish creates the record of the new session s in the store (failing
// when the id is taken) and, on a node of several, saves its files there.
func (m *Manager) publish(ctx context.Context, s *session, deps Deps, files []pendingFile) error {
	ok, err := m.store.Claim(ctx, s.id, "", s.record())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: session %s exists", ErrRemote, s.id)
	}
	if !m.clustered() {
		return nil
	}
	all := make(map[string][]byte, len(files)+1)
	for _, f := range files {
		all[f.name] = f.data
	}
	all["package.json"] = deps.packageJSON()
	if err := m.store.SaveFiles(ctx, s.id, all, nil, s.expires); err != nil {
		m.deleteRecord(context.WithoutCancel(ctx), s)
		return err
	}
	return nil
}

// Update writes req's files into session id (each atomically), removes the
// files it names for deletion, and reports what Vite's HMR did. With a
// NodeAddr, the files go to the Store first: when it cannot be reached the
// update fails with ErrUnavailable and nothing is written. A session that
// another node runs is ErrRemote (the API forwards those).
func (m *Manager) Update(ctx context.Context, id string, req *UpdateRequest) (*UpdateResult, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	files, err := checkFiles(req.Files, req.Delete, m.opts.Limits, m.opts.AllowConfigFiles)
	if err != nil {
		return nil, err
	}
	s, err := m.here(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.update(ctx, s, files, req.Delete)
}

func (m *Manager) update(ctx context.Context, s *session, files checkedFiles, deletes []string) (*UpdateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, s.id)
	}
	if files.packageJSON != nil {
		// Dependencies are fixed at creation: a new set means a new session.
		files.ignored = append(files.ignored, "package.json")
	}
	return s.update(ctx, files, deletes)
}

// Status returns session id's info, from the Store when another node runs
// it.
func (m *Manager) Status(ctx context.Context, id string) (*Info, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	p, err := m.find(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.s != nil {
		return m.info(p.s.record()), nil
	}
	return m.info(p.rec), nil
}

// Delete stops session id's dev server, removes its directory and forgets
// it, in the Store first: when the Store cannot be reached, nothing is
// removed. A session that another node runs is ErrRemote (the API forwards
// those).
func (m *Manager) Delete(ctx context.Context, id string) error {
	if err := m.begin(); err != nil {
		return err
	}
	defer m.running.Done()
	p, err := m.find(ctx, id)
	switch {
	case err != nil:
		return err
	case p.s != nil:
		if err := m.store.Delete(ctx, id); err != nil {
			return err
		}
		m.remove(ctx, p.s, "deleted")
		return nil
	case p.orphan:
		// An earlier run of this node had it; nothing runs it now.
		return m.store.Delete(ctx, id)
	case p.remote:
		return remoteError(p.rec)
	}
	return fmt.Errorf("%w: %s", ErrNotFound, id)
}

// remove ends session s on this node: its process, its proxy's tunnels and
// its directory. It waits for an operation on s under way to finish. The
// store is the caller's business (see drop).
func (m *Manager) remove(ctx context.Context, s *session, why string) {
	s.cancel() // a start under way gives up
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	s.gone = true
	s.stop(ctx)
	m.mu.Lock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
	m.mu.Unlock()
	s.log.Info("vitehost/preview: session removed", "why", why)
}

// drop removes session s everywhere: its record and files first (best
// effort: they expire anyway), so that no node starts it again, then its
// process and directory.
func (m *Manager) drop(ctx context.Context, s *session, why string) {
	m.deleteRecord(ctx, s)
	m.remove(ctx, s, why)
}

func (m *Manager) deleteRecord(ctx context.Context, s *session) {
	if err := m.store.Delete(ctx, s.id); err != nil {
		s.log.Warn("vitehost/preview: delete record", "err", err)
	}
}

// expire removes the expired session s.
func (m *Manager) expire(ctx context.Context, s *session) { m.drop(ctx, s, "expired") }

// Sessions returns the number of live sessions on this node.
func (m *Manager) Sessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// janitorEvery is the longest pause between the janitor's rounds: expiry,
// and on a node of several the check of its records (syncRecords).
const janitorEvery = 5 * time.Second

func (m *Manager) runJanitor() {
	defer close(m.janDone)
	t := time.NewTicker(max(min(m.opts.TTL/4, janitorEvery), 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-m.janitor:
			return
		case now := <-t.C:
			m.mu.Lock()
			var expired []*session
			for _, s := range m.sessions {
				if s.expired(now) {
					expired = append(expired, s)
				}
			}
			m.mu.Unlock()
			for _, s := range expired {
				m.expire(m.ctx, s)
			}
			if m.clustered() {
				m.syncRecords()
			}
		}
	}
}

// Close stops every session's dev server, removes their directories and
// returns when all of them are gone. On a single node it deletes their
// records too; on a node of several (NodeAddr set) the records and files
// stay in the Store, and the other nodes take the sessions over when they
// are next requested. It is safe to call more than once.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.mu.Lock()
		m.closed = true
		all := make([]*session, 0, len(m.sessions))
		for _, s := range m.sessions {
			all = append(all, s)
		}
		forwarders := make([]*ssrproxy.Proxy, 0, len(m.forwarders))
		for _, p := range m.forwarders {
			forwarders = append(forwarders, p)
		}
		m.mu.Unlock()
		m.cancel()
		close(m.janitor)
		<-m.janDone
		m.stopDeps() // creates waiting for an install give up
		var wg sync.WaitGroup
		for _, s := range all {
			wg.Go(func() {
				if !m.clustered() {
					m.deleteRecord(context.Background(), s)
				}
				m.remove(context.Background(), s, "manager closed")
			})
		}
		for _, p := range forwarders {
			wg.Go(func() { p.Close() })
		}
		wg.Wait()
		m.running.Wait()
		m.deps.wg.Wait()
		m.fwdTransport.CloseIdleConnections()
		m.unlock()
	})
	return m.closeErr
}

// projectFiles returns the files of a new project: the template's (other
// than package.json) when useTemplate is set, replaced by and joined with
// the client's, sorted by name.
func projectFiles(useTemplate bool, client []pendingFile) ([]pendingFile, error) {
	var out []pendingFile
	if useTemplate {
		tmpl, err := readTemplate()
		if err != nil {
			return nil, err
		}
		sent := make(map[string]bool, len(client))
		for _, f := range client {
			sent[f.name] = true
		}
		for _, f := range tmpl {
			if !sent[f.name] {
				out = append(out, f)
			}
		}
	}
	out = append(out, client...)
	slices.SortFunc(out, func(a, b pendingFile) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// readTemplate returns the template's files other than package.json.
func readTemplate() ([]pendingFile, error) {
	var out []pendingFile
	err := fs.WalkDir(templateFS, "template", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "template/")
		if rel == "package.json" {
			return nil
		}
		data, err := templateFS.ReadFile(p)
		out = append(out, pendingFile{name: rel, data: data})
		return err
	})
	return out, err
}

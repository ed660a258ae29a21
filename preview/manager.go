package preview

import (
	"context"
	"embed"
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

	// Store keeps session records. Nil means a MemoryStore.
	Store Store

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
	log       *slog.Logger
	unlock    func()

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool

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
	if err := os.MkdirAll(o.BaseDir, 0o755); err != nil {
		return nil, fmt.Errorf("vitehost/preview: %w", err)
	}
	unlock, err := flock.TryLock(filepath.Join(o.BaseDir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("vitehost/preview: BaseDir %s: %w", o.BaseDir, err)
	}
	depsCtx, stopDeps := context.WithCancel(context.Background())
	m := &Manager{
		stopDeps:  stopDeps,
		opts:      o,
		public:    public,
		baseDir:   o.BaseDir,
		store:     o.Store,
		transport: o.Transport,
		log:       o.Logger,
		unlock:    unlock,
		sessions:  make(map[string]*session),
		janitor:   make(chan struct{}),
		janDone:   make(chan struct{}),
		deps: &depCache{
			dir:     o.CacheDir,
			command: o.InstallCommand,
			timeout: o.InstallTimeout,
			log:     o.Logger,
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
		m.remove(context.Background(), s, "expired")
		return nil, fmt.Errorf("%w: %s expired", ErrNotFound, id)
	}
	return s, nil
}

// Create validates req, writes its files into a new session directory,
// installs (or reuses) its dependencies, starts its dev server and returns
// once the preview URL serves the page. With the id of a live session it
// updates that session instead.
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
	var deps Deps
	useTemplate := len(pkg) == 0
	if useTemplate {
		pkg, _ = templateFS.ReadFile("template/package.json")
	}
	if deps, err = ParsePackageJSON(pkg); err != nil {
		return nil, err
	}
	deps = deps.withDefaults()

	id := req.SessionID
	if id != "" {
		if !ValidID(id) {
			return nil, invalid(CodeBadID, "sessionId %q is not 26 characters of a-z and 2-7", id)
		}
		if s, err := m.lookup(id); err == nil {
			if _, err := m.update(ctx, s, files, nil); err != nil {
				return nil, err
			}
			return m.info(s.record()), nil
		}
	} else {
		id = NewID()
	}

	now := time.Now()
	s := newSession(m, id, now, now.Add(m.opts.TTL))
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if m.sessions[id] != nil {
		m.mu.Unlock()
		return nil, invalid(CodeBadID, "session %s is being created by another request", id)
	}
	if len(m.sessions) >= m.opts.Limits.MaxSessions {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %d sessions", ErrLimit, m.opts.Limits.MaxSessions)
	}
	m.sessions[id] = s
	m.mu.Unlock()

	s.mu.Lock()
	err = s.start(ctx, deps, files.write, useTemplate)
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("vitehost/preview: create failed", "err", err)
		m.remove(context.WithoutCancel(ctx), s, "create failed")
		return nil, err
	}
	return m.info(s.record()), nil
}

// Update writes req's files into session id (each atomically), removes the
// files it names for deletion, and reports what Vite's HMR did.
func (m *Manager) Update(ctx context.Context, id string, req *UpdateRequest) (*UpdateResult, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	files, err := checkFiles(req.Files, req.Delete, m.opts.Limits, m.opts.AllowConfigFiles)
	if err != nil {
		return nil, err
	}
	s, err := m.lookup(id)
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

// Status returns session id's info.
func (m *Manager) Status(ctx context.Context, id string) (*Info, error) {
	if err := m.begin(); err != nil {
		return nil, err
	}
	defer m.running.Done()
	s, err := m.lookup(id)
	if err == nil {
		return m.info(s.record()), nil
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	r, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return m.info(r), nil
}

// Delete stops session id's dev server, removes its directory and forgets it.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if err := m.begin(); err != nil {
		return err
	}
	defer m.running.Done()
	s, err := m.lookup(id)
	if err != nil {
		return err
	}
	m.remove(ctx, s, "deleted")
	return nil
}

// remove ends session s: its process, its proxy's tunnels, its directory and
// its record. It waits for an operation on s under way to finish.
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
	if err := m.store.Delete(context.WithoutCancel(ctx), s.id); err != nil {
		s.log.Warn("vitehost/preview: delete record", "err", err)
	}
	s.log.Info("vitehost/preview: session removed", "why", why)
}

// Sessions returns the number of live sessions on this node.
func (m *Manager) Sessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

func (m *Manager) runJanitor() {
	defer close(m.janDone)
	every := min(m.opts.TTL/4, time.Minute)
	t := time.NewTicker(max(every, 50*time.Millisecond))
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
				m.remove(context.Background(), s, "expired")
			}
		}
	}
}

// Close stops every session's dev server, removes their directories and
// returns when all of them are gone. It is safe to call more than once.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.mu.Lock()
		m.closed = true
		all := make([]*session, 0, len(m.sessions))
		for _, s := range m.sessions {
			all = append(all, s)
		}
		m.mu.Unlock()
		close(m.janitor)
		<-m.janDone
		m.stopDeps() // creates waiting for an install give up
		var wg sync.WaitGroup
		for _, s := range all {
			wg.Go(func() { m.remove(context.Background(), s, "manager closed") })
		}
		wg.Wait()
		m.running.Wait()
		m.deps.wg.Wait()
		m.unlock()
	})
	return m.closeErr
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

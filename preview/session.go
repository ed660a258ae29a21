package preview

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

// errNoTarget is the HMR client's reason to wait: the dev server is between
// runs.
var errNoTarget = errors.New("vitehost/preview: dev server not listening")

// session is one preview: a directory, a dev server, the proxy in front of
// it and the service's own HMR client. mu serializes start, update and
// removal; the fields under it are set by start and read by holders of mu,
// except where noted.
type session struct {
	m       *Manager
	id      string
	dir     string
	created time.Time
	expires time.Time
	log     *slog.Logger

	ctx    context.Context // lives as long as the session
	cancel context.CancelFunc

	mu     sync.Mutex
	gone   bool
	root   *os.Root
	warmed chan struct{} // closed when the background warm-up is done
	server *vite.Server
	hmr    *hmrClient

	// state is read without mu (status requests must not wait for an update).
	state sync.Mutex
	rec   Record

	// proxy is set once the dev server is up; the router reads it without mu.
	proxy atomic.Pointer[ssrproxy.Proxy]
}

func newSession(m *Manager, id string, created, expires time.Time) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		m:       m,
		id:      id,
		dir:     filepath.Join(m.baseDir, "preview-"+id),
		created: created,
		expires: expires,
		log:     m.log.With("session", id),
		ctx:     ctx,
		cancel:  cancel,
	}
	s.rec = Record{
		ID: id, Status: StatusInstalling, Dir: s.dir, Owner: m.nodeID, OwnerAddr: m.nodeAddr,
		CreatedAt: created, ExpiresAt: expires,
	}
	return s
}

func (s *session) expired(now time.Time) bool { return !now.Before(s.expires) }

func (s *session) record() Record {
	s.state.Lock()
	defer s.state.Unlock()
	return s.rec
}

// setStatus records a new status locally and in the store.
func (s *session) setStatus(ctx context.Context, st Status, errMsg string) {
	s.state.Lock()
	s.rec.Status, s.rec.Error = st, errMsg
	if s.server != nil {
		t := s.server.Targets()
		s.rec.HTTPURL, s.rec.HMRURL = urlString(t.HTTP), urlString(t.HMR)
	}
	rec := s.rec
	s.state.Unlock()
	if err := s.m.store.Put(context.WithoutCancel(ctx), rec); err != nil {
		s.log.Warn("vitehost/preview: store record", "err", err)
	}
}

// start writes the project's files (all of them: a new session's template
// and client files, or what a takeover loaded from the store) and its
// package.json, links the dependencies, starts the dev server and warms it
// up. ctx is the creating request's: when it ends before the start does,
// the start is abandoned.
func (s *session) start(ctx context.Context, deps Deps, files []pendingFile) error {
	began := time.Now()
	stopAbandon := context.AfterFunc(ctx, s.cancel)
	defer stopAbandon()

	s.setStatus(ctx, StatusInstalling, "")
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

	modules, err := s.m.deps.ensure(s.ctx, deps)
	if err != nil {
		if errors.Is(err, ErrInstall) {
			return fmt.Errorf("%w: %w", ErrDevServer, err)
		}
		return err
	}
	if err := os.Symlink(modules, filepath.Join(s.dir, "node_modules")); err != nil {
		return err
	}
	installed := time.Now()

	s.setStatus(ctx, StatusStarting, "")
	server, err := vite.Start(s.ctx, s.dir, &vite.Options{
		Framework:    vite.Vite,
		PublicURL:    mustParse(s.m.PreviewURL(s.id)),
		HMRPath:      HMRPath,
		NoConfigFile: !s.m.opts.AllowConfigFiles,
		Config:       viteConfig(s.dir, modules),
		Plugins:      plugins(deps),
		Node:         s.m.opts.Node,
		Logger:       s.log,
		StartTimeout: s.m.opts.StartTimeout,
	})
	if err != nil {
		if s.ctx.Err() != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %w", ErrDevServer, err)
	}
	s.server = server
	s.hmr = newHMRClient(server, HMRPath, s.log)
	s.proxy.Store(ssrproxy.New(server, &ssrproxy.Options{Transport: s.m.transport, Logger: s.log}))
	started := time.Now()

	// The create answers once the page is served. Its modules are fetched
	// in the background meanwhile, as a browser would: the browser that
	// opens the page next shares the work, the dependencies get optimized,
	// and an update waits for the warm-up so that its edits bring HMR
	// updates even when no browser has loaded the modules.
	entries, err := loadPage(s.ctx, s.m.client, server.Targets().HTTP)
	if err != nil {
		s.log.Warn("vitehost/preview: the page is not served", "err", err)
	}
	s.warmed = make(chan struct{})
	go func() {
		defer close(s.warmed)
		start := time.Now()
		warmModules(s.ctx, s.m.client, server.Targets().HTTP, entries)
		s.log.Debug("vitehost/preview: modules warmed", "took", time.Since(start).Round(time.Millisecond))
	}()
	wctx, cancel := context.WithTimeout(s.ctx, s.m.opts.HMRWait)
	err = s.hmr.waitConnected(wctx)
	cancel()
	if err != nil {
		s.log.Warn("vitehost/preview: HMR client not connected", "err", err)
	}
	if s.ctx.Err() != nil {
		return ctx.Err()
	}
	s.setStatus(ctx, StatusActive, "")
	go s.watch(server)
	s.log.Info("vitehost/preview: session active",
		"files", len(files), "install", installed.Sub(began).Round(time.Millisecond),
		"start", started.Sub(installed).Round(time.Millisecond), "page", time.Since(started).Round(time.Millisecond),
		"vite", server.Version())
	return nil
}

// watch marks the session failed when its dev server stops for good (the
// vite package restarts it after a crash; this is when it gave up).
func (s *session) watch(server *vite.Server) {
	select {
	case <-s.ctx.Done():
	case <-server.Done():
		if s.ctx.Err() == nil {
			msg := "dev server stopped"
			if err := server.Err(); err != nil {
				msg = err.Error()
			}
			s.log.Error("vitehost/preview: dev server stopped", "err", msg)
			s.setStatus(context.Background(), StatusError, msg)
		}
	}
}

// UpdateResult is what an update did.
type UpdateResult struct {
	// Updated are the files written, Deleted the files removed, Ignored the
	// files dropped (config files Node would run, package.json).
	Updated []string
	Deleted []string
	Ignored []string
	// HMR is what Vite sent the browsers.
	HMR HMR
}

// HMRTriggered reports whether Vite sent an update or a full reload.
func (r *UpdateResult) HMRTriggered() bool { return r.HMR.Type != "none" }

func (s *session) update(ctx context.Context, files checkedFiles, deletes []string) (*UpdateResult, error) {
	if rec := s.record(); rec.Status == StatusError {
		return nil, fmt.Errorf("%w: %s", ErrDevServer, rec.Error)
	}
	if s.server == nil || s.hmr == nil {
		return nil, fmt.Errorf("%w: session %s is not running", ErrDevServer, s.id)
	}
	if s.m.clustered() && len(files.write)+len(deletes) > 0 {
		// The store's copy first: a node that takes the session over must
		// never find it older than the one it replaces.
		write := make(map[string][]byte, len(files.write))
		for _, f := range files.write {
			write[f.name] = f.data
		}
		if err := s.m.store.SaveFiles(ctx, s.id, write, deletes, s.expires); err != nil {
			return nil, err
		}
	}
	res := &UpdateResult{Ignored: files.ignored, Updated: []string{}, Deleted: []string{}, HMR: HMR{Type: "none", Paths: []string{}}}
	if s.warmed != nil {
		select { // until the module graph is loaded, Vite has nothing to update
		case <-s.warmed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	// Listen before writing: Vite answers within milliseconds.
	connErr := s.hmr.waitConnectedFor(ctx, s.m.opts.HMRWait)
	if connErr != nil {
		s.log.Warn("vitehost/preview: HMR client not connected; the update cannot be confirmed", "err", connErr)
	}
	msgs, unsubscribe := s.hmr.subscribe()
	defer unsubscribe()

	if err := writeFiles(s.root, files.write); err != nil {
		return nil, fmt.Errorf("vitehost/preview: write files: %w", err)
	}
	for _, f := range files.write {
		res.Updated = append(res.Updated, f.name)
	}
	removed, err := removeFiles(s.root, deletes)
	res.Deleted = append(res.Deleted, removed...)
	if err != nil {
		return res, fmt.Errorf("vitehost/preview: delete files: %w", err)
	}
	if len(res.Updated)+len(res.Deleted) == 0 || connErr != nil {
		return res, nil
	}
	res.HMR = s.collect(ctx, msgs)
	s.log.Info("vitehost/preview: updated", "files", describeFiles(files.write), "deleted", len(res.Deleted),
		"hmr", res.HMR.Type, "paths", res.HMR.Paths, "compileError", res.HMR.Error != nil)
	return res, nil
}

// stop ends the session's processes and removes its directory.
func (s *session) stop(ctx context.Context) {
	s.cancel()
	if s.warmed != nil {
		<-s.warmed // the warm-up ends with s.ctx
	}
	if p := s.proxy.Load(); p != nil {
		p.Close()
	}
	if s.hmr != nil {
		s.hmr.close()
	}
	if s.server != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := s.server.Stop(sctx); err != nil {
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

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

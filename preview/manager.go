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
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vitehost/vitehost/internal/flock"
	"github.com/vitehost/vitehost/preview/internal/deps"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/ssrproxy"
)

// Manager runs preview sessions: one Vite dev server per session, its files
// in BaseDir/preview-{id}. Its methods are safe for concurrent use.
type Manager struct {
	opts     Options
	public   *url.URL
	env      *sessionEnv // what each session gets at birth
	store    Store
	deps     *deps.Cache
	log      *slog.Logger
	unlock   func()
	nodeID   string
	nodeAddr string // "" on a single node
	metrics  *metrics
	origins  origins // whose browser pages may call the API (origin.go)
	ready    *readiness
	budget   *byteBudget // request bodies in flight (Limits.MaxBytesInFlight)

	// ctx ends when Close begins: the janitor's and the lease's store calls
	// give up, and so do the starts of taken-over sessions.
	ctx    context.Context
	cancel context.CancelFunc

	// forwardNodes sends requests to the nodes that run their sessions.
	forwardNodes *forwarder

	mu       sync.Mutex
	sessions map[string]*session
	claims   map[string]*claimCall // takeovers under way, by session id
	alive    map[string]time.Time  // other nodes' leases known alive, until
	closed   bool

	running sync.WaitGroup // API operations and background starts under way
	loops   sync.WaitGroup // the janitor and the lease

	// syncNow asks the janitor to check the records at once (runLease,
	// after a gap in the lease).
	syncNow chan struct{}
	// janitorSlots bounds the janitor's work on sessions (expiries,
	// hibernations) to janitorWorkers at once: a token per one under way.
	janitorSlots chan struct{}

	closeOnce sync.Once
	closeDone chan struct{}
	closeErr  error // set before closeDone is closed
}

// New returns a Manager. It creates BaseDir, takes its lock, removes
// session directories that an earlier process left, and starts the janitor
// that removes expired sessions (and, on a node of several, the loop that
// renews the node's lease).
func New(opts *Options) (*Manager, error) {
	o, public, err := withDefaults(opts)
	if err != nil {
		return nil, err
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
	var (
		sb    *sandbox.Config
		disks *sandbox.Disks
	)
	if !o.NoSandbox {
		if sb, disks, err = checkSandbox(&o, log); err != nil {
			unlock()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := newMetrics()
	sets := deps.New(o.CacheDir, &deps.Options{
		Install:     o.InstallCommand,
		Resolve:     o.ResolveCommand,
		Timeout:     o.InstallTimeout,
		MaxBytes:    o.CacheMaxBytes,
		MaxInstalls: o.MaxInstalls,
		Logger:      log,
		Observe:     x.observeInstall,
		ViteFloor:   o.ViteFloor,
	})
	fwd := ssrproxy.NewTransport()
	fwd.ResponseHeaderTimeout = o.ForwardTimeout
	m := &Manager{
		opts:   o,
		public: public,
		env: &sessionEnv{
			store:        o.Store,
			deps:         sets,
			transport:    o.Transport,
			client:       &http.Client{Transport: o.Transport, Timeout: 60 * time.Second},
			clustered:    o.NodeAddr != "",
			node:         o.Node,
			startTimeout: o.StartTimeout,
			hmrWait:      o.HMRWait,
			allowConfig:  o.allowConfig(),
			maxMessage:   o.Limits.MaxWebSocketMessage,
			sandbox:      sb,
			disks:        disks,
			metrics:      x,
			starts:       newStarts(runtime.NumCPU()),
		},
		store:        o.Store,
		deps:         sets,
		log:          log,
		unlock:       unlock,
		nodeID:       o.NodeID,
		nodeAddr:     o.NodeAddr,
		metrics:      x,
		origins:      newOrigins(public, o.AllowedOrigins),
		ready:        newReadiness(readyEvery),
		budget:       newByteBudget(o.Limits.MaxBytesInFlight, bodyWait),
		ctx:          ctx,
		cancel:       cancel,
		forwardNodes: newForwarder(fwd, o.NodeID, log),
		sessions:     make(map[string]*session),
		claims:       make(map[string]*claimCall),
		alive:        make(map[string]time.Time),
		closeDone:    make(chan struct{}),
		syncNow:      make(chan struct{}, 1),
		janitorSlots: make(chan struct{}, janitorWorkers),
	}
	x.register(m)
	m.removeLeftovers()
	if sb != nil && o.Spares > 0 {
		p, err := newSpares(&o, m.env, log)
		if err != nil {
			cancel()
			sets.Close()
			m.env.closeDisks()
			unlock()
			return nil, err
		}
		m.env.spares = p
		m.loops.Go(func() { p.run(ctx) })
	}
	m.loops.Go(m.runJanitor)
	if m.clustered() {
		m.loops.Go(m.runLease)
	}
	return m, nil
}

// removeLeftovers removes session and spare directories of an earlier
// process: their dev servers are gone, and the lock says no other Manager
// uses BaseDir.
func (m *Manager) removeLeftovers() {
	entries, _ := os.ReadDir(m.opts.BaseDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "preview-") || strings.HasPrefix(e.Name(), "spare-") || strings.HasPrefix(e.Name(), "disk-check-") {
			// A session's disk (and its image beside it), a spare's
			// shared mount: unmounted first, or RemoveAll would empty
			// them and fail.
			p := filepath.Join(m.opts.BaseDir, e.Name())
			if err := sandbox.Unmount(p); err != nil {
				m.log.Warn("vitehost/preview: unmount a leftover", "dir", p, "err", err)
				continue
			}
			os.RemoveAll(p)
		}
	}
}

// clustered reports whether this node is one of several sharing the store.
func (m *Manager) clustered() bool { return m.nodeAddr != "" }

// Info describes a session as the API reports it.
type Info struct {
	SessionID  string
	PreviewURL string
	WSURL      string
	Status     Status
	ExpiresAt  time.Time
	// Error says why the session failed, when Status is StatusError, or
	// why its dev server is restarting (StatusRestarting).
	Error string
	// ErrorCode names the cause of Error when a client can act on it:
	// CodeMemoryLimit, CodeProcessLimit.
	ErrorCode string
	// Update is what a create that named a live session did to it; nil
	// when the create made a new session.
	Update *UpdateResult
	// Warnings are what the client should know about a new session's
	// dependencies (Create only): an old vite, a tolerated peer conflict,
	// a vite the service added.
	Warnings []Warning
}

// PreviewURL returns the public URL of session id's preview.
func (m *Manager) PreviewURL(id string) string { return m.previewURL(id).String() }

func (m *Manager) previewURL(id string) *url.URL {
	u := *m.public
	u.Host = "preview-" + id + "." + m.public.Host
	u.Path, u.RawPath, u.RawQuery, u.Fragment = "", "", "", ""
	return &u
}

// WSURL returns the public URL of session id's HMR socket.
func (m *Manager) WSURL(id string) string {
	u := m.previewURL(id)
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
		ErrorCode:  r.ErrorCode,
	}
}

// newSession makes the session of rec (its Dir is set here) with what it
// needs from this Manager.
func (m *Manager) newSession(rec Record) *session {
	rec.Dir = filepath.Join(m.opts.BaseDir, "preview-"+rec.ID)
	rec.Owner, rec.OwnerAddr = m.nodeID, m.nodeAddr
	return newSession(m.env, rec, m.previewURL(rec.ID), m.log)
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

// local returns the session id runs here, or nil.
func (m *Manager) local(id string) *session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[id]
}

// register adds the new session s, within the session limit.
func (m *Manager) register(s *session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return ErrClosed
	case m.sessions[s.id] != nil || m.claims[s.id] != nil:
		return fmt.Errorf("%w: session %s", errTaken, s.id)
	case len(m.sessions)+len(m.claims) >= m.opts.Limits.MaxSessions:
		return fmt.Errorf("%w: %d sessions", ErrLimit, m.opts.Limits.MaxSessions)
	}
	m.sessions[s.id] = s
	return nil
}

// unregister forgets s, so that requests no longer find it here.
func (m *Manager) unregister(s *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
}

// remove ends session s on this node: it is forgotten at once, then its
// process, its proxy's tunnels and its directory go. The store is the
// caller's business (see drop).
func (m *Manager) remove(ctx context.Context, s *session, why string) error {
	m.unregister(s)
	err := s.stop(ctx, why)
	s.log.Info("vitehost/preview: session removed", "why", why)
	return err
}

// drop removes session s everywhere: its record and files first (best
// effort: they expire anyway), so that no node starts it again, then its
// process and directory.
func (m *Manager) drop(ctx context.Context, s *session, why string) error {
	dctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := m.store.Delete(dctx, s.id, s.epoch())
	cancel()
	if err != nil && !errors.Is(err, ErrFenced) {
		s.log.Warn("vitehost/preview: delete record", "err", err)
	}
	return m.remove(ctx, s, why)
}

// NumSessions returns the number of sessions on this node, starting ones
// included.
func (m *Manager) NumSessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// janitorEvery is the longest pause between the janitor's rounds: expiry,
// hibernation, and on a node of several the check of its records
// (syncRecords).
const janitorEvery = 5 * time.Second

// janitorWorkers is how many sessions the janitor expires or hibernates
// at once: a stop is a process's stop and a store call, and a round may
// find many sessions idle or expired together.
const janitorWorkers = 8

func (m *Manager) runJanitor() {
	every := min(m.opts.TTL/4, janitorEvery)
	if idle := m.opts.IdleTimeout; idle > 0 {
		every = min(every, idle/4)
	}
	t := time.NewTicker(max(every, 50*time.Millisecond))
	defer t.Stop()
	// The sessions whose expiry the janitor began, until they are gone:
	// each is dropped in a goroutine of its own, which waits for one of
	// the janitor's slots, so that a session that does not stop holds up
	// neither the next round nor the others, and at most janitorWorkers
	// stop at once.
	dropping := map[*session]bool{}
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.syncNow:
			m.syncRecords()
		case now := <-t.C:
			all := m.all()
			listed := make(map[*session]bool, len(all))
			for _, s := range all {
				listed[s] = true
			}
			for s := range dropping {
				if !listed[s] {
					delete(dropping, s)
				}
			}
			for _, s := range all {
				switch idle := m.opts.IdleTimeout; {
				case s.expired(now):
					if !dropping[s] {
						dropping[s] = true
						m.loops.Go(func() { m.expire(s) })
					}
				case idle > 0 && s.sleepy(now, idle):
					m.hibernate(s, idle)
				}
			}
			if m.clustered() {
				m.syncRecords()
			}
		}
	}
}

// hibernate lets session s hibernate in the background when one of the
// janitor's slots is free; otherwise a later round tries again.
func (m *Manager) hibernate(s *session, idle time.Duration) {
	select {
	case m.janitorSlots <- struct{}{}:
	default:
		return
	}
	if !s.spawn(func() {
		defer func() { <-m.janitorSlots }()
		s.hibernate(idle)
	}) {
		<-m.janitorSlots
	}
}

// stepTimeout bounds how long the janitor waits for the expiry of one
// session: its record's deletion and its stop.
const stepTimeout = 30 * time.Second

// expire drops the expired session s for the janitor, in one of its slots:
// the wait is bounded by stepTimeout, then the slot is free, its stop goes
// on and Close waits for it.
func (m *Manager) expire(s *session) {
	select {
	case m.janitorSlots <- struct{}{}:
	case <-m.ctx.Done():
		return // Close stops it
	}
	ctx, cancel := context.WithTimeout(m.ctx, stepTimeout)
	err := m.drop(ctx, s, "expired")
	cancel()
	<-m.janitorSlots
	if err != nil && m.ctx.Err() == nil {
		s.log.Warn("vitehost/preview: the expired session is slow to stop", "err", err)
	}
	<-s.stopped
}

// all returns the sessions of this node.
func (m *Manager) all() []*session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	return out
}

// Close stops every session's dev server, removes their directories and
// returns when all of them are gone, or with ctx's error when ctx ends
// first (the stops then go on in the background). On a single node it
// deletes their records too; on a node of several (NodeAddr set) the
// records and files stay in the Store, and the other nodes take the
// sessions over when they are next requested. It returns the first error
// it met. It is safe to call more than once; every call waits for the
// same close.
func (m *Manager) Close(ctx context.Context) error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		go m.close(m.all())
	})
	select {
	case <-m.closeDone:
		return m.closeErr
	case <-ctx.Done():
		return fmt.Errorf("vitehost/preview: close: %w", ctx.Err())
	}
}

// close does Close's work in the background, so that a Close bounded by
// its context never leaves it half done.
func (m *Manager) close(all []*session) {
	defer close(m.closeDone)
	var (
		mu    sync.Mutex
		first error
	)
	note := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil && err != nil {
			first = err
		}
	}
	m.cancel()
	m.loops.Wait()
	m.deps.Stop() // creates waiting for an install give up
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() {
			if !m.clustered() {
				dctx, cancel := context.WithTimeout(ctx, storeTimeout)
				err := m.store.Delete(dctx, s.id, s.epoch())
				cancel()
				if err != nil && !errors.Is(err, ErrFenced) {
					note(fmt.Errorf("vitehost/preview: delete the record of %s: %w", s.id, err))
				}
			}
			note(m.remove(ctx, s, "manager closed"))
		})
	}
	wg.Go(m.forwardNodes.close)
	wg.Wait()
	m.running.Wait()
	// Sessions that a request registered while Close began.
	for _, s := range m.all() {
		note(m.remove(ctx, s, "manager closed"))
	}
	m.deps.Close()
	m.env.closeDisks()
	m.unlock()
	m.closeErr = first
}

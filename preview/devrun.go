package preview

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/vitehost/vitehost/preview/internal/launch"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

// This file is one run of a session's dev server: from its start (a
// create, a takeover, a wake) to its stop (a hibernation, the session's
// end), with the proxy in front of it and the warm-up that loads its
// modules.

// devRun is one run of a session's dev server. Its fields are set by
// startRun, before up is closed for those read by requests; stopRun ends
// it.
type devRun struct {
	ctx    context.Context // ends when the run is stopped (and with the session)
	cancel context.CancelFunc

	up     chan struct{} // closed when the dev server serves, or its start failed
	upOnce sync.Once
	err    error // why the start failed; set before up is closed

	server *vite.Server
	proxy  *ssrproxy.Proxy
	// slot is the directory of the spare runner the session's disk is
	// mounted over (moveInto), removed when the run ends; "" for none.
	slot   string
	warmed chan struct{} // closed when the warm-up is done, or was never begun

	wg       sync.WaitGroup // the warm-up and the watch
	stopOnce sync.Once
}

func newDevRun(parent context.Context) *devRun {
	ctx, cancel := context.WithCancel(parent)
	return &devRun{ctx: ctx, cancel: cancel, up: make(chan struct{}), warmed: make(chan struct{})}
}

// setUp closes up with err as the outcome of the start; only the first
// call counts.
func (r *devRun) setUp(err error) {
	r.upOnce.Do(func() {
		r.err = err
		close(r.up)
	})
}

// isUp reports whether the dev server of r serves.
func (r *devRun) isUp() bool {
	select {
	case <-r.up:
		return r.err == nil
	default:
		return false
	}
}

// startRun starts run r of the session's dev server with s.opts, in a
// spare runner when one fits, and returns once its page is served: up is
// closed as soon as the dev server listens, so that requests flow while the
// page loads. Its modules are fetched in the background meanwhile, as a
// browser would: the browser that opens the page next shares the work, the
// dependencies get optimized, and an update waits for the warm-up so that
// its edits bring HMR updates, and compile errors, even when no browser has
// loaded the modules. ctx is the caller's: the create's for the first run,
// the run's own for a wake.
func (s *session) startRun(ctx context.Context, r *devRun) (err error) {
	warming := false
	defer func() {
		if !warming {
			close(r.warmed)
		}
		r.setUp(err)
	}()
	if err := s.setStatus(ctx, StatusStarting, ""); err != nil {
		return err
	}
	began := time.Now()
	// Spares start once the page is loaded (a spare's warm-up takes CPU):
	// to make up for the one taken here, or the first.
	s.env.spares.begin()
	defer s.env.spares.end()
	var sp *vite.Spare
	if s.env.spares.fit(s.modules()) {
		if sp = s.env.spares.take(!s.trusted); sp != nil {
			if err := s.moveInto(r, sp); err != nil {
				s.log.Warn("vitehost/preview: start without the spare runner", "err", err)
				s.env.spares.discard(sp)
				sp = nil
			}
		}
	}
	// A few starts at a time (starts.go), a spare taken or not (the demand
	// for spares counts the session as it arrives): this one keeps its
	// place until its page's modules are warm, at most startHold.
	leave, err := s.env.starts.enter(ctx, startHold)
	if err != nil {
		if sp != nil {
			s.env.spares.discard(sp)
		}
		return err
	}
	defer func() {
		if !warming {
			leave()
		}
	}()
	var server *vite.Server
	if sp != nil {
		server, err = sp.Start(r.ctx, s.dir, s.opts)
	} else {
		server, err = vite.Start(r.ctx, s.dir, s.opts)
	}
	if err != nil {
		if sp != nil {
			// A Start that failed before it took the spare (its preflight:
			// a package.json the tenant replaced) leaves it running.
			s.env.spares.discard(sp)
		}
		if s.disk != nil {
			// The project's code may have filled the disk while it
			// loaded: the failure then says which limit it hit.
			if full := s.disk.Full(); full != nil {
				err = fmt.Errorf("%w: %w", full, err)
			}
		}
		return devServerFailure(s.log, err)
	}
	r.server = server
	r.proxy = ssrproxy.New(server, &ssrproxy.Options{
		Transport: s.env.transport, Logger: s.log, OnTraffic: s.touch,
		// Anyone with the preview URL reaches these sockets: Vite's and
		// the project's own get the same bound (Limits.MaxWebSocketMessage).
		MaxViteMessage: s.env.maxMessage,
		MaxAppMessage:  s.env.maxMessage,
		// The dev server runs the tenant's code: its answers must not carry
		// the marks nodes read from one another (forward.go).
		ModifyResponse: dropServiceHeaders,
	})
	t := server.Targets()
	s.state.Lock()
	s.rec.HTTPURL, s.rec.HMRURL = urlString(t.HTTP), urlString(t.HMR)
	s.state.Unlock()
	r.setUp(nil)
	s.proxy.Store(r.proxy)
	listening := time.Now()
	s.env.metrics.observeStart(listening.Sub(began))

	// What the session's pages asked for before it hibernated loads at
	// once, beside the page (warmlist.go). A session that shares its
	// optimized dependencies waits for them.
	w := newWarmer(r.ctx, s.env.client, t.HTTP, s.shared != "")
	w.visit(s.warm.list()...)
	entries, err := loadPage(r.ctx, s.env.client, t.HTTP)
	if err != nil {
		s.log.Warn("vitehost/preview: the page is not served", "err", err)
	}
	warming = true
	r.wg.Go(func() {
		defer close(r.warmed)
		defer leave()
		start := time.Now()
		w.visit(entries...)
		w.wait()
		s.log.Debug("vitehost/preview: modules warmed", "took", time.Since(start).Round(time.Millisecond))
		if s.shared != "" && r.ctx.Err() == nil {
			if err := launch.ShareOptimized(filepath.Join(s.dir, ".vite-cache", "deps"), s.shared); err != nil {
				s.log.Warn("vitehost/preview: share the optimized dependencies", "err", err)
			}
			s.env.spares.refill() // a spare may start now
		}
	})
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if err := s.setStatus(ctx, StatusActive, ""); err != nil {
		return err
	}
	r.wg.Go(func() { s.watch(r) })
	s.log.Debug("vitehost/preview: dev server serves", "start", listening.Sub(began).Round(time.Millisecond),
		"page", time.Since(listening).Round(time.Millisecond), "spare", sp != nil)
	return nil
}

// modules returns where the sandboxed session's dependencies are
// installed, or "" without the sandbox.
func (s *session) modules() string {
	if s.opts.Sandbox == nil {
		return ""
	}
	return s.opts.Sandbox.Modules
}

// watch marks the session failed when the dev server of run r stops for
// good (the vite package restarts it after a crash; this is when it gave
// up), or reaches a limit of its sandbox, unless the run was stopped.
func (s *session) watch(r *devRun) {
	limits := time.NewTicker(limitPoll)
	defer limits.Stop()
	up, unsubscribe := r.server.Subscribe()
	defer unsubscribe()
	limitPID := 0 // the run that was seen at a limit one poll ago
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-limits.C:
			err := r.server.LimitErr()
			if err == nil && s.disk != nil {
				err = s.disk.Full()
			}
			pid := r.server.PID()
			if err == nil || pid == 0 || pid != limitPID {
				// A kill of the dev server itself is a crash, which the
				// vite package restarts or gives up on: wait a poll to
				// tell it from a kill that the dev server survives.
				limitPID = 0
				if err != nil {
					limitPID = pid
				}
				continue
			}
			// A limit that a process other than the dev server's own hit
			// (esbuild killed at the memory limit, threads refused at the
			// process limit), and it still runs: the session fails alone,
			// and frees what it held.
			code, msg := s.limitMessage(err)
			s.log.Error("vitehost/preview: "+msg, "err", err)
			s.setStatusCode(context.Background(), StatusError, code, msg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			r.server.Stop(ctx)
			cancel()
			return
		case c := <-s.crashes:
			if r.server.Targets().HTTP != nil {
				continue // back up already: Subscribe said so, or will
			}
			s.setStatusCode(context.Background(), StatusRestarting, c.code, c.message)
		case t, ok := <-up:
			if !ok {
				up = nil // done: Done says why
				continue
			}
			if t.HTTP != nil && s.record().Status == StatusRestarting {
				s.setStatus(context.Background(), StatusActive, "")
			}
		case <-r.server.Done():
			s.serverGone(r)
			return
		}
	}
}

// limitPoll is how often a session checks its sandbox's limits.
const limitPoll = 2 * time.Second

// serverGone records that the dev server of run r stopped for good.
func (s *session) serverGone(r *devRun) {
	if r.ctx.Err() != nil {
		return // the session stopped it
	}
	// The record's message reaches clients: the reason without the host's
	// paths; the log gets the whole error.
	msg, code := "dev server stopped", ""
	err := r.server.Err()
	if s.disk != nil && err != nil {
		// It may have failed for want of room that its own code took.
		if full := s.disk.Full(); full != nil {
			err = fmt.Errorf("%w: %w", full, err)
		}
	}
	if err != nil {
		msg += ": " + devServerReason(err)
	}
	if errors.Is(err, sandbox.ErrMemoryLimit) || errors.Is(err, sandbox.ErrPidsLimit) {
		code, msg = s.limitMessage(err)
		msg += fmt.Sprintf("; it was restarted %d times and killed at every run", s.opts.MaxLimitCrashes)
	}
	s.log.Error("vitehost/preview: dev server stopped", "err", err)
	// A fenced write here is found by the janitor's record check.
	s.setStatusCode(context.Background(), StatusError, code, msg)
}

// stopRun ends run r: its proxy's tunnels (the browsers' HMR sockets
// close, and their Vite clients start asking whether the server is back),
// its dev server, and the warm-up. It returns once the dev
// server is gone; r.wg.Wait waits for the rest (a tab that does not answer
// the close frame holds the proxy's Close a second). Call it once startRun
// has returned; later calls do nothing.
func (s *session) stopRun(r *devRun) {
	r.stopOnce.Do(func() {
		r.cancel()
		if r.proxy != nil {
			r.wg.Go(r.proxy.Close)
		}
		if r.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := r.server.Stop(ctx); err != nil {
				s.log.Warn("vitehost/preview: stop dev server", "err", err)
			}
			cancel()
		}
		if r.slot != "" {
			if err := removeDir(r.slot); err != nil {
				s.log.Warn("vitehost/preview: remove the spare's directory", "err", err)
			}
		}
	})
}

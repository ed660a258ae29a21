package preview

import (
	"context"
	"time"
)

// This file is how a session sleeps and wakes. A session that nothing has
// reached for Options.IdleTimeout (no request to its preview, no WebSocket
// message through its proxy, no update) hibernates: its dev server stops
// and its process is gone, its directory stays, with the optimizer's cache
// in it. The next request for it wakes it: the dev server starts again on
// the same files and finds its dependencies optimized.

// touch notes that the session is in use. It is called for every request
// and every piece of WebSocket traffic, so it costs a clock read and, at
// most once a millisecond, an atomic store.
func (s *session) touch() {
	now := time.Now().UnixNano()
	if now-s.active.Load() > int64(time.Millisecond) {
		s.active.Store(now)
	}
}

// idleFor returns how long nothing has reached the session at now.
func (s *session) idleFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, s.active.Load()))
}

// sleepy reports whether the session's dev server serves and nothing has
// reached it for idle: the janitor's cheap check before a hibernation.
func (s *session) sleepy(now time.Time, idle time.Duration) bool {
	if s.idleFor(now) < idle || !s.isReady() || s.startErr != nil {
		return false
	}
	s.state.Lock()
	defer s.state.Unlock()
	return !s.closing && s.cur != nil && s.cur.isUp() && s.rec.Status == StatusActive
}

// spawn runs f in the background for the session, unless it is stopping;
// teardown waits for it.
func (s *session) spawn(f func()) bool {
	s.state.Lock()
	defer s.state.Unlock()
	if s.closing {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
	return true
}

// hibernate stops the dev server of the session when it is still idle
// for idle: the proxy first (the browsers' HMR sockets close, and their
// Vite clients start asking whether the server is back, which wakes it),
// then the process; the files stay. It does nothing when the session is in
// use: an update holds its dev server, it wakes, or it moves already.
//
// The hibernation is a move (see session): the state changes at once,
// under s.state, and the process stop and the status write come after,
// with no lock held. A request meanwhile wakes the session, and the wake
// waits for the move to end (the dev server gone, the status stored).
func (s *session) hibernate(idle time.Duration) {
	s.state.Lock()
	r := s.cur
	var moved chan struct{}
	if s.isReady() && r != nil && r.isUp() && s.rec.Status == StatusActive && s.idleFor(time.Now()) >= idle {
		moved = s.beginMoveLocked()
	}
	if moved != nil {
		// From here on a request wakes the session; the wake waits for
		// this move, which ends once the dev server is gone.
		s.cur = nil
		s.proxy.Store(nil)
		s.rec.HTTPURL, s.rec.HMRURL = "", ""
	}
	s.state.Unlock()
	if moved == nil {
		return
	}
	began := time.Now()
	unused := s.idleFor(began)
	s.stopRun(r)
	if err := s.setStatus(s.ctx, StatusHibernated, ""); err != nil {
		s.log.Warn("vitehost/preview: store the hibernated status", "err", err) // fenced: the janitor's record check stops it
	}
	s.endMove(moved) // a wake may start: the dev server is gone
	r.wg.Wait()
	s.log.Info("vitehost/preview: session hibernated", "idle", unused.Round(time.Millisecond), "stop", time.Since(began).Round(time.Millisecond))
}

// serving returns the run of the session's dev server once it serves,
// waking the session when it hibernates (for the reason why, which the log
// says). It waits with ctx: the caller bounds the wait, while the start
// goes on without it.
func (s *session) serving(ctx context.Context, why string) (*devRun, error) {
	for {
		s.state.Lock()
		r := s.cur
		if r == nil {
			r = s.wakeLocked(why)
		}
		s.state.Unlock()
		if r == nil {
			return nil, errStopped
		}
		select {
		case <-r.up:
		case <-s.stopped:
			return nil, errStopped
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			if s.ctx.Err() != nil {
				return nil, errStopped
			}
			return nil, r.err
		}
		if s.current() == r {
			return r, nil
		}
		// It hibernated again meanwhile (it is served only while it is
		// used, and the caller has not used it yet): wake it once more.
	}
}

// servingTurn waits for the session's dev server to serve, waking it, and
// for the updates before this one to stage; it returns the serving run,
// which neither hibernates nor moves until the caller ends the turn and
// its use (endTurn, or leaves the turn then doneUsing). A move under way
// (a record being written again) or a dependency change that has not
// switched runs yet is waited for with ctx, as a wake is.
func (s *session) servingTurn(ctx context.Context, why string) (*devRun, error) {
	for {
		r, err := s.serving(ctx, why)
		if err != nil {
			return nil, err
		}
		if err := s.takeTurn(ctx); err != nil {
			return nil, err
		}
		s.state.Lock()
		wait, ok := s.moving, s.cur == r
		if wait == nil {
			wait = s.switching
		}
		if ok && wait == nil {
			s.users++
		}
		s.state.Unlock()
		if ok && wait == nil {
			return r, nil
		}
		<-s.turn
		if wait != nil {
			select {
			case <-wait:
			case <-s.stopped:
				return nil, errStopped
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

// wakeLocked begins a wake of the hibernated session: a new run whose
// start goes on in the background, owned by the session, once the move
// under way (the hibernation before it) has ended. It returns nil when the
// session stops. The caller holds s.state.
func (s *session) wakeLocked(why string) *devRun {
	if s.closing {
		return nil
	}
	s.log.Info("vitehost/preview: waking the session", "for", why)
	r := newDevRun(s.ctx)
	s.cur = r
	after := s.moving
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.wake(r, after)
	}()
	return r
}

// wake starts run r once the move before it (after, nil for none: the
// hibernation, or a rewrite of the record) has ended. A wake that fails
// leaves the session failed (StatusError), as a dev server that stopped
// for good does: requests then say so instead of starting it again and
// again.
func (s *session) wake(r *devRun, after chan struct{}) {
	began := time.Now()
	var err error
	if after != nil {
		select {
		case <-after:
		case <-r.ctx.Done():
			err = r.ctx.Err()
		}
	}
	if err == nil {
		err = s.startRun(r.ctx, r)
	}
	if err == nil {
		s.log.Info("vitehost/preview: session woke", "took", time.Since(began).Round(time.Millisecond))
		return
	}
	r.setUp(err)
	s.stopRun(r)
	r.wg.Wait()
	if s.ctx.Err() != nil {
		return // the session stops
	}
	s.log.Error("vitehost/preview: wake failed", "err", err)
	// A fenced write here is found by the janitor's record check.
	s.setStatus(context.Background(), StatusError, "waking the dev server failed: "+err.Error())
}

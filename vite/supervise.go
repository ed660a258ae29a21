package vite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/sandbox"
)

// Restart backoff: the first restart after a crash waits minRestartDelay,
// each failed one doubles the wait up to maxRestartDelay, and a run that
// stayed up for healthyRun starts the sequence over.
const (
	minRestartDelay = 250 * time.Millisecond
	maxRestartDelay = 30 * time.Second
	healthyRun      = 30 * time.Second
)

// publish makes a ready run current: hot files first (hot.hmr before hot,
// so that a reader that sees hot finds hot.hmr), then Targets, then the
// subscribers.
func (s *Server) publish(st *state) error {
	if f := s.opts.HotFile; f != "" {
		if err := hotfile.Write(hotfile.HMRPath(f), st.targets.HMR); err != nil {
			return err
		}
		if err := hotfile.Write(f, st.targets.HTTP); err != nil {
			hotfile.Remove(hotfile.HMRPath(f))
			return err
		}
	}
	s.cur.Store(st)
	s.subs.Send(st.targets)
	return nil
}

// unpublish withdraws the current run: Targets, hot files, subscribers.
func (s *Server) unpublish() {
	s.cur.Store(nil)
	if f := s.opts.HotFile; f != "" {
		if err := hotfile.Remove(f); err != nil {
			s.log.Warn("vitehost/vite: remove hot file", "err", err)
		}
		if err := hotfile.Remove(hotfile.HMRPath(f)); err != nil {
			s.log.Warn("vitehost/vite: remove hot file", "err", err)
		}
	}
	s.subs.Send(hotfile.Targets{})
}

// supervise owns the running child until the Server is done: it follows
// the child's protocol lines, restarts it after a crash, and stops it when
// the lifetime context ends.
func (s *Server) supervise(c *child) {
	defer close(s.done)
	defer s.subs.Close()
	delay := minRestartDelay
	limitCrashes := 0 // in a row
	for {
		crashed := s.watch(c)
		if !crashed {
			s.finish(c, nil)
			return
		}
		ran := time.Since(c.started)
		s.unpublish()
		err := c.stop(context.Background(), s.opts.StopTimeout) // what is left of its group
		if err != nil {
			s.log.Error("vitehost/vite: stop the rest of a crashed dev server", "err", err)
		}
		limit := c.limitErr()
		crash := withLimit(fmt.Errorf("%w unexpectedly (%v)", ErrExited, c.err), limit)
		s.log.Error("vitehost/vite: dev server crashed", "err", crash, "ran", ran.Round(time.Millisecond), "output", s.out.tail())
		if ran >= healthyRun {
			delay = minRestartDelay
			limitCrashes = 0
		}
		if limit != nil {
			limitCrashes++
		}
		giveUp := s.opts.NoRestart || (s.opts.MaxLimitCrashes > 0 && limitCrashes > s.opts.MaxLimitCrashes)
		if s.opts.OnCrash != nil {
			s.opts.OnCrash(crash, !giveUp)
		}
		if giveUp {
			s.finish(nil, crash)
			return
		}
		if c, err = s.restart(&delay, &limitCrashes); c == nil {
			s.finish(nil, err)
			return
		}
	}
}

// watch follows a ready child until it exits (true) or the Server's
// lifetime ends (false).
func (s *Server) watch(c *child) bool {
	for {
		select {
		case m := <-c.events:
			s.onEvent(m)
		case <-c.exited:
			if s.ctx.Err() != nil {
				return false // exited because it was told to
			}
			return true
		case <-s.ctx.Done():
			return false
		}
	}
}

// onEvent handles a protocol line of a ready child: an event, or a new
// token after Vite restarted itself (a config file edit). The batches'
// answers go to their holds (child.deliver).
func (s *Server) onEvent(m message) {
	switch m.Kind {
	case msgEvent:
		s.noteWatcher(m.event)
		if s.opts.OnEvent != nil {
			s.opts.OnEvent(m.event)
		}
		return
	case msgToken, msgVite:
	default:
		return
	}
	old := s.cur.Load()
	if old == nil || old.token == m.Token {
		return
	}
	st := *old
	st.token = m.Token
	s.cur.Store(&st)
	s.log.Info("vitehost/vite: dev server restarted itself with a new HMR token")
	s.subs.Send(st.targets)
}

// restart starts the dev server again after a crash, waiting *delay before
// each try and doubling it after each failure; a start that a sandbox
// limit ended counts in *limitCrashes. It returns a nil child when the
// lifetime ends first (nil error) or when it gives up (the last start's
// error).
func (s *Server) restart(delay *time.Duration, limitCrashes *int) (*child, error) {
	for {
		s.log.Info("vitehost/vite: restarting the dev server", "in", *delay)
		t := time.NewTimer(*delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		*delay = min(2**delay, maxRestartDelay)
		c, st, err := s.launch(s.ctx)
		if err == nil {
			if err = s.publish(st); err == nil {
				s.log.Info("vitehost/vite: dev server restarted", "url", st.targets.HTTP, "hmr", st.targets.HMR)
				return c, nil
			}
			c.stop(context.Background(), s.opts.StopTimeout)
			s.unpublish()
		}
		if s.ctx.Err() != nil {
			return nil, nil
		}
		s.log.Error("vitehost/vite: restart failed", "err", err, "output", s.out.tail())
		if !errors.Is(err, sandbox.ErrMemoryLimit) && !errors.Is(err, sandbox.ErrPidsLimit) {
			continue
		}
		*limitCrashes++
		giveUp := s.opts.MaxLimitCrashes > 0 && *limitCrashes > s.opts.MaxLimitCrashes
		if s.opts.OnCrash != nil {
			s.opts.OnCrash(err, !giveUp)
		}
		if giveUp {
			return nil, err
		}
	}
}

// finish stops c (when not nil), withdraws the run and records why the
// Server is done.
func (s *Server) finish(c *child, err error) {
	if c != nil {
		if serr := c.stop(context.Background(), s.opts.StopTimeout); serr != nil {
			s.log.Error("vitehost/vite: stop dev server", "err", serr)
		}
	}
	s.unpublish()
	s.removeSocketDir()
	switch {
	case err != nil:
		s.err = err
	case !s.stopped.Load():
		s.err = context.Cause(s.ctx) // Start's context ended
	}
}

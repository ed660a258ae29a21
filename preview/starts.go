package preview

import (
	"context"
	"slices"
	"sync"
	"time"
)

// This file admits the starts of dev servers a few at a time. A start and
// the warm-up of its page are CPU work (about 0.3 s of a core in a spare
// runner, several times that in a fresh one): twenty started at once on
// two cores share them and all finish together, at the end of the burst.
// Admitted in the order they came, as many at a time as there are cores,
// the first are served early and half of them by the burst's half-time,
// for the same total.

// startHold bounds how long a start keeps its place, from its admission:
// the start of a real project's many modules, or one whose config never
// returns (a tenant's), goes on while the next start goes. A spare's start
// and its page's warm-up take about 0.3 s of a core; a fresh runner's
// several times that.
const startHold = 2 * time.Second

// starts admits at most n dev server starts at once, first come first
// served.
type starts struct {
	mu      sync.Mutex
	free    int
	waiting []chan struct{} // closed when its caller has a place; oldest first
}

func newStarts(n int) *starts {
	return &starts{free: max(n, 1)}
}

// enter waits, with ctx, for a place among the starts, behind the callers
// that came before; it returns the function that gives the place back,
// safe to call more than once, and called by itself after hold.
func (a *starts) enter(ctx context.Context, hold time.Duration) (leave func(), err error) {
	a.mu.Lock()
	if a.free > 0 && len(a.waiting) == 0 {
		a.free--
		a.mu.Unlock()
		return a.leaver(hold), nil
	}
	admitted := make(chan struct{})
	a.waiting = append(a.waiting, admitted)
	a.mu.Unlock()
	select {
	case <-admitted:
		return a.leaver(hold), nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	if i := slices.Index(a.waiting, admitted); i >= 0 {
		a.waiting = slices.Delete(a.waiting, i, i+1)
		a.mu.Unlock()
		return nil, ctx.Err()
	}
	a.mu.Unlock()
	a.release() // admitted as ctx ended: the place goes on
	return nil, ctx.Err()
}

// leaver returns the release of one place, done once: by the caller, or
// after hold.
func (a *starts) leaver(hold time.Duration) func() {
	var once sync.Once
	t := time.AfterFunc(hold, func() { once.Do(a.release) })
	return func() {
		t.Stop()
		once.Do(a.release)
	}
}

// release gives a place to the oldest waiter, or back to the free ones.
func (a *starts) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiting) > 0 {
		close(a.waiting[0])
		a.waiting = a.waiting[1:]
		return
	}
	a.free++
}

// queued returns how many callers wait for a place.
func (a *starts) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.waiting)
}

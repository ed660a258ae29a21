package preview

import (
	"context"
	"sync"
	"time"
)

// This file is the cache in front of the readiness checks. /readyz needs
// no token, and its sandbox check starts a bubblewrap sandbox: run per
// request, 32 anonymous clients started 150 sandboxes a second and slowed
// every session of the node. So the checks run at most once every
// readyEvery, one run at a time, and every caller in between shares the
// last result.

// readyEvery is how long a readiness result is reused.
const readyEvery = 3 * time.Second

// readyProbe is the outcome of one run of the readiness checks.
type readyProbe struct {
	checks  map[string]string // check name: "ok" or what is wrong
	sandbox string            // sandboxInfo
}

// readiness runs the readiness checks for many callers: at most once per
// every, one run at a time. The zero value is not usable; newReadiness
// makes one.
type readiness struct {
	every time.Duration

	mu      sync.Mutex
	last    readyProbe
	at      time.Time     // when last was taken; zero before the first run
	running chan struct{} // closed when the run under way ends; nil when none runs
	runs    int           // runs started, for the tests
}

func newReadiness(every time.Duration) *readiness { return &readiness{every: every} }

// get returns a result no older than every: the last one, the one of the
// run under way (waited for until ctx ends), or that of a run it starts.
// A run goes on when the caller that started it leaves, so that those
// who share it get its result; it is bounded by the checks' own timeouts.
func (c *readiness) get(ctx context.Context, run func(context.Context) readyProbe) (readyProbe, error) {
	for {
		c.mu.Lock()
		if !c.at.IsZero() && time.Since(c.at) < c.every {
			res := c.last
			c.mu.Unlock()
			return res, nil
		}
		if running := c.running; running != nil {
			c.mu.Unlock()
			select {
			case <-running:
				continue // its result is fresh
			case <-ctx.Done():
				return readyProbe{}, ctx.Err()
			}
		}
		done := make(chan struct{})
		c.running = done
		c.runs++
		c.mu.Unlock()

		res := run(context.WithoutCancel(ctx))

		c.mu.Lock()
		c.last, c.at, c.running = res, time.Now(), nil
		c.mu.Unlock()
		close(done)
		return res, nil
	}
}

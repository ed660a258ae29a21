package deps

import (
	"context"
	"sync"
)

// installQueue lets at most n dependency installs run at once and hands
// the free slots out in the order the installs asked for them. A waiter
// whose context ends leaves the queue; a slot is never lost to it.
type installQueue struct {
	n int

	mu      sync.Mutex
	running int
	waiting []chan struct{} // closed when the slot is handed over, first come first served
}

func newInstallQueue(n int) *installQueue { return &installQueue{n: n} }

// acquire waits for a slot and returns the function that frees it, or
// ctx's error when ctx ends first.
func (q *installQueue) acquire(ctx context.Context) (release func(), err error) {
	q.mu.Lock()
	if q.running < q.n && len(q.waiting) == 0 {
		q.running++
		q.mu.Unlock()
		return q.releaser(), nil
	}
	turn := make(chan struct{})
	q.waiting = append(q.waiting, turn)
	q.mu.Unlock()

	select {
	case <-turn:
		return q.releaser(), nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, w := range q.waiting {
		if w == turn {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			return nil, ctx.Err()
		}
	}
	// The slot was handed over as ctx ended: pass it on.
	q.handOver()
	return nil, ctx.Err()
}

// releaser returns the function that frees the caller's slot, once.
func (q *installQueue) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			q.handOver()
		})
	}
}

// handOver gives a freed slot to the first waiter, or frees it; q.mu is
// held.
func (q *installQueue) handOver() {
	if len(q.waiting) > 0 {
		close(q.waiting[0])
		q.waiting = q.waiting[1:]
		return
	}
	q.running--
}

// counts returns the installs running and waiting, for the metrics.
func (q *installQueue) counts() (running, waiting int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, len(q.waiting)
}

package preview

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// This file bounds the request bodies a node holds at once. Each API
// request holds its body, and the files decoded from it, until it is done;
// sixteen concurrent 33 MiB updates took the service to 2.48 GB. The
// budget counts the bytes of the bodies being read or served
// (Limits.MaxBytesInFlight); a request waits for its share before its body
// is read.

// DefaultMaxBytesInFlight is the default of Limits.MaxBytesInFlight:
// three requests of the largest size at once, or many small ones.
const DefaultMaxBytesInFlight = 128 << 20

// bodyWait bounds how long a request waits for its share of
// Limits.MaxBytesInFlight before it is answered 503.
const bodyWait = 30 * time.Second

// byteBudget is a semaphore of bytes that serves its waiters in order of
// arrival, so that a large request is not passed over for ever by small
// ones.
type byteBudget struct {
	max  int64
	wait time.Duration // how long acquire waits at most

	mu      sync.Mutex
	used    int64
	peak    int64     // the most used at once, for the tests
	waiters list.List // of *budgetWaiter, in order of arrival
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when n is granted
}

func newByteBudget(max int64, wait time.Duration) *byteBudget {
	return &byteBudget{max: max, wait: wait}
}

// acquire takes n bytes of the budget (at most all of it), waiting until
// they are free, ctx ends or b.wait has passed (context.DeadlineExceeded).
// It returns the bytes it took, for release.
func (b *byteBudget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.max)
	b.mu.Lock()
	if n == 0 || b.waiters.Len() == 0 && b.used+n <= b.max {
		b.take(n)
		b.mu.Unlock()
		return n, nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	elem := b.waiters.PushBack(w)
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	select {
	case <-w.ready:
		// Granted meanwhile: give it back.
		b.used -= n
	default:
		b.waiters.Remove(elem)
	}
	b.grant() // those behind it may fit now
	b.mu.Unlock()
	return 0, ctx.Err()
}

// release returns n bytes that acquire took.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.used -= n
	b.grant()
	b.mu.Unlock()
}

// take counts n bytes as used; b.mu is held.
func (b *byteBudget) take(n int64) {
	b.used += n
	b.peak = max(b.peak, b.used)
}

// grant hands the bytes that are free to the waiters at the front, in
// order, as long as they fit; b.mu is held.
func (b *byteBudget) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.used+w.n > b.max {
			return
		}
		b.take(w.n)
		b.waiters.Remove(e)
		close(w.ready)
	}
}

// inUse returns the bytes in use, for the metrics.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

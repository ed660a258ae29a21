package preview

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStartsAdmitsAFewInOrder checks the admission of starts: n at once,
// the next once one leaves, in the order they asked; a caller whose
// context ends while it waits gets its error and takes no place; leave
// gives a place back once however often it is called.
func TestStartsAdmitsAFewInOrder(t *testing.T) {
	a := newStarts(2)
	ctx, end := context.WithCancel(context.Background())
	var waiters sync.WaitGroup
	defer func() {
		end() // the waiters give their places back, or stop waiting
		waiters.Wait()
	}()
	first, err := a.enter(ctx, wait)
	require.NoError(t, err)
	second, err := a.enter(ctx, wait)
	require.NoError(t, err)

	// A third waits; one whose context ends gives up without a place.
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = a.enter(cctx, wait)
	assert.ErrorIs(t, err, context.Canceled)

	admitted := make(chan int, 3)
	for i := range 3 {
		queued := make(chan struct{})
		waiters.Go(func() {
			close(queued)
			leave, err := a.enter(ctx, wait)
			if err == nil {
				admitted <- i
				defer leave()
				<-ctx.Done() // keeps its place until the test ends
			}
		})
		<-queued
		// Each waiter is in line before the next asks.
		require.Eventually(t, func() bool { return a.queued() == i+1 }, wait, time.Millisecond)
	}
	select {
	case i := <-admitted:
		t.Fatalf("waiter %d admitted while two starts hold the places", i)
	default:
	}
	first()
	first() // once only
	assert.Equal(t, 0, <-admitted, "the first to ask goes first")
	select {
	case i := <-admitted:
		t.Fatalf("waiter %d admitted by a second leave of the same start", i)
	default:
	}
	second()
	assert.Equal(t, 1, <-admitted)

	// A start that keeps its place past its hold gives it up: the third
	// waiter goes once the second's hold (short) ends.
	b := newStarts(1)
	_, err = b.enter(ctx, time.Millisecond)
	require.NoError(t, err)
	leave, err := b.enter(ctx, wait)
	require.NoError(t, err, "admitted once the first one's hold ran out")
	leave()
}

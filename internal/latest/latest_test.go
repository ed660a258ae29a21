package latest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubscribers(t *testing.T) {
	var s Subscribers[int]
	s.Send(0) // nobody listens

	a, cancelA := s.Subscribe()
	b, cancelB := s.Subscribe()
	s.Send(1)
	s.Send(2) // replaces 1 for a subscriber that did not read
	assert.Equal(t, 2, <-a)
	assert.Equal(t, 2, <-b)

	cancelA()
	cancelA()
	_, ok := <-a
	assert.False(t, ok, "a cancelled subscription's channel is closed")
	s.Send(3)
	assert.Equal(t, 3, <-b)

	s.Close()
	s.Close()
	_, ok = <-b
	assert.False(t, ok, "Close closes the channels")
	cancelB() // after Close: nothing to close twice

	c, cancelC := s.Subscribe()
	_, ok = <-c
	require.False(t, ok, "a subscription after Close is closed")
	cancelC()
}

// Package latest hands each new value of something to every subscriber,
// keeping only the newest value for one that reads late: the subscriptions
// of hotfile.Watcher and vite.Server.
package latest

import "sync"

// Subscribers are the channels that follow a value. The zero Subscribers
// is ready to use; its methods may be called from any goroutine.
type Subscribers[T any] struct {
	mu     sync.Mutex
	subs   map[chan T]struct{}
	closed bool
}

// Subscribe returns a channel that receives each value that Send sends
// from now on, and a function that ends the subscription and closes the
// channel. The channel holds only the newest value: a subscriber that
// reads late gets it, and one that does not read never blocks Send. After
// Close, Subscribe returns a closed channel. The function may be called
// more than once.
func (s *Subscribers[T]) Subscribe() (<-chan T, func()) {
	ch := make(chan T, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	if s.subs == nil {
		s.subs = map[chan T]struct{}{}
	}
	s.subs[ch] = struct{}{}
	return ch, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// Send gives v to every subscriber, in place of a value not read yet.
func (s *Subscribers[T]) Send(v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case <-ch:
		default:
		}
		ch <- v
	}
}

// Close closes every subscription's channel. It is safe to call more than
// once.
func (s *Subscribers[T]) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		close(ch)
	}
	s.subs, s.closed = nil, true
}

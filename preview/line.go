package preview

import "context"

// This file is the order in which a session's updates reach its store and
// its disk. An update takes the session's turn (servingTurn) only to check
// and stage its files; before it ends the turn it takes its place in the
// commit line, so the line's order is the turns' order. In the line it
// writes the store, then the disk, then has the dev server take the files,
// each after the update before it did: the store and the disk get the
// updates in one order, and no turn is held across a store call. The next
// update checks and stages meanwhile.

// enterLine puts the caller in the commit line: it returns the done
// channel of the update before it (nil for none) and its own, which the
// caller passes to leaveLine once its commit is done or given up. The
// caller holds the turn, which guards the line's tail.
func (s *session) enterLine() (prev, done chan struct{}) {
	done = make(chan struct{})
	prev, s.lineTail = s.lineTail, done
	return prev, done
}

// waitLine waits until the update before the caller in the commit line
// (prev) is done. A caller that gives up still leaves the line with
// leaveLine, so that the one after it waits for prev too.
func (s *session) waitLine(ctx context.Context, prev chan struct{}) error {
	if prev == nil {
		return nil
	}
	select {
	case <-prev:
		return nil
	case <-s.stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leaveLine ends the caller's place in a line: done is closed once prev,
// the place before it, is, so that who comes next never overtakes one
// still at work. It serves the dependency changes' line too.
func leaveLine(prev <-chan struct{}, done chan struct{}) {
	if prev == nil {
		close(done)
		return
	}
	select {
	case <-prev:
		close(done)
	default:
		go func() {
			<-prev
			close(done)
		}()
	}
}

// Package closing ties a request in flight to the shutdown of the handler
// that serves it, as ssrproxy.Proxy and preview's forwarder both need: Close
// cancels what is under way and gives a write to a client that stopped
// reading a short grace, then waits for the request to end.
package closing

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Bind returns a context that ends with r's and when closing ends; in the
// latter case the writes to w get at most grace more. wg counts the work
// that closing's end starts, so that a Close that waits on wg also waits for
// it. The caller calls done when the request is over, exactly once.
func Bind(r *http.Request, w http.ResponseWriter, closing context.Context, wg *sync.WaitGroup, grace time.Duration) (ctx context.Context, done func()) {
	ctx, cancel := context.WithCancel(r.Context())
	rc := http.NewResponseController(w)
	wg.Add(1) // for the AfterFunc, which Close waits for like the rest
	stop := context.AfterFunc(closing, func() {
		defer wg.Done()
		cancel()
		rc.SetWriteDeadline(time.Now().Add(grace))
	})
	return ctx, func() {
		if stop() {
			wg.Done() // it will not run
		}
		cancel()
	}
}

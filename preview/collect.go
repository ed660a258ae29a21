package preview

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vitehost/vitehost/ssrproxy"
)

// settle is how long an update keeps listening after Vite's last message:
// Vite's watcher (chokidar) throttles each path's events to one per 50 ms,
// so the messages for one batch of writes arrive within that of each other.
const settle = 75 * time.Millisecond

// errorWait is how long an update waits for Vite's error message once a
// module it re-fetched answered with a server error.
const errorWait = time.Second

// collect gathers what Vite sent after a write: it waits up to HMRWait for
// the first update, full reload or error, then until the messages stop. For
// each hot-updated JavaScript module it fetches the new version the way the
// browser's HMR client does, so that a compile error is found (and sent as
// an error message) even when no browser is open. The time from written
// (when the files landed) to Vite's first message goes to the metrics.
func (s *session) collect(ctx context.Context, msgs <-chan hmrMessage, written time.Time) HMR {
	res := HMR{Type: HMRNone, Paths: []string{}}
	first := time.NewTimer(s.env.hmrWait)
	defer first.Stop()
	var quiet <-chan time.Time
	fetched := make(chan int, 64)
	pending := 0
	seen := map[string]bool{}
	addPath := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			res.Paths = append(res.Paths, p)
		}
	}
	var failed bool
	for {
		select {
		case m := <-msgs:
			switch m.Type {
			case "update":
				if res.Type != HMRFullReload {
					res.Type = HMRUpdate
				}
				for _, u := range m.Updates {
					addPath(u.Path)
					if u.Type == "js-update" {
						pending++
						go func() { fetched <- s.refetch(ctx, u.AcceptedPath, u.Timestamp) }()
					}
				}
			case "full-reload":
				res.Type = HMRFullReload
				if m.Path == "" {
					addPath("*")
				} else {
					addPath(m.Path)
				}
			case "error":
				if res.Error == nil {
					res.Error = m.compileError(s.projectDir())
				}
			default:
				continue
			}
			if quiet == nil {
				s.env.metrics.observeHMR(time.Since(written))
			}
			quiet = time.After(settle)
			first.Stop()
		case status := <-fetched:
			pending--
			if status >= 500 && res.Error == nil {
				failed = true
				quiet = time.After(errorWait)
			}
		case <-quiet:
			if pending > 0 {
				quiet = time.After(settle)
				continue
			}
			if failed && res.Error == nil {
				res.Error = &CompileError{Message: "the updated module failed to compile (Vite sent no details)"}
			}
			return res
		case <-first.C:
			return res
		case <-ctx.Done():
			return res
		}
	}
}

// refetch requests a hot-updated module from the dev server as the browser
// would after the update message and returns the status.
func (s *session) refetch(ctx context.Context, path string, ts int64) int {
	base := s.server.Targets().HTTP
	if base == nil || !strings.HasPrefix(path, "/") {
		return 0
	}
	ref := path + "?" + url.Values{"t": {strconv.FormatInt(ts, 10)}}.Encode()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := ssrproxy.NewRequest(ctx, http.MethodGet, base, ref, nil)
	if err != nil {
		return 0
	}
	resp, err := s.env.client.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

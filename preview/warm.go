package preview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/vitehost/vitehost/internal/imports"
	"github.com/vitehost/vitehost/ssrproxy"
)

// maxWarmModules bounds the modules a warm-up fetches.
const maxWarmModules = 300

// maxWarmed bounds the modules one warmer loads: those of the page, and
// those that the session's pages asked for before (warmlist.go), which
// are mostly the same.
const maxWarmed = 2 * maxWarmModules

// warmParallel is how many requests a warm-up keeps in flight, about what a
// browser opens to one host.
const warmParallel = 6

var (
	// scriptSrc finds the module scripts of the page.
	scriptSrc = regexp.MustCompile(`<script[^>]+type=["']module["'][^>]*\ssrc=["']([^"']+)["']|<script[^>]+\ssrc=["']([^"']+)["'][^>]*type=["']module["']`)
)

// loadPage fetches the page at base, as a browser's navigation does, and
// returns the module scripts it loads. An error means the page is not served.
func loadPage(ctx context.Context, client *http.Client, base *url.URL) ([]string, error) {
	if base == nil {
		return nil, errors.New("no dev server URL")
	}
	page, status, err := fetch(ctx, client, base, "/", "text/html")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET / answered %d", status)
	}
	var entries []string
	for _, m := range scriptSrc.FindAllStringSubmatch(page, -1) {
		src := m[1] + m[2]
		if strings.HasPrefix(src, "/") && !strings.HasPrefix(src, "//") {
			entries = append(entries, src)
		}
	}
	return entries, nil
}

// warmer loads modules and every module they import, transitively, the
// way a browser would: Vite transforms each module once and caches it, and
// it optimizes the dependencies on the first request. The first visit then
// costs what a reload does, and edits to the modules bring HMR updates even
// before a browser has opened the page. It loads at most maxWarmed,
// warmParallel at a time, each once, whichever visit names it first.
//
// It does not load the modules of Vite's own and of installed packages
// (packageModule), and unless told to (deps), the optimized dependencies
// (optimizedDep): Vite transforms the static imports of each module it
// transforms on its own (server.preTransformRequests, on by default),
// those included, and sending one costs more than its transform. Vite
// appends the source map to each answer, encoded again at each send:
// react-dom's client chunk (0.9 MB, with its 1.6 MB map) goes out as
// 3.1 MB, about 50 ms of the dev server's CPU here, which a warm-up that
// loaded it paid once more than the browser for each session that
// started. A request for one waits until the optimizer has written them
// all: a warm-up that must see them written (to share them) loads them.
//
// It is the one crawler of a session's dev server. A spare runner's
// warm-up (internal/runner/lib/warm.mjs) is another process's: it runs
// before the spare has a session, on a throwaway Vite server on the
// sandbox's own loopback, which this process cannot reach.
type warmer struct {
	ctx    context.Context
	client *http.Client
	base   *url.URL
	deps   bool // load the optimized dependencies too

	mu   sync.Mutex
	seen map[string]bool
	wg   sync.WaitGroup
	sem  chan struct{}
}

// newWarmer returns a warmer of the dev server at base; deps: it loads the
// optimized dependencies too, and its wait returns once the optimizer has
// written them.
func newWarmer(ctx context.Context, client *http.Client, base *url.URL, deps bool) *warmer {
	return &warmer{ctx: ctx, client: client, base: base, deps: deps, seen: map[string]bool{}, sem: make(chan struct{}, warmParallel)}
}

// visit begins to load the modules at paths, and those they import; it
// does not wait.
func (w *warmer) visit(paths ...string) {
	for _, p := range paths {
		w.mu.Lock()
		if w.seen[p] || len(w.seen) >= maxWarmed {
			w.mu.Unlock()
			continue
		}
		w.seen[p] = true
		w.mu.Unlock()
		if optimizedDep(p) {
			if !w.deps {
				continue
			}
		} else if packageModule(p) {
			continue
		}
		w.wg.Go(func() { w.load(p) })
	}
}

// wait returns once every module visited is loaded, or the context ended.
func (w *warmer) wait() { w.wg.Wait() }

func (w *warmer) load(p string) {
	select {
	case w.sem <- struct{}{}:
	case <-w.ctx.Done():
		return
	}
	body, status, err := fetch(w.ctx, w.client, w.base, p, "*/*")
	<-w.sem
	if err != nil || status != http.StatusOK || w.ctx.Err() != nil || optimizedDep(p) {
		return // an optimized dependency imports only its own chunks
	}
	for _, spec := range imports.Specs(body) {
		// Vite rewrites a module's imports to root-relative URLs.
		if strings.HasPrefix(spec, "/") && !strings.HasPrefix(spec, "//") && !strings.ContainsAny(spec, " \t") {
			w.visit(spec)
		}
	}
}

// packageModule reports whether the URL path p is a module that the
// project's code does not hold: Vite's client (/@vite/), a plugin's
// runtime (/@react-refresh), a file of an installed package. None imports
// a module of the project's, so the warmer learns nothing from its body.
// Vite transforms each one that a module imports statically on its own
// (server.preTransformRequests), and the runner has it transform its
// client as it starts (internal/runner/lib/warm.mjs); sending one costs
// more than its transform: Vite
// builds a source map of each module that has none at each send (the
// client's 42 kB give 180 kB of map, the refresh runtime's 22 kB 96 kB).
// A warm-up that loaded them paid that besides the browser: in CPU
// profiles of sessions started in spares here, the source maps built at
// the sends took 33 ms of the dev server's main thread per start, 15 ms
// once the warm-up left these modules alone.
func packageModule(p string) bool {
	return strings.HasPrefix(p, "/@vite/") || p == "/@react-refresh" || strings.Contains(p, "/node_modules/")
}

// optimizedDep reports whether the URL path p is one of Vite's optimized
// dependencies, which it serves from its cacheDir's deps directory.
func optimizedDep(p string) bool {
	return strings.Contains(p, "/deps/")
}

func fetch(ctx context.Context, client *http.Client, base *url.URL, path, accept string) (string, int, error) {
	req, err := ssrproxy.NewRequest(ctx, http.MethodGet, base, path, nil)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return string(b), resp.StatusCode, err
}

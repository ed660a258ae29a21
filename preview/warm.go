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

// warmModules loads the entries and every module they import,
// transitively, the way a browser would: Vite transforms each module once
// and caches it, and it optimizes the dependencies on the first request.
// The first visit then costs what a reload does, and edits to the modules
// bring HMR updates even before a browser has opened the page.
func warmModules(ctx context.Context, client *http.Client, base *url.URL, entries []string) {
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
		sem  = make(chan struct{}, warmParallel)
	)
	var visit func(p string)
	visit = func(p string) {
		mu.Lock()
		if seen[p] || len(seen) >= maxWarmModules {
			mu.Unlock()
			return
		}
		seen[p] = true
		mu.Unlock()
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			body, status, err := fetch(ctx, client, base, p, "*/*")
			<-sem
			if err != nil || status != http.StatusOK || ctx.Err() != nil {
				return
			}
			if strings.Contains(p, "/deps/") {
				return // an optimized dependency: it imports only its own chunks
			}
			for _, spec := range imports.Specs(body) {
				// Vite rewrites a module's imports to root-relative URLs.
				if strings.HasPrefix(spec, "/") && !strings.HasPrefix(spec, "//") && !strings.ContainsAny(spec, " \t") {
					visit(spec)
				}
			}
		})
	}
	for _, p := range entries {
		visit(p)
	}
	wg.Wait()
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

package preview

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// This file records what the pages of a session asked its dev server for,
// so that a wake has Vite transform those modules again before a browser
// asks (warm.go): the modules that a page imports at run time (a lazy
// route, a computed import()) are found by no crawl of the page. The list
// stays in this process's memory, never in the session's directory, which
// the tenant writes; a session that another node takes over, or that
// outlives a restart, wakes without it. The URLs come from whoever holds
// the preview URL: they are only ever requested of the session's own
// sandboxed dev server, as that client could have requested them itself,
// and they are bounded in number and length.

// maxWarmURL bounds the length of a recorded URL.
const maxWarmURL = 1024

// warmList is the URLs that the pages of a session requested of its dev
// server, first come first kept, at most maxWarmModules. The zero value is
// empty and ready to use; it is safe for concurrent use.
type warmList struct {
	full atomic.Bool // the list is full: the hot path skips the lock

	mu   sync.Mutex
	urls []string
	seen map[string]bool
}

// note records the URL r asks for when it is a module a page loads: a GET
// that is neither a navigation nor a WebSocket, of a root-relative path
// that stays in the dev server's own URL space (no /@fs/, no dot segment),
// without the HMR timestamp Vite adds after an edit.
func (l *warmList) note(r *http.Request) {
	if l.full.Load() || r.Method != http.MethodGet || r.Header.Get("Upgrade") != "" || isNavigation(r) {
		return
	}
	u, ok := warmURL(r.URL)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[u] {
		return
	}
	if len(l.urls) >= maxWarmModules {
		l.full.Store(true)
		return
	}
	if l.seen == nil {
		l.seen = make(map[string]bool)
	}
	l.seen[u] = true
	l.urls = append(l.urls, u)
}

// list returns the recorded URLs, oldest first.
func (l *warmList) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.urls...)
}

// warmURL returns the path and query of u that a warm-up may request
// again, and whether there is one.
func warmURL(u *url.URL) (string, bool) {
	p := u.EscapedPath()
	if len(p) > maxWarmURL || len(u.RawQuery) > maxWarmURL || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || p == "/" {
		return "", false
	}
	lower := strings.ToLower(u.Path)
	if strings.Contains(lower, "/@fs/") || strings.ContainsAny(u.Path, "\x00\\") || strings.Contains("/"+lower+"/", "/../") || strings.Contains("/"+lower+"/", "/./") {
		return "", false
	}
	for _, c := range u.Path {
		if c < 0x20 || c == 0x7f {
			return "", false
		}
	}
	if u.RawQuery == "" {
		return p, true
	}
	// The timestamp Vite adds to a module's URL after an edit goes; Vite's
	// own markers are flags without a value (?import, ?direct, ?raw), which
	// url.Values.Encode would rewrite.
	parts := strings.Split(u.RawQuery, "&")
	kept := parts[:0]
	for _, part := range parts {
		if part != "t" && !strings.HasPrefix(part, "t=") {
			kept = append(kept, part)
		}
	}
	if len(kept) == 0 {
		return p, true
	}
	return p + "?" + strings.Join(kept, "&"), true
}

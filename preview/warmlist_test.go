package preview

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWarmListHostile sends what a client that holds the preview URL may
// send: thousands of paths, huge ones, /@fs/ paths and dot segments,
// navigations, writes, WebSockets. The list keeps only module URLs of the
// dev server's own URL space, at most maxWarmModules of at most
// maxWarmURL bytes of path and query each.
func TestWarmListHostile(t *testing.T) {
	var l warmList
	req := func(method, target string, header ...string) *http.Request {
		r := httptest.NewRequest(method, "http://preview-x.localhost"+target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		return r
	}
	for _, r := range []*http.Request{
		req("GET", "/@fs/etc/passwd"),
		req("GET", "/@FS/etc/passwd?import"),
		req("GET", "/src/%2e%2e/%2e%2e/etc/passwd"),
		req("GET", "/src/./x.ts"),
		req("GET", "/src/a%00b.ts"),
		req("GET", "/src/a%0Ab.ts"),
		req("GET", "/src/a%5Cb.ts"),
		req("GET", "/"),
		req("GET", "/"+strings.Repeat("a", maxWarmURL)),
		req("GET", "/src/x.ts?"+strings.Repeat("a", maxWarmURL+1)),
		req("GET", "/index.html", "Accept", "text/html"),
		req("POST", "/src/post.ts"),
		req("GET", "/hmr", "Upgrade", "websocket"),
	} {
		l.note(r)
	}
	assert.Empty(t, l.list(), "nothing hostile is kept")

	l.note(req("GET", "/src/main.tsx"))
	l.note(req("GET", "/src/App.tsx?t=1765100000000"))
	l.note(req("GET", "/src/index.css?direct&t=1765100000000"))
	l.note(req("GET", "/src/logo.svg?import"))
	l.note(req("GET", "/src/main.tsx"))
	assert.Equal(t, []string{"/src/main.tsx", "/src/App.tsx", "/src/index.css?direct", "/src/logo.svg?import"}, l.list(),
		"module URLs, once each, without Vite's timestamps")

	for i := range 5000 {
		l.note(req("GET", fmt.Sprintf("/src/m%d.ts?%s", i, strings.Repeat("q", 900))))
	}
	list := l.list()
	assert.Len(t, list, maxWarmModules, "bounded in number")
	for _, u := range list {
		assert.LessOrEqual(t, len(u), 2*maxWarmURL+1, "bounded in length")
	}
}

// FuzzWarmURL: whatever the request's URL, a kept one is root-relative,
// bounded, and outside /@fs/.
func FuzzWarmURL(f *testing.F) {
	for _, s := range []string{"/src/main.tsx", "/@fs/etc/passwd", "/src/x.ts?t=1&import", "/a/../b", "//evil.example/x", "/%2e%2e/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		got, ok := warmURL(u)
		if !ok {
			return
		}
		require.True(t, strings.HasPrefix(got, "/") && !strings.HasPrefix(got, "//"), "%q", got)
		require.LessOrEqual(t, len(got), 2*maxWarmURL+1)
		back, err := url.ParseRequestURI(got)
		require.NoError(t, err, "%q", got)
		require.NotContains(t, strings.ToLower(back.Path), "/@fs/")
		require.NotContains(t, "/"+back.Path+"/", "/../")
	})
}

package vite

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var spaFS = fstest.MapFS{
	"index.html":                {Data: []byte("<!doctype html><title>app</title>"), ModTime: time.Unix(1e9, 0)},
	"assets/index-abc.js":       {Data: []byte("console.log('plain')")},
	"assets/index-abc.js.br":    {Data: []byte("BROTLI")},
	"assets/index-abc.js.gz":    {Data: []byte("GZIP")},
	"assets/index-abc.css":      {Data: []byte("body{}")},
	"assets/index-abc.css.gz":   {Data: []byte("GZIPCSS")},
	"assets/logo-abc.svg":       {Data: []byte("<svg/>")},
	"favicon.ico":               {Data: []byte{0, 0, 1, 0}},
	"favicon.ico.gz":            {Data: []byte("GZIPICO")},
	"docs/index.html":           {Data: []byte("docs page")},
	".vite/manifest.json":       {Data: []byte("{}")},
	"assets/.hidden":            {Data: []byte("x")},
	"assets/app.wasm":           {Data: []byte{0, 'a', 's', 'm'}},
	"assets/sub/nested-abc.mjs": {Data: []byte("export {}")},
	".well-known/security.txt":  {Data: []byte("Contact: x")},
}

func serveSPA(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSPA(t *testing.T) {
	h := NewSPA(spaFS, nil)
	nav := map[string]string{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
	for _, tc := range []struct {
		name, method, target string
		hdr                  map[string]string
		code                 int
		body, ctype, cache   string
		encoding             string
	}{
		{"root", "GET", "/", nil, 200, "<!doctype html><title>app</title>", "text/html; charset=utf-8", "no-cache", ""},
		{"index by name", "GET", "/index.html", nil, 200, "<!doctype html><title>app</title>", "text/html; charset=utf-8", "no-cache", ""},
		{"client route", "GET", "/users/42", nil, 200, "<!doctype html><title>app</title>", "text/html; charset=utf-8", "no-cache", ""},
		{"client route with a dot, navigated", "GET", "/users/jane.doe", nav, 200, "<!doctype html><title>app</title>", "text/html; charset=utf-8", "no-cache", ""},
		{"hashed asset", "GET", "/assets/index-abc.css", nil, 200, "body{}", "text/css; charset=utf-8", cacheImmutable, ""},
		{"nested asset", "GET", "/assets/sub/nested-abc.mjs", nil, 200, "export {}", "text/javascript; charset=utf-8", cacheImmutable, ""},
		{"wasm", "GET", "/assets/app.wasm", nil, 200, "\x00asm", "application/wasm", cacheImmutable, ""},
		{"svg", "GET", "/assets/logo-abc.svg", nil, 200, "<svg/>", "image/svg+xml", cacheImmutable, ""},
		{"brotli preferred", "GET", "/assets/index-abc.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"}, 200, "BROTLI", "text/javascript; charset=utf-8", cacheImmutable, "br"},
		{"gzip only", "GET", "/assets/index-abc.js", map[string]string{"Accept-Encoding": "gzip"}, 200, "GZIP", "text/javascript; charset=utf-8", cacheImmutable, "gzip"},
		{"br refused by q=0", "GET", "/assets/index-abc.js", map[string]string{"Accept-Encoding": "br;q=0, gzip;q=0.5"}, 200, "GZIP", "text/javascript; charset=utf-8", cacheImmutable, "gzip"},
		{"star", "GET", "/assets/index-abc.css", map[string]string{"Accept-Encoding": "*"}, 200, "GZIPCSS", "text/css; charset=utf-8", cacheImmutable, "gzip"},
		{"no encoding accepted", "GET", "/assets/index-abc.js", map[string]string{"Accept-Encoding": "identity"}, 200, "console.log('plain')", "text/javascript; charset=utf-8", cacheImmutable, ""},
		{"public file", "GET", "/favicon.ico", nil, 200, "\x00\x00\x01\x00", "image/vnd.microsoft.icon", "no-cache", ""},
		{"page of a multi-page build", "GET", "/docs/", nil, 200, "docs page", "text/html; charset=utf-8", "no-cache", ""},
		{"missing asset", "GET", "/assets/gone-abc.js", nil, 404, "", "", "", ""},
		{"missing asset, navigated", "GET", "/assets/gone-abc.js", nav, 404, "", "", "", ""},
		{"missing file with an extension", "GET", "/robots.txt", nil, 404, "", "", "", ""},
		{"assets directory: no listing", "GET", "/assets/", nav, 404, "", "", "", ""},
		{"manifest is hidden", "GET", "/.vite/manifest.json", nil, 404, "", "", "", ""},
		{"dot file is hidden", "GET", "/assets/.hidden", nil, 404, "", "", "", ""},
		{"dot-dot stays inside: a client route", "GET", "/assets/../../../etc/passwd", nil, 200, "<!doctype html><title>app</title>", "text/html; charset=utf-8", "no-cache", ""},
		{"well-known", "GET", "/.well-known/security.txt", nil, 200, "Contact: x", "text/plain; charset=utf-8", "no-cache", ""},
		{"HEAD", "HEAD", "/assets/index-abc.css", nil, 200, "", "text/css; charset=utf-8", cacheImmutable, ""},
		{"POST", "POST", "/", nil, 405, "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serveSPA(t, h, tc.method, tc.target, tc.hdr)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			if tc.code != 200 {
				assert.NotContains(t, w.Body.String(), "<title>app", "an error is no page")
				return
			}
			assert.Equal(t, tc.body, w.Body.String())
			assert.Equal(t, tc.ctype, w.Header().Get("Content-Type"))
			assert.Equal(t, tc.cache, w.Header().Get("Cache-Control"))
			assert.Equal(t, tc.encoding, w.Header().Get("Content-Encoding"))
			assert.Equal(t, "Accept-Encoding", w.Header().Get("Vary"))
		})
	}
}

// TestSPAEmbedETag: embed.FS files have no modification time, so the
// files to revalidate get an ETag of their content.
func TestSPAEmbedETag(t *testing.T) {
	h := NewSPA(spaFS, nil)
	w := serveSPA(t, h, "GET", "/favicon.ico", nil)
	etag := w.Header().Get("ETag")
	require.NotEmpty(t, etag)
	w = serveSPA(t, h, "GET", "/favicon.ico", map[string]string{"If-None-Match": etag})
	assert.Equal(t, http.StatusNotModified, w.Code)
	w = serveSPA(t, h, "GET", "/users/42", map[string]string{"If-None-Match": etag})
	assert.Equal(t, http.StatusOK, w.Code, "another file, another tag")
	w = serveSPA(t, h, "GET", "/assets/index-abc.css", nil)
	assert.Empty(t, w.Header().Get("ETag"), "hashed files need none")
	gz := serveSPA(t, h, "GET", "/favicon.ico", map[string]string{"Accept-Encoding": "gzip"})
	assert.Equal(t, "GZIPICO", gz.Body.String())
	assert.NotEmpty(t, gz.Header().Get("ETag"))
	assert.NotEqual(t, etag, gz.Header().Get("ETag"), "the encoded file is another representation")
}

func TestSPAConditional(t *testing.T) {
	h := NewSPA(spaFS, nil)
	w := serveSPA(t, h, "GET", "/", nil)
	lm := w.Header().Get("Last-Modified")
	require.NotEmpty(t, lm)
	w = serveSPA(t, h, "GET", "/", map[string]string{"If-Modified-Since": lm})
	assert.Equal(t, http.StatusNotModified, w.Code)
	w = serveSPA(t, h, "GET", "/assets/index-abc.css", map[string]string{"Range": "bytes=0-3"})
	assert.Equal(t, http.StatusPartialContent, w.Code)
	assert.Equal(t, "body", w.Body.String())
	w = serveSPA(t, h, "GET", "/assets/index-abc.css", map[string]string{"Range": "bytes=0-3", "Accept-Encoding": "gzip"})
	assert.Equal(t, http.StatusOK, w.Code, "no ranges of encoded bytes")
	assert.Equal(t, "GZIPCSS", w.Body.String())
}

// TestSPARootEscape attacks an os.Root's FS with symbolic links out of the
// build: nothing outside it is served.
func TestSPARootEscape(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("SECRET"), 0o644))
	dist := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dist, "index.html"), []byte("index"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dist, "assets"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dist, "assets", "secret.txt")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dist, "out")))
	root, err := os.OpenRoot(dist)
	require.NoError(t, err)
	defer root.Close()
	h := NewSPA(root.FS(), nil)
	for _, target := range []string{"/assets/secret.txt", "/out/secret.txt", "/../secret.txt", "/%2e%2e/secret.txt"} {
		w := serveSPA(t, h, "GET", target, nil)
		assert.NotContains(t, w.Body.String(), "SECRET", target)
	}
	w := serveSPA(t, h, "GET", "/", nil)
	assert.Equal(t, "index", w.Body.String())
}

func TestAcceptsEncoding(t *testing.T) {
	for _, tc := range []struct {
		header string
		br, gz bool
	}{
		{"", false, false},
		{"gzip, br", true, true},
		{"BR;q=1.0", true, false},
		{"br;q=0", false, false},
		{"br;q=0.000, *", false, true},
		{"*;q=0, gzip;q=0.1", false, true},
		{"br;q=0.001", true, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", tc.header)
		assert.Equal(t, tc.br, accepts(r, "br"), tc.header)
		assert.Equal(t, tc.gz, accepts(r, "gzip"), tc.header)
	}
}

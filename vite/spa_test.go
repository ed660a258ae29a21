package vite

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestSPAMemoryMatchesDisk serves every file under the assets directory
// from memory and, with MaxMemory negative, from the disk, for plain,
// encoded, HEAD, conditional and range requests: status, headers and bytes
// are the same.
func TestSPAMemoryMatchesDisk(t *testing.T) {
	dist := t.TempDir()
	for name, f := range spaFS {
		p := filepath.Join(dist, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, f.Data, 0o644))
	}
	// A type that is sniffed, and a file big enough for sendfile.
	require.NoError(t, os.WriteFile(filepath.Join(dist, "assets", "blob-abc"), []byte("%PDF-1.4 not really"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dist, "assets", "big-abc.js"), bytes.Repeat([]byte("let x = 1;\n"), 20000), 0o644))
	root, err := os.OpenRoot(dist)
	require.NoError(t, err)
	defer root.Close()

	for _, fsys := range []struct {
		name string
		fsys fs.FS
	}{{"disk", root.FS()}, {"map", spaFS}} {
		memory := NewSPA(fsys.fsys, nil)
		disk := NewSPA(fsys.fsys, &SPAOptions{MaxMemory: -1})
		require.Empty(t, disk.cached)
		var names []string
		require.NoError(t, fs.WalkDir(fsys.fsys, "assets", func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				names = append(names, p)
			}
			return err
		}))
		lastMod := serveSPA(t, disk, "GET", "/assets/index-abc.js", nil).Header().Get("Last-Modified")
		for _, name := range names {
			if !hidden(name) {
				require.Contains(t, memory.cached, name, "%s: held in memory", fsys.name)
			}
			for _, req := range []struct {
				method string
				hdr    map[string]string
			}{
				{"GET", nil},
				{"HEAD", nil},
				{"GET", map[string]string{"Accept-Encoding": "gzip, br"}},
				{"GET", map[string]string{"Accept-Encoding": "gzip;q=1, br;q=0"}},
				{"HEAD", map[string]string{"Accept-Encoding": "gzip"}},
				{"GET", map[string]string{"Range": "bytes=2-5"}},
				{"GET", map[string]string{"Range": "bytes=0-1,3-4"}},
				{"GET", map[string]string{"Range": "bytes=1000000-"}},
				{"GET", map[string]string{"Range": "bytes=2-5", "Accept-Encoding": "br"}},
				{"GET", map[string]string{"If-Modified-Since": lastMod}},
				{"GET", map[string]string{"If-Unmodified-Since": "Mon, 02 Jan 2006 15:04:05 GMT"}},
				{"GET", map[string]string{"If-None-Match": `"x"`}},
				{"GET", map[string]string{"Range": "bytes=0-1", "If-Range": lastMod}},
			} {
				what := fmt.Sprintf("%s: %s %s %v", fsys.name, req.method, name, req.hdr)
				want := serveSPA(t, disk, req.method, "/"+name, req.hdr)
				got := serveSPA(t, memory, req.method, "/"+name, req.hdr)
				assert.Equal(t, want.Code, got.Code, what)
				// A multipart answer's boundary is random.
				wantBody, gotBody := want.Body.String(), got.Body.String()
				if b := boundaryRE.FindStringSubmatch(want.Header().Get("Content-Type")); b != nil {
					wantBody = strings.ReplaceAll(wantBody, b[1], "BOUNDARY")
					want.Header().Set("Content-Type", strings.ReplaceAll(want.Header().Get("Content-Type"), b[1], "BOUNDARY"))
				}
				if b := boundaryRE.FindStringSubmatch(got.Header().Get("Content-Type")); b != nil {
					gotBody = strings.ReplaceAll(gotBody, b[1], "BOUNDARY")
					got.Header().Set("Content-Type", strings.ReplaceAll(got.Header().Get("Content-Type"), b[1], "BOUNDARY"))
				}
				assert.Equal(t, want.Header(), got.Header(), what)
				assert.Equal(t, wantBody, gotBody, what)
			}
		}
	}
}

var boundaryRE = regexp.MustCompile(`boundary=(\w+)`)

// TestSPAMemoryBound: files beyond MaxMemory, and a file whose sibling
// does not fit beside it, are read from the disk at each request; a file
// held in memory keeps its bytes when the disk's change.
func TestSPAMemoryBound(t *testing.T) {
	dist := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dist, "assets"), 0o755))
	write := func(name, data string) {
		require.NoError(t, os.WriteFile(filepath.Join(dist, "assets", name), []byte(data), 0o644))
	}
	write("a-1.js", "aaaa")     // 4 bytes: fits
	write("b-1.js", "bbbb")     // with its sibling, 4+6 bytes: does not fit
	write("b-1.js.gz", "GZIPB") //
	write("c-1.css", "cccccc")  // 6 bytes: does not fit after a
	root, err := os.OpenRoot(dist)
	require.NoError(t, err)
	defer root.Close()
	h := NewSPA(root.FS(), &SPAOptions{MaxMemory: 9})
	assert.Contains(t, h.cached, "assets/a-1.js")
	assert.Contains(t, h.cached, "assets/b-1.js.gz", "the sibling alone fits")
	assert.NotContains(t, h.cached, "assets/b-1.js")
	assert.NotContains(t, h.cached, "assets/c-1.css")

	write("a-1.js", "AAAA")
	write("b-1.js", "BBBB")
	write("c-1.css", "CCCCCC")
	write("d-1.js", "added later")
	for target, body := range map[string]string{
		"/assets/a-1.js":  "aaaa", // as read by NewSPA
		"/assets/b-1.js":  "BBBB",
		"/assets/c-1.css": "CCCCCC",
		"/assets/d-1.js":  "added later",
	} {
		w := serveSPA(t, h, "GET", target, nil)
		assert.Equal(t, http.StatusOK, w.Code, target)
		assert.Equal(t, body, w.Body.String(), target)
		assert.Equal(t, cacheImmutable, w.Header().Get("Cache-Control"), target)
	}
	w := serveSPA(t, h, "GET", "/assets/b-1.js", map[string]string{"Accept-Encoding": "gzip"})
	assert.Equal(t, "GZIPB", w.Body.String())
	assert.Equal(t, "gzip", w.Header().Get("Content-Encoding"))
}

// TestHashedFiles: a Nuxt build's hashed files are answered from memory,
// every other request goes to the next handler (the proxy to Node).
func TestHashedFiles(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		".output/server/index.mjs":                "",
		".output/public/_nuxt/app-abc.js":         "APP",
		".output/public/_nuxt/app-abc.js.br":      "BR",
		".output/public/_nuxt/builds/latest.json": `{"id":"x"}`,
		".output/public/favicon.ico":              "ICO",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(data), 0o644))
	}
	b, err := builtServerOf(dir, Nuxt)
	require.NoError(t, err)
	s := &Server{launcher: &launcher{dir: dir, built: b, log: slog.New(slog.DiscardHandler)}}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("NEXT")) })
	h := s.HashedFiles(next)

	w := serveSPA(t, h, "GET", "/_nuxt/app-abc.js", nil)
	assert.Equal(t, "APP", w.Body.String())
	assert.Equal(t, cacheImmutable, w.Header().Get("Cache-Control"))
	assert.Equal(t, "text/javascript; charset=utf-8", w.Header().Get("Content-Type"))
	w = serveSPA(t, h, "GET", "/_nuxt/app-abc.js", map[string]string{"Accept-Encoding": "br"})
	assert.Equal(t, "BR", w.Body.String())
	assert.Equal(t, "br", w.Header().Get("Content-Encoding"))
	w = serveSPA(t, h, "HEAD", "/_nuxt/app-abc.js", nil)
	assert.Equal(t, "3", w.Header().Get("Content-Length"))
	assert.Empty(t, w.Body.String())
	for _, req := range [][2]string{
		{"GET", "/"},
		{"GET", "/favicon.ico"},
		{"GET", "/_nuxt/builds/latest.json"},
		{"GET", "/_nuxt/missing.js"},
		{"GET", "/_nuxt/../_nuxt/app-abc.js"},
		{"GET", "/_nuxt//app-abc.js"},
		{"POST", "/_nuxt/app-abc.js"},
	} {
		w := serveSPA(t, h, req[0], req[1], nil)
		assert.Equal(t, "NEXT", w.Body.String(), "%v", req)
	}

	dev := &Server{launcher: &launcher{dir: dir, log: slog.New(slog.DiscardHandler)}}
	w = serveSPA(t, dev.HashedFiles(next), "GET", "/_nuxt/app-abc.js", nil)
	assert.Equal(t, "NEXT", w.Body.String(), "a dev server serves its own files")
}

// TestSPAMemorySiblingTooBig: a file whose sibling is over the size held in
// memory stays on the disk with it, so that the sibling is still served.
func TestSPAMemorySiblingTooBig(t *testing.T) {
	dist := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dist, "assets"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dist, "assets", "e-1.js"), []byte("small"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dist, "assets", "e-1.js.gz"), bytes.Repeat([]byte("z"), maxMemoryFile+1), 0o644))
	root, err := os.OpenRoot(dist)
	require.NoError(t, err)
	defer root.Close()
	h := NewSPA(root.FS(), nil)
	assert.NotContains(t, h.cached, "assets/e-1.js")
	w := serveSPA(t, h, "GET", "/assets/e-1.js", map[string]string{"Accept-Encoding": "gzip"})
	assert.Equal(t, "gzip", w.Header().Get("Content-Encoding"))
	assert.Equal(t, maxMemoryFile+1, w.Body.Len())
}

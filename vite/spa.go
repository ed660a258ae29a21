package vite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Defaults of SPAOptions.
const (
	DefaultSPAIndex  = "index.html"
	DefaultAssetsDir = "assets"
	// DefaultSPAMemory is how many bytes of hashed files (and their
	// precompressed siblings) an SPA holds in memory: a built front end's
	// assets are a few megabytes.
	DefaultSPAMemory = 64 << 20
)

// maxMemoryFile is the size over which a hashed file is not held in memory
// but read from the disk at each request, where sendfile pays off.
const maxMemoryFile = 2 << 20

// Cache-Control values of the SPA handler: hashed files never change under
// their name; anything else is checked with the server on each use.
const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
)

// encodings are the precompressed siblings SPA looks for, best first.
var encodings = []struct{ name, ext string }{{"br", ".br"}, {"gzip", ".gz"}}

// SPAOptions configures NewSPA. A nil *SPAOptions means the defaults.
type SPAOptions struct {
	// Index is the page of every client route; "" means DefaultSPAIndex.
	Index string
	// AssetsDir is the directory of the build's hashed files (Vite's
	// build.assetsDir), served with a year-long immutable Cache-Control;
	// "" means DefaultAssetsDir.
	AssetsDir string
	// MaxMemory bounds the bytes of the files under AssetsDir that NewSPA
	// reads into memory, each with its precompressed siblings; 0 means
	// DefaultSPAMemory, a negative value means none. Files beyond the bound
	// or over 2 MiB are read from fsys at each request.
	MaxMemory int64
}

// SPA is an http.Handler that serves a built single-page app (Vite's dist
// directory) the way a production server should: hashed files under
// AssetsDir cached for a year as immutable, everything else (the index page
// first) revalidated on each use; a .br or .gz sibling of a file sent
// instead when the client accepts that encoding (vite-plugin-compression and
// similar write them), with the original's Content-Type; a path that names
// no file gets the index page when it is a client route (no file extension,
// or a browser navigation that accepts text/html) and a 404 when it is a
// missing asset. It lists no directory, serves no file whose path has a
// segment that starts with a dot (.vite/manifest.json; .well-known is
// served), and answers GET and HEAD only, conditional requests and ranges
// included (http.ServeContent).
//
// NewSPA reads the files under AssetsDir into memory (up to
// SPAOptions.MaxMemory) and serves them from there, without a system call
// per request: a hashed name stands for one content forever. A file added
// under AssetsDir later (a new build into the same dist) is served from
// fsys; a file removed or rewritten in place keeps being served as NewSPA
// read it, until a new SPA is made. Everything else (the index page
// first) is read from fsys at each request.
type SPA struct {
	fsys   fs.FS
	index  string
	assets string
	cached map[string]*cachedFile // files under assets, read by NewSPA
}

// NewSPA returns the SPA handler of the build in fsys. For a directory on
// disk, pass the FS of an os.Root (root.FS()), which no symbolic link
// leads out of; os.DirFS follows them. embed.FS (through fs.Sub) works as
// is.
func NewSPA(fsys fs.FS, opts *SPAOptions) *SPA {
	var o SPAOptions
	if opts != nil {
		o = *opts
	}
	if o.Index == "" {
		o.Index = DefaultSPAIndex
	}
	if o.AssetsDir == "" {
		o.AssetsDir = DefaultAssetsDir
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = DefaultSPAMemory
	}
	h := &SPA{fsys: fsys, index: strings.Trim(o.Index, "/"), assets: strings.Trim(o.AssetsDir, "/") + "/"}
	h.cached = readAssets(fsys, strings.TrimSuffix(h.assets, "/"), o.MaxMemory)
	return h
}

// ServeHTTP serves one request.
func (h *SPA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = h.index
	}
	if hidden(name) || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	if h.serveFile(w, r, name) {
		return
	}
	if h.serveFile(w, r, path.Join(name, h.index)) { // a page of a multi-page build
		return
	}
	if strings.HasPrefix(name+"/", h.assets) || (path.Ext(name) != "" && !acceptsHTML(r)) {
		http.NotFound(w, r) // a missing asset is no route
		return
	}
	if !h.serveFile(w, r, h.index) {
		http.NotFound(w, r)
	}
}

// serveFile serves the regular file name, or its precompressed sibling, and
// reports whether there was one.
func (h *SPA) serveFile(w http.ResponseWriter, r *http.Request, name string) bool {
	if c := h.cached[name]; c != nil {
		c.serve(w, r, name)
		return true
	}
	f, st, ok := h.open(name)
	if !ok {
		return false
	}
	defer func() { f.Close() }()
	hdr := w.Header()
	hdr.Add("Vary", "Accept-Encoding")
	ct := contentType(name)
	if ct != "" {
		hdr.Set("Content-Type", ct)
	}
	immutable := strings.HasPrefix(name, h.assets)
	if immutable {
		hdr.Set("Cache-Control", cacheImmutable)
	} else {
		hdr.Set("Cache-Control", cacheRevalidate)
	}
	modTime := modTimeOf(st.ModTime())
	for _, enc := range encodings {
		// Without a known type, ServeContent would sniff the encoded bytes.
		if ct == "" || !accepts(r, enc.name) {
			continue
		}
		if cf, _, ok := h.open(name + enc.ext); ok {
			f.Close()
			f = cf
			hdr.Set("Content-Encoding", enc.name)
			break
		}
	}
	if hdr.Get("Content-Encoding") != "" {
		// Ranges of the encoded bytes would confuse a client that asked for
		// ranges of the file.
		r = r.Clone(r.Context())
		r.Header.Del("Range")
	}
	content, ok := f.(io.ReadSeeker)
	// A file to revalidate needs a validator: without a modification time
	// (embed.FS) it gets an ETag of its content, which it is read for.
	if !ok || (modTime.IsZero() && !immutable) {
		b, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
			return true
		}
		if modTime.IsZero() && !immutable {
			sum := sha256.Sum256(b)
			// Each encoding is its own representation, with its own tag.
			hdr.Set("ETag", `"`+hex.EncodeToString(sum[:12])+hdr.Get("Content-Encoding")+`"`)
		}
		content = bytes.NewReader(b)
	}
	http.ServeContent(w, r, name, modTime, content)
	return true
}

// open opens name when it is a regular file.
func (h *SPA) open(name string) (fs.File, fs.FileInfo, bool) {
	f, err := h.fsys.Open(name)
	if err != nil {
		return nil, nil, false
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, false
	}
	return f, st, true
}

// modTimeOf returns t, or the zero time (no Last-Modified) for the zero
// modification times of embed.FS.
func modTimeOf(t time.Time) time.Time {
	if t.Unix() <= 0 {
		return time.Time{}
	}
	return t
}

// hidden reports whether a segment of name starts with a dot, other than
// .well-known (RFC 8615), which a public directory may hold on purpose.
func hidden(name string) bool {
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != ".well-known" {
			return true
		}
	}
	return false
}

// contentType returns the Content-Type of a file from its extension, with
// the types that a built front end has and that some systems' MIME tables
// lack.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".wasm":
		return "application/wasm"
	case ".webmanifest":
		return "application/manifest+json"
	case ".svg":
		return "image/svg+xml"
	case ".map", ".json":
		return "application/json"
	}
	return mime.TypeByExtension(path.Ext(name)) // "" lets ServeContent sniff
}

// acceptsHTML reports whether the request is a navigation that takes HTML.
func acceptsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// accepts reports whether the client accepts the content coding enc
// (RFC 9110, section 12.5.3): named, or matched by *, with a q above 0.
func accepts(r *http.Request, enc string) bool {
	star := false
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			coding = strings.TrimSpace(coding)
			zero := qZero(params)
			switch {
			case strings.EqualFold(coding, enc):
				return !zero
			case coding == "*":
				star = !zero
			}
		}
	}
	return star
}

// qZero reports whether the parameters of an Accept-Encoding member set
// q=0 (q=0, q=0.0, q=0.000).
func qZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimSpace(v)
			return strings.Trim(strings.TrimPrefix(v, "0."), "0") == "" && !strings.HasPrefix(v, "1")
		}
	}
	return false
}

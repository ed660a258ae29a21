package vite

import (
	"bytes"
	"io/fs"
	"net/http"
	"strconv"
	"time"
)

// The hashed files of an SPA held in memory: read once by NewSPA, served
// with headers worked out once, and without a system call per request. A
// request that is conditional or asks for a range goes through
// http.ServeContent over the same bytes, so that both answer exactly as the
// disk path does (TestSPAMemoryMatchesDisk).

// cachedFile is one file under SPAOptions.AssetsDir, with its precompressed
// siblings.
type cachedFile struct {
	modTime time.Time // modTimeOf the file's
	// typed says whether the file's extension gives its Content-Type;
	// without one, ServeContent sniffs it and no sibling is served.
	typed bool
	// variants holds the file itself first, then its siblings in the order
	// of encodings (the disk path's order of preference).
	variants     []*cachedVariant
	lastModified string // "" without a modification time
}

// cachedVariant is one representation of a cached file.
type cachedVariant struct {
	encoding      string // "" for the file itself
	body          []byte
	contentType   string // the file's type, or the type ServeContent sniffs
	contentLength string // "" for an encoded variant: ServeContent sends none
}

// conditionalHeaders are the request headers that make http.ServeContent
// answer other than with the whole content.
var conditionalHeaders = [...]string{"If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range", "Range"}

// readAssets reads the regular files under dir into memory, at most max
// bytes in all and none over maxMemoryFile. A file is held only with every
// precompressed sibling it has, so that it is served the same from memory
// as from fsys. Whatever cannot be read is left out: it is served from fsys.
func readAssets(fsys fs.FS, dir string, max int64) map[string]*cachedFile {
	if max <= 0 || !fs.ValidPath(dir) {
		return nil
	}
	infos := map[string]fs.FileInfo{}
	var names []string
	fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || hidden(p) {
			return nil // an unreadable directory is skipped, not the rest
		}
		if info, err := d.Info(); err == nil {
			infos[p] = info
			names = append(names, p)
		}
		return nil
	})
	bodies := map[string][]byte{}
	read := func(name string) bool {
		if _, ok := bodies[name]; ok {
			return true
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil || int64(len(b)) > max {
			return false
		}
		max -= int64(len(b))
		bodies[name] = b
		return true
	}
	cached := map[string]*cachedFile{}
	for _, name := range names {
		ct := contentType(name)
		group := []string{name}
		if ct != "" { // as serveFile: no sibling for a type it would sniff
			for _, enc := range encodings {
				if _, ok := infos[name+enc.ext]; ok {
					group = append(group, name+enc.ext)
				}
			}
		}
		var size int64
		fits := true
		for _, n := range group {
			fits = fits && infos[n].Size() <= maxMemoryFile
			if _, ok := bodies[n]; !ok {
				size += infos[n].Size()
			}
		}
		if !fits || size > max {
			continue
		}
		ok := true
		for _, n := range group {
			ok = ok && read(n)
		}
		if !ok {
			continue
		}
		c := &cachedFile{modTime: modTimeOf(infos[name].ModTime()), typed: ct != ""}
		if !c.modTime.IsZero() {
			c.lastModified = c.modTime.UTC().Format(http.TimeFormat)
		}
		for i, n := range group {
			v := &cachedVariant{body: bodies[n], contentType: ct}
			if ct == "" {
				v.contentType = http.DetectContentType(v.body[:min(len(v.body), sniffLen)])
			}
			if i == 0 {
				v.contentLength = strconv.Itoa(len(v.body))
			}
			for _, enc := range encodings {
				if i > 0 && n == name+enc.ext {
					v.encoding = enc.name
				}
			}
			c.variants = append(c.variants, v)
		}
		cached[name] = c
	}
	return cached
}

// sniffLen is how many bytes http.ServeContent sniffs a type from.
const sniffLen = 512

// serve answers r with the cached file name, as serveFile answers from the
// disk for a file under the assets directory.
func (c *cachedFile) serve(w http.ResponseWriter, r *http.Request, name string) {
	v := c.variants[0]
	for _, s := range c.variants[1:] {
		if accepts(r, s.encoding) {
			v = s
			break
		}
	}
	hdr := w.Header()
	// The values of the headers set here share one allocation; each is a
	// slice of its own (capacity 1), which a later Add copies.
	vals := make([]string, 0, 7)
	set := func(k, v string) {
		vals = append(vals, v)
		hdr[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	hdr["Vary"] = append(hdr["Vary"], "Accept-Encoding")
	if c.typed {
		set("Content-Type", v.contentType)
	}
	set("Cache-Control", cacheImmutable)
	if v.encoding != "" {
		set("Content-Encoding", v.encoding)
		if _, ok := r.Header["Range"]; ok {
			// As serveFile: no ranges of the encoded bytes.
			r = r.Clone(r.Context())
			r.Header.Del("Range")
		}
	}
	for _, k := range conditionalHeaders {
		if _, ok := r.Header[k]; ok {
			http.ServeContent(w, r, name, c.modTime, bytes.NewReader(v.body))
			return
		}
	}
	// What http.ServeContent does for a request without preconditions or
	// ranges, with the values worked out once.
	if c.lastModified != "" {
		set("Last-Modified", c.lastModified)
	}
	if _, ok := hdr["Content-Type"]; !ok {
		set("Content-Type", v.contentType)
	}
	set("Accept-Ranges", "bytes")
	if v.contentLength != "" {
		set("Content-Length", v.contentLength)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(v.body)
	}
}

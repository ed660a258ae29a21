package preview

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/vitehost/vitehost/sandbox"
)

// This file is the router's refusal of the requests that Vite's file-read
// advisories use, for every Vite version: a session may run a Vite line
// whose own checks (server.fs.deny, server.fs.allow) have published
// bypasses, and the sandbox confines what the dev server reads to the
// session's files and packages, but among those are files nobody with the
// preview URL should read (the tenant's .env, a key). The shapes, from
// Vite's advisories:
//
//   - GHSA-c24v-8rfc-w8vw (CVE-2024-23331): case variations of a denied
//     name on a case-insensitive file system
//   - GHSA-9cwx-2883-4wfx (CVE-2024-45811): ?import&raw
//   - GHSA-x574-m823-4x7w (CVE-2025-30208): /@fs/...?raw?? and ?import&raw??
//   - GHSA-4r4m-qw57-chr8 (CVE-2025-31125): ?inline&import, ?raw?import
//   - GHSA-xcj6-pq6g-qj4x (CVE-2025-31486): .svg?.wasm?init and /@fs/ with ..
//   - GHSA-356w-63v5-8wf4 (CVE-2025-32395): a # in the request target
//     followed by ../
//   - GHSA-859w-5945-r5v3 (CVE-2025-46565): /.env/. and similar trailing
//     path forms of a denied file in the root
//   - GHSA-353f-5xf4-qw67 (CVE-2023-34092): a double slash before @fs
//   - GHSA-fx2h-pf6j-xcff (CVE-2026-53571): .env::$DATA and 8.3 names
//     (Windows only; refused here anyway)
//
// and in general any percent-encoding (double too), backslashes, NUL
// bytes and case variations of them. Not covered here: GHSA-p9ff-h696-f583
// (files read through the HMR WebSocket's vite:invoke fetchModule), which
// travels inside WebSocket frames; the sandbox bounds what it reaches, and
// the HMR socket needs the page's token.

// maxDecodes bounds how often a request target is percent-decoded: an
// encoding that is still there after that many rounds is refused.
const maxDecodes = 4

// deniedName reports whether a path segment names a file that Vite's
// default server.fs.deny protects (.env, .env.*, *.crt, *.pem, .git),
// after the forms that name the same file on some file system: trailing
// dots and spaces, an NTFS stream suffix (":$DATA").
func deniedName(seg string) bool {
	if i := strings.IndexByte(seg, ':'); i >= 0 {
		seg = seg[:i]
	}
	seg = strings.TrimRight(seg, ". ")
	switch {
	case seg == ".git", seg == ".env", strings.HasPrefix(seg, ".env."):
		return true
	case strings.HasSuffix(seg, ".pem"), strings.HasSuffix(seg, ".crt"):
		return true
	}
	return false
}

// isSeparator reports the characters that end a name in a request target:
// path separators of any system, and those of a query or a fragment.
func isSeparator(r rune) bool {
	switch r {
	case '/', '\\', '?', '#', '&', '=', ';':
		return true
	}
	return false
}

// deniedTarget reports whether the request target (path and query, as
// sent) asks for a file that Vite's server.fs.deny protects, or for a
// /@fs/ path outside roots (absolute, lower case, without a trailing
// slash). Query tokens count too: a file named in a query (?x=.env) is
// refused as well, at the cost of an odd false positive.
func deniedTarget(target string, roots []string) bool {
	s := target
	for i := 0; ; i++ {
		d, err := url.PathUnescape(s)
		if err != nil && i == 0 {
			// Vite cannot decode it either (decodeURI throws), and what
			// a decoder that skips the bad escape would make of it is
			// anyone's guess.
			return true
		}
		if err != nil || d == s {
			break // a later round's failure is a plain % ("100%25.png")
		}
		if i == maxDecodes {
			return true
		}
		s = d
	}
	if strings.ContainsRune(s, 0) {
		return true
	}
	s = strings.ToLower(strings.ReplaceAll(s, "\\", "/"))
	for tok := range strings.FieldsFuncSeq(s, isSeparator) {
		if deniedName(tok) {
			return true
		}
	}
	// Vite strips the query and the hash before it looks at the file, but
	// advisories came from layers that did not: both readings must stay
	// inside roots.
	before, _, _ := strings.Cut(s, "?")
	before, _, _ = strings.Cut(before, "#")
	return outsideRoots(before, roots) || outsideRoots(s, roots)
}

// outsideRoots reports whether p has an @fs segment whose absolute path
// lies outside roots.
func outsideRoots(p string, roots []string) bool {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if seg != "@fs" {
			continue
		}
		file := path.Clean("/" + strings.Join(segs[i+1:], "/"))
		for _, root := range roots {
			if file == root || strings.HasPrefix(file, root+"/") {
				return false
			}
		}
		return true
	}
	return false
}

// deniedRequest reports whether r is one deniedTarget refuses, read from
// the target as sent and as Go decoded it.
func deniedRequest(r *http.Request, roots []string) bool {
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	return deniedTarget(target, roots) || deniedTarget(r.URL.Path, roots)
}

// fsRoots returns where session s's dev server may serve /@fs/ paths
// from: the project and its packages.
func (m *Manager) fsRoots(s *session) []string {
	if s.env.sandbox != nil {
		return []string{sandbox.ProjectDir, sandbox.ModulesDir}
	}
	return []string{strings.ToLower(s.dir), strings.ToLower(m.opts.CacheDir)}
}

// forbidden answers a request that deniedRequest refused, as Vite answers
// one its own checks refuse.
func forbidden(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "Restricted: the preview does not serve this file.", http.StatusForbidden)
}

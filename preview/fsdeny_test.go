package preview

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

var sandboxRoots = []string{"/project", "/node_modules"}

// TestDeniedTargetAdvisories asks for the files of Vite's server.fs.deny
// and for /@fs/ paths outside the project in the shapes of Vite's
// advisories (see fsdeny.go), and for what pages really load.
func TestDeniedTargetAdvisories(t *testing.T) {
	denied := []string{
		// the names, plainly
		"/.env", "/.env.local", "/.env.production.local", "/src/.env", "/.git/config", "/.git/HEAD",
		"/cert.pem", "/keys/server.crt", "/a/b/.git/objects/ab/cdef",
		// CVE-2025-30208, CVE-2024-45811, CVE-2025-31125: queries
		"/.env?raw", "/.env?raw??", "/.env?import&raw??", "/.env?import&raw", "/.env?url", "/.env?inline",
		"/.env?inline&import", "/.env?raw?import", "/key.pem?import&url", "/.env?.svg?.wasm?init",
		"/@fs/project/.env?raw??", "/@fs/project/.env?import&raw??",
		// encodings
		"/%2eenv", "/%2Eenv?raw", "/%252eenv", "/%25252eenv", "/.%65nv", "/%2e%65%6e%76", "/.env%3Fraw",
		"/.git%2fconfig", "/.git%5cconfig", "/src%2f..%2f.env", "/%2e%2e/.env",
		// trailing forms (CVE-2025-46565) and Windows names (CVE-2026-53571)
		"/.env/", "/.env/.", "/.env.", "/.env ", "/.env::$DATA", "/.env::$DATA?raw", "/cert.pem.", "/cert.pem::$data",
		// case (CVE-2024-23331) and backslashes
		"/.ENV", "/.Env.Local", "/CERT.PEM", "/.GIT/config", "/src\\.env", "\\.env",
		// NUL bytes
		"/.env%00.js", "/src/App.tsx%00", "/x%2500",
		// what no decoder reads the same way
		"/src/%zz.ts", "/src/a%2.ts", "/.e%nv",
		// /@fs/ outside the project and its packages
		"/@fs/etc/passwd", "/@fs/etc/passwd?raw", "/@fs/etc/passwd?import&raw??", "/@fs/proc/self/environ",
		"/@fs/project/../etc/passwd", "/@fs/project/%2e%2e/etc/passwd", "/@fs/project/..%2fetc/passwd",
		"/@fs/project/#/../../etc/passwd", "/@fs/project/?/../../etc/passwd", "/@fs/project/src/a.ts?x=/../../../etc/passwd",
		"//@fs/etc/passwd", "/./@fs/etc/passwd", "/src/../@fs/etc/passwd", "/@FS/etc/passwd", "/%40fs/etc/passwd",
		"/@fs%2fetc%2fpasswd", "/@fs\\etc\\passwd", "/app/@fs/etc/passwd", "/@fs/projectx/a.js", "/@fs/node_modulesx/a.js",
		"/@fs/etc/passwd?.svg?.wasm?init", "/@fs/tmp/secret.txt?import&inline",
	}
	for _, target := range denied {
		assert.True(t, deniedTarget(target, sandboxRoots), "%q must be refused", target)
	}
	served := []string{
		"/", "/index.html", "/src/main.tsx", "/src/main.tsx?t=1733412345678", "/src/App.tsx?import",
		"/@vite/client", "/@vite/env", "/@react-refresh", "/@id/__x00__virtual:my-module",
		"/node_modules/.vite/deps/react.js?v=2a1b3c4d", "/.vite-cache/deps/react-dom_client.js?v=1",
		"/@fs/node_modules/vite/dist/client/env.mjs", "/@fs/project/src/App.tsx?import", "/@fs/project",
		"/src/environment.ts", "/src/env.d.ts", "/src/pem-parser.ts", "/src/certificate.tsx", "/public/git.svg",
		"/hmr?token=abc123", "/src/index.css?direct", "/assets/logo.svg?url", "/src/data.json?raw",
		"/api/users?id=1&q=hello", "/src/components/ui/button.tsx", "/src/100%25.png",
	}
	for _, target := range served {
		assert.False(t, deniedTarget(target, sandboxRoots), "%q must be served", target)
	}
}

// encodings are the ways a request target spells a string: as is,
// percent-encoded once or twice (every byte, or only the dots and
// slashes), with backslashes, in upper case.
var encodings = []func(string) string{
	func(s string) string { return s },
	func(s string) string { return percentAll(s) },
	func(s string) string { return percentAll(percentAll(s)) },
	func(s string) string { return strings.NewReplacer(".", "%2e", "/", "%2f").Replace(s) },
	func(s string) string { return strings.NewReplacer(".", "%252E").Replace(s) },
	func(s string) string { return strings.ReplaceAll(s, "/", "\\") },
	strings.ToUpper,
}

func percentAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// FuzzDeniedTarget builds targets that name a denied file, or a /@fs/ path
// that climbs out of the project, between whatever comes before and after,
// spelled in any of the encodings: each must be refused.
func FuzzDeniedTarget(f *testing.F) {
	f.Add("src", "?raw??", 0, uint8(0))
	f.Add("", "?import&raw", 1, uint8(2))
	f.Add("a/b", "::$DATA", 2, uint8(3))
	f.Add("@fs/project", "/", 3, uint8(6))
	f.Add("x", "?.svg?.wasm?init", 4, uint8(5))
	names := []string{".env", ".env.local", ".git", "id.pem", "tls.crt", ".ENV.production"}
	f.Fuzz(func(t *testing.T, before, after string, name int, enc uint8) {
		if name < 0 {
			name = -name
		}
		n := names[name%len(names)]
		e := encodings[int(enc)%len(encodings)]
		// The name must stay a name of its own: what comes around it is
		// cut off by a separator.
		for _, target := range []string{
			"/" + e(before+"/"+n) + "/" + after,
			"/" + e(before+"/"+n) + "?" + after,
			"/" + e(before) + "/" + e(n) + "#" + after,
		} {
			if !deniedTarget(target, sandboxRoots) {
				t.Fatalf("%q served", target)
			}
		}
		// /@fs/ out of the project: ../ as many times as the path is deep.
		depth := 1 + strings.Count(strings.Trim(before, "/"), "/")
		if strings.Trim(before, "/") == "" {
			depth = 0
		}
		if strings.ContainsAny(before, "?#\\%.\x00") {
			return
		}
		climb := "/@fs/project/" + strings.Trim(before, "/") + "/" + strings.Repeat("../", depth+1) + "etc/passwd"
		if target := e(climb) + "?" + after; !deniedTarget(target, sandboxRoots) {
			t.Fatalf("%q served", target)
		}
	})
}

// FuzzDeniedTargetAny checks that any target is decided without a panic,
// and that a well-encoded target refused once is refused after one more
// round of percent-encoding (below the bound on decodes). A target that no
// decoder reads (a bad escape) is refused as it is; encoded once more it
// names a file with a "%" in its name, which is no bypass.
func FuzzDeniedTargetAny(f *testing.F) {
	for _, s := range []string{"/.env", "/@fs/etc/passwd", "/src/main.tsx?t=1", "/%2e%2e/", "/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if _, err := url.PathUnescape(target); err != nil || !deniedTarget(target, sandboxRoots) {
			return
		}
		if enc := url.PathEscape(target); !deniedTarget(enc, sandboxRoots) {
			t.Fatalf("%q refused, %q served", target, enc)
		}
	})
}

package deps

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpecs is the table of finding 8 of issue 19: what npm resolves against
// the registry is accepted, and every spec that npm would read as a path, a
// tarball, a repository or a URL is refused, naming the dependency.
func TestSpecs(t *testing.T) {
	for _, spec := range []string{
		"1.2.3", "v1.2.3", "=1.2.3", "1.2.3-beta.1", "1.2.3-rc.1+build.5", "^1.2", "~1", "~>1.2", "1.x", "1.2.X", "*", "x",
		">=1 <2", ">= 1.2.0 < 2", "1.x || 2", "^1 || ^2 || >=3.0.0-rc.0", "1.2 - 2", "<=3", "  ^19.0.0  ",
		"latest", "next", "beta", "ts5.6", "canary-20250101", "Next_1",
		"npm:react", "npm:react@^18", "npm:@scope/pkg@1.2.3", "npm:rolldown-vite@latest", "npm:a@1 || 2",
	} {
		assert.NoError(t, checkSpec("dep", spec), "%q", spec)
	}
	for _, spec := range []string{
		"", " ", "\t", "..", ".", "./x", "../x", "/etc", "/etc/passwd", "~/x", "~", "^", "file:..", "file:/etc", "link:..",
		"canary.tgz", "x.tar", "x.tar.gz", "X.TGZ", "latest.", "git+https://github.com/u/r.git", "git://x/y", "github:u/r", "u/r",
		"gitlab:u/r", "bitbucket:u/r", "gist:11081aaa", "http://evil.example/x.tgz", "https://evil.example/x.tgz",
		"npm:../x", "npm:./x", "npm:/etc", "npm:x@file:..", "npm:x@../y", "npm:x@", "npm:", "npm:npm:x", "npm:X", "npm:x@1#y",
		"workspace:*", "workspace:^1", "portal:..", "patch:x@1#p", "exec:x", "1.0.0 || file:x", "1.0.0 ../x", "^1 || ./x",
		"1.0.0; rm -rf ~", "1\t2", "ü", "1.0.0 && x", "$(id)", "`id`", "1.0.0\n../x", "01.2.3", "1.2.3.4", "1.2-beta", "a b",
		"#semver:^1", "u/r#main", "C:\\x", "\\\\host\\share", strings.Repeat("1", 200),
	} {
		err := checkSpec("evil", spec)
		var ie *InvalidError
		require.ErrorAs(t, err, &ie, "%q accepted", spec)
		assert.Equal(t, CodeBadDependency, ie.Code, "%q", spec)
		assert.Contains(t, ie.Msg, `"evil"`, "the message names the dependency: %q", spec)
	}
}

// readsAsRegistry is npm-package-arg's reading of a spec, written here
// apart from the parser: false when npm would take it for a directory, a
// tarball, a repository or a URL.
func readsAsRegistry(spec string) bool {
	s := strings.TrimSpace(spec)
	if rest, ok := strings.CutPrefix(s, "npm:"); ok {
		name, inner := rest, ""
		if i := strings.LastIndexByte(rest, '@'); i > 0 {
			name, inner = rest[:i], rest[i+1:]
		}
		if strings.HasPrefix(name, "@") {
			if strings.Count(name, "/") != 1 {
				return false
			}
			name = strings.Replace(name[1:], "/", "", 1)
		}
		return !strings.ContainsAny(name, "/\\:@#") && !strings.HasPrefix(name, ".") && name != "" && (inner == "" || readsAsRegistry(inner) && !strings.HasPrefix(inner, "npm:"))
	}
	l := strings.ToLower(s)
	switch {
	case s == "", strings.ContainsAny(s, ":/\\#@\n\r\t;&$`"),
		strings.HasPrefix(s, "."), strings.HasPrefix(s, "~/"),
		strings.HasSuffix(l, ".tgz"), strings.HasSuffix(l, ".tar"), strings.HasSuffix(l, ".tar.gz"):
		return false
	}
	for _, r := range strings.Split(s, "||") {
		for _, f := range strings.Fields(r) {
			if strings.HasPrefix(f, ".") || strings.HasPrefix(f, "~/") {
				return false
			}
		}
	}
	return true
}

func FuzzCheckSpec(f *testing.F) {
	for _, s := range []string{"^1.2.3", "latest", "npm:@a/b@^1", "..", "canary.tgz", "1 || file:x", "npm:../x", "~/x", "1.2.3-rc.1+b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		if checkSpec("x", spec) != nil {
			return
		}
		if !readsAsRegistry(spec) {
			t.Fatalf("accepted %q, which npm reads as something other than a registry package", spec)
		}
	})
}

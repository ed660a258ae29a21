package request

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCleanPath(t *testing.T) {
	ok := []string{
		"src/App.tsx", "index.html", "public/logo.png", "src/components/ui/button.tsx",
		".env", "src/.hidden", "a b/c d.ts", "src/ünïcode.ts", "tsconfig.json",
	}
	for _, p := range ok {
		got, err := CleanPath(p, 512)
		require.NoError(t, err, p)
		assert.Equal(t, p, got)
	}
	bad := []struct{ in, why string }{
		{"", "empty"},
		{"../x", "leaves"},
		{"a/../../x", "leaves"},
		{"src/../../etc/passwd", "leaves"},
		{"/etc/passwd", "absolute"},
		{"C:\\Windows\\x", "contains"},
		{"C:/x", "contains"},
		{"src\\App.tsx", "contains"},
		{"a\x00b", "contains"},
		{"a\nb", "contains"},
		{"src//App.tsx", "empty"},
		{"./src/App.tsx", "empty"},
		{"src/", "empty"},
		{"node_modules/react/index.js", "managed"},
		{"src/node_modules/x.js", "managed"},
		{".vite-cache/deps/react.js", "managed"},
		{".git/config", "managed"},
		{".vitehost-tmp-abc", "reserved"},
		{strings.Repeat("a", 513), "longer than"},
		{strings.Repeat("a", 256) + "/x", "longer than 255"},
		{"\xff\xfe", "UTF-8"},
	}
	for _, tt := range bad {
		_, err := CleanPath(tt.in, 512)
		require.Error(t, err, "%q", tt.in)
		var re *Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, CodeBadPath, re.Code)
		assert.Contains(t, err.Error(), tt.why, "%q", tt.in)
	}
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"src/App.tsx", "../x", "a/./b", "/abs", "a\x00", "C:x", "node_modules/x", "a//b", "..", "."} {
		f.Add(s)
	}
	root := "/srv/preview-x"
	f.Fuzz(func(t *testing.T, name string) {
		got, err := CleanPath(name, 512)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		full := filepath.Join(root, got)
		if !strings.HasPrefix(full, root+"/") {
			t.Fatalf("%q escapes the root: %q", name, full)
		}
		for _, c := range strings.Split(got, "/") {
			if c == ".." || c == "." || c == "" || reserved[c] {
				t.Fatalf("%q accepted with component %q", name, c)
			}
		}
		if strings.ContainsAny(got, "\x00\\:") {
			t.Fatalf("%q accepted", name)
		}
	})
}

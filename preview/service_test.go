package preview

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These are the unit tests of the public service's parts: ids, origins,
// the Vite floor, npm's errors, lockfile keys, quotas and the install
// queue.

func TestValidID(t *testing.T) {
	for _, id := range []string{"abc123", "a", "0", NewID(), "my-session-1", "a--b", strings.Repeat("a", MaxIDLength),
		"3fa85f64-5717-4562-b3fc-2c963f66afa6"} {
		assert.True(t, ValidID(id), "%q", id)
	}
	for _, id := range []string{"", "-abc", "abc-", "ABC123", "abc_123", "a.b", "a/b", "..", "a b", "ü",
		strings.Repeat("a", MaxIDLength+1), "abc\x00"} {
		assert.False(t, ValidID(id), "%q", id)
	}
	assert.Equal(t, 55, MaxIDLength)
	assert.Equal(t, 63, len("preview-"+strings.Repeat("a", MaxIDLength)), "preview-{id} fits one DNS label")

	err := badID("sessionId", "ABC123")
	assert.Contains(t, err.Error(), `use "abc123"`, "upper case is named as the problem")
	err = badID("sessionId", "a.b")
	assert.Contains(t, err.Error(), "55 characters")
}

func FuzzValidID(f *testing.F) {
	for _, s := range []string{"abc123", "-a", "a-", "A", "a.b", "../x", strings.Repeat("z", 56), NewID()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidID(id) {
			return
		}
		label := "preview-" + id
		if len(label) > 63 || strings.ContainsAny(label, "./\\:\x00") || strings.ToLower(label) != label {
			t.Fatalf("%q accepted: preview-{id} is not one lowercase DNS label", id)
		}
		if filepath.Dir(filepath.Join("/srv/base", label)) != "/srv/base" {
			t.Fatalf("%q accepted: its directory leaves the base", id)
		}
	})
}

func TestParseOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://App.Example.com":     "https://app.example.com",
		"https://app.example.com:443": "https://app.example.com",
		"http://localhost:8080":       "http://localhost:8080",
		"http://localhost:80/":        "http://localhost",
		"HTTP://[::1]:8080":           "http://[::1]:8080",
		"http://[::1]":                "http://[::1]",
	} {
		got, ok := parseOrigin(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "null", "app.example.com", "ftp://x", "https://u:p@x", "https://x/path", "https://x?q", "file:///etc"} {
		_, ok := parseOrigin(in)
		assert.False(t, ok, in)
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://a.example", "http://[::1]:80", "null", "http://x:99999", "https://A:443/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		canon, ok := parseOrigin(in)
		if !ok {
			return
		}
		again, ok := parseOrigin(canon)
		if !ok || again != canon {
			t.Fatalf("%q -> %q -> %q, %v: the canonical form is not stable", in, canon, again, ok)
		}
	})
}

func TestUsageQuotas(t *testing.T) {
	l := Limits{MaxSessionFiles: 4, MaxSessionBytes: 100, MaxSessionDirs: 2}.withDefaults()
	file := func(name string, n int) pendingFile { return pendingFile{name: name, data: make([]byte, n)} }
	u := newUsage([]pendingFile{file("index.html", 10), file("src/App.tsx", 10), file("src/a/b.ts", 10)})
	assert.Len(t, u.files, 3)
	assert.Equal(t, int64(30), u.bytes)
	assert.Len(t, u.dirs, 2, "src and src/a")
	require.NoError(t, checkQuota(nil, u, l))

	quota := func(err error) string {
		var qe *QuotaError
		if assert.ErrorAs(t, err, &qe) {
			assert.ErrorIs(t, err, ErrQuota)
			return qe.Limit
		}
		return ""
	}
	next := u.after([]pendingFile{file("src/b/c.ts", 1)}, nil)
	assert.Equal(t, "directories", quota(checkQuota(u, next, l)), "a third directory")
	next = u.after([]pendingFile{file("x.ts", 1), file("y.ts", 1)}, nil)
	assert.Equal(t, "files", quota(checkQuota(u, next, l)), "a fifth file")
	next = u.after([]pendingFile{file("src/App.tsx", 81)}, nil)
	assert.Equal(t, "bytes", quota(checkQuota(u, next, l)), "a file that grows to 81 bytes: 20 + 81 > 100")
	assert.Len(t, u.files, 3, "after leaves the usage it came from unchanged")

	// Replacing and deleting: the same counts as the disk.
	next = u.after([]pendingFile{file("src/App.tsx", 5)}, []string{"src/a/b.ts"})
	require.NoError(t, checkQuota(u, next, l))
	assert.Len(t, next.files, 2)
	assert.Equal(t, int64(15), next.bytes)
	assert.Len(t, next.dirs, 1, "src/a is gone with its only file")
	next = next.after([]pendingFile{file("src/b/c.ts", 1), file("src/b/d.ts", 1)}, nil)
	require.NoError(t, checkQuota(u, next, l), "the directory freed is free again")
	next = u.after([]pendingFile{file("gone.ts", 1)}, []string{"gone.ts"})
	assert.Len(t, next.files, 3, "written then deleted in one update: deleted, as the disk has it")

	// A session over a quota lowered after it was made may shrink.
	lower := Limits{MaxSessionFiles: 2, MaxSessionBytes: 100, MaxSessionDirs: 2}.withDefaults()
	require.NoError(t, checkQuota(u, u.after([]pendingFile{file("src/App.tsx", 1)}, nil), lower), "staying")
	require.NoError(t, checkQuota(u, u.after(nil, []string{"index.html"}), lower), "shrinking")
	assert.Equal(t, "files", quota(checkQuota(u, u.after([]pendingFile{file("new.ts", 1)}, nil), lower)), "growing")

	// Depth is a quota on each name.
	_, err := checkFiles([]File{{Name: strings.Repeat("d/", 16) + "x.ts"}}, nil, Limits{}.withDefaults(), false)
	assert.Equal(t, "depth", quota(err))
	_, err = checkFiles([]File{{Name: strings.Repeat("d/", 15) + "x.ts"}}, nil, Limits{}.withDefaults(), false)
	assert.NoError(t, err, "16 components are allowed")
}

package preview

import (
	"context"
	"fmt"
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

func TestViteVersionFloor(t *testing.T) {
	for _, v := range []string{"6.4.3", "6.4.6", "6.5.0", "7.3.5", "7.3.8", "8.0.16", "8.4.0", "9.0.0", "10.1.2-beta.1", "^8.0.0", "latest", ""} {
		assert.NoError(t, checkViteVersion(v), v)
	}
	for _, v := range []string{"6.4.2", "6.0.9", "v6.3.0", "=7.3.4", "7.0.0", "8.0.15", "8.0.16-beta.1", "5.4.21", "4.5.14", "0.1.0"} {
		err := checkViteVersion(v)
		var re *RequestError
		require.ErrorAs(t, err, &re, v)
		assert.Equal(t, CodeViteVersion, re.Code)
	}
	assert.ErrorContains(t, checkViteVersion("5.4.21"), "not supported")
	assert.ErrorContains(t, checkViteVersion("8.0.5"), "older than 8.0.16")
}

// TestParseNPMError reads npm 11's output for the three ways a declared
// set fails to resolve (captured here), and a network failure.
func TestParseNPMError(t *testing.T) {
	for _, tt := range []struct {
		name, out, code, reason string
		client                  bool
	}{
		{"no matching version", `npm error code ETARGET
npm error notarget No matching version found for vite@^99.0.0.
npm error notarget In most cases you or one of your dependencies are requesting a package version that doesn't exist.
npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-01T23_12_52_962Z-debug-0.log
`, "ETARGET", "No matching version found for vite@^99.0.0.", true},
		{"no such package", `npm error code E404
npm error 404 Not Found - GET https://registry.npmjs.org/this-package-does-not-exist-vitehost-xyz
npm error 404
npm error 404  The requested resource 'this-package-does-not-exist-vitehost-xyz@1.0.0' could not be found or you do not have permission to access it.
npm error 404
npm error 404 Note that you can also install from a
npm error 404 tarball, folder, http url, or git url.
npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-01T23_12_54_393Z-debug-0.log
`, "E404", "The requested resource 'this-package-does-not-exist-vitehost-xyz@1.0.0' could not be found or you do not have permission to access it.", true},
		{"peer conflict", `npm error code ERESOLVE
npm error ERESOLVE unable to resolve dependency tree
npm error
npm error While resolving: x@undefined
npm error Found: react@19.3.1
npm error node_modules/react
npm error   react@"^19" from the root project
npm error
npm error Could not resolve dependency:
npm error peer react@"17.0.0" from react-dom@17.0.0
npm error node_modules/react-dom
npm error For a full report see:
npm error /root/.npm/_logs/2026-12-01T23_12_56_390Z-eresolve-report.txt
npm error A complete log of this run can be found in: /root/.npm/_logs/2026-12-01T23_12_56_390Z-debug-0.log
`, "ERESOLVE", `could not resolve the dependency: peer react@"17.0.0" from react-dom@17.0.0`, true},
		{"network", `npm error code ENOTFOUND
npm error syscall getaddrinfo
npm error network request to https://registry.npmjs.org/vite failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org
npm error A complete log of this run can be found in: /root/.npm/_logs/x.log
`, "ENOTFOUND", "syscall getaddrinfo", false},
		{"disk", "npm error code ENOSPC\nnpm error nospc ENOSPC: no space left on device, mkdir '/srv/cache/deps/x.stage-1/node_modules'\n",
			"ENOSPC", "nospc ENOSPC: no space left on device, mkdir '<path>'", false},
		{"not npm", "sh: 1: pnpm: not found\n", "", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := parseNPMError(tt.out)
			assert.Equal(t, tt.code, f.code)
			assert.Equal(t, tt.reason, f.reason)
			assert.Equal(t, tt.client, f.client())
			assert.NotContains(t, f.String(), "/root")
			assert.NotContains(t, f.String(), "https://")
		})
	}
}

func TestParseLockfile(t *testing.T) {
	lock := func(rootSpec, viteVersion string) []byte {
		return fmt.Appendf(nil, `{"name":"x","lockfileVersion":3,"packages":{
			"":{"name":"x","dependencies":{"vite":%q}},
			"node_modules/vite":{"version":%q,"resolved":"https://registry.npmjs.org/vite/-/vite-%[2]s.tgz","integrity":"sha512-x"},
			"node_modules/esbuild":{"version":"0.25.0"}}}`, rootSpec, viteVersion)
	}
	a, err := parseLockfile(lock("^8.0.0", "8.4.0"))
	require.NoError(t, err)
	b, err := parseLockfile(lock("8.x", "8.4.0"))
	require.NoError(t, err)
	c, err := parseLockfile(lock("^8.0.0", "8.3.8"))
	require.NoError(t, err)
	assert.Equal(t, a.key, b.key, "the root's specs do not make the key")
	assert.NotEqual(t, a.key, c.key, "the pinned versions do")
	assert.Len(t, a.key, 24)
	assert.Equal(t, "8.4.0", a.vite)
	_, err = parseLockfile([]byte(`{"lockfileVersion":1,"dependencies":{}}`))
	assert.Error(t, err)
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

func TestInstallQueueOrder(t *testing.T) {
	q := newInstallQueue(1)
	first, err := q.acquire(context.Background())
	require.NoError(t, err)
	order := make(chan int, 3)
	ctxs := make([]context.CancelFunc, 3)
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		go func() {
			release, err := q.acquire(ctx)
			if err != nil {
				order <- -i
				return
			}
			order <- i
			release()
		}()
		// Each waiter is in the queue before the next one comes.
		require.Eventually(t, func() bool { _, w := q.counts(); return w == i+1 }, wait, pollEvery)
	}
	ctxs[1]()
	assert.Equal(t, -1, <-order, "the waiter that gave up leaves")
	first()
	assert.Equal(t, 0, <-order)
	assert.Equal(t, 2, <-order, "in the order they came")
	running, waiting := q.counts()
	assert.Zero(t, running)
	assert.Zero(t, waiting)
	for _, c := range ctxs {
		c()
	}
}

package deps

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestViteVersionFloor(t *testing.T) {
	for _, v := range []string{"6.4.3", "6.4.6", "6.5.0", "7.3.5", "7.3.8", "8.0.16", "8.4.0", "9.0.0", "10.1.2-beta.1", "^8.0.0", "latest", ""} {
		assert.NoError(t, CheckViteVersion(v), v)
	}
	for _, v := range []string{"6.4.2", "6.0.9", "v6.3.0", "=7.3.4", "7.0.0", "8.0.15", "8.0.16-beta.1", "5.4.21", "4.5.14", "0.1.0"} {
		err := CheckViteVersion(v)
		var re *InvalidError
		require.ErrorAs(t, err, &re, v)
		assert.Equal(t, CodeViteVersion, re.Code)
	}
	assert.ErrorContains(t, CheckViteVersion("5.4.21"), "not supported")
	assert.ErrorContains(t, CheckViteVersion("8.0.5"), "older than 8.0.16")
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

package deps

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestViteVersionFloor: by default every release from 4.5 on runs; an
// operator's floor refuses older ones, with a message that proposes the
// newest line the project's plugins accept.
func TestViteVersionFloor(t *testing.T) {
	for _, v := range []string{"4.5.0", "4.5.14", "5.4.21", "6.0.9", "6.4.3", "7.3.5", "8.0.16", "9.0.0", "10.1.2-beta.1", "^8.0.0", "latest", ""} {
		assert.NoError(t, CheckViteVersion(v, "", nil), v)
	}
	for _, v := range []string{"4.4.9", "3.2.0", "v2.9.0", "0.1.0", "4.5.0-beta.1"} {
		err := CheckViteVersion(v, "", nil)
		var re *InvalidError
		require.ErrorAs(t, err, &re, v)
		assert.Equal(t, CodeViteVersion, re.Code)
	}
	lovable := Set{"vite": "^5.4.1", "@vitejs/plugin-react-swc": "^3.5.0", "lovable-tagger": "^1.1.7", "react": "^18.3.1"}
	err := CheckViteVersion("5.4.21", "6.4.3", lovable)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "vite 5.4.21 is older than 6.4.3")
	assert.Contains(t, err.Error(), "use vite ^7.3.5, the newest line that the project's plugins accept (@vitejs/plugin-react-swc 3)")
	err = CheckViteVersion("5.4.21", "8", lovable)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "accept Vite 7 at most (@vitejs/plugin-react-swc 3)")
	assert.NotContains(t, err.Error(), "use vite ^8", "never a version the project's own plugins refuse")
	assert.Contains(t, CheckViteVersion("6.0.1", "6.4", Set{"vite": "^6.0.0"}).Error(), "use vite ^8.0.16")
}

func TestParseFloor(t *testing.T) {
	for in, want := range map[string]string{"": MinVite, "6": "6.0.0", "6.4": "6.4.0", "v6.4.3": "6.4.3", "3": MinVite, "8.0.16": "8.0.16"} {
		got, err := ParseFloor(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"six", "6.x", "^6", "6.4.3-beta.1", "6.4.3.1"} {
		_, err := ParseFloor(in)
		assert.Error(t, err, in)
	}
}

// TestViteRange decides declared ranges against a floor before anything
// resolves.
func TestViteRange(t *testing.T) {
	refused := map[string]string{ // spec: floor
		"^5.4.1": "6", "~5.4.0": "5.5", "5.4.21": "5.4.22", "5.x": "6", "5": "6", "<6": "6", "<=5.4.21": "5.4.22",
		"^4.5.0 || ^5.0.0": "6", "4.5.0 - 5.4.21": "6", ">=4 <6": "6", "~6.3": "6.4.3", "=6.4.2": "6.4.3", "~4.4.0": "",
	}
	for spec, floor := range refused {
		err := CheckViteRange(spec, floor, nil)
		var re *InvalidError
		require.ErrorAs(t, err, &re, "%s with floor %s", spec, floor)
		assert.Equal(t, CodeViteVersion, re.Code)
	}
	passed := map[string]string{
		"^5.4.1": "5.4.21", "^6.0.0": "6.4.3", ">=5": "8", "latest": "8", "*": "8", "": "8", "^5.4.1 || ^8.0.0": "8",
		"npm:rolldown-vite@7": "8", "<=6.4.3": "6.4.3", "4.5.0 - 6": "6.4.3", "^4.5.0": "", "^4.4.0": "", "^6.4.2": "6.4.3",
	}
	for spec, floor := range passed {
		assert.NoError(t, CheckViteRange(spec, floor, nil), "%s with floor %s", spec, floor)
	}
}

// TestViteWarning: a session on a release with published file-read
// advisories is told so, with the line its plugins accept.
func TestViteWarning(t *testing.T) {
	for _, v := range []string{"4.5.14", "5.4.21", "6.4.2", "7.0.0", "8.0.15"} {
		w, ok := ViteWarning(v, nil)
		assert.True(t, ok, v)
		assert.Equal(t, WarnViteAdvisories, w.Code)
		assert.Contains(t, w.Message, "vite "+v)
	}
	for _, v := range []string{"6.4.3", "7.3.5", "8.0.16", "8.4.0", "9.0.0", "latest"} {
		_, ok := ViteWarning(v, nil)
		assert.False(t, ok, v)
	}
	w, _ := ViteWarning("5.4.21", Set{"@vitejs/plugin-react-swc": "^3.5.0", "lovable-tagger": "^1.1.7"})
	assert.Contains(t, w.Message, "use vite ^7.3.5")
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

// TestComplete adds what a package.json without vite lacks, or says what
// is missing.
func TestComplete(t *testing.T) {
	template := Set{"react": "^19.2.0", "react-dom": "^19.2.0", "vite": "^8.0.0", "@vitejs/plugin-react": "^6.0.0"}
	got, w, err := Complete(Set{"react": "^18.3.1", "react-dom": "^18.3.1", "lucide-react": "^0.400.0"}, template)
	require.NoError(t, err)
	assert.Equal(t, "^8.0.0", got["vite"])
	assert.Equal(t, "^6.0.0", got["@vitejs/plugin-react"])
	assert.Equal(t, "^18.3.1", got["react"], "the project's own versions stay")
	require.Len(t, w, 1)
	assert.Equal(t, WarnViteAdded, w[0].Code)
	assert.Contains(t, w[0].Message, "vite@^8.0.0 and @vitejs/plugin-react@^6.0.0")

	got, _, err = Complete(Set{"react": "^18.3.1", "@vitejs/plugin-react-swc": "^3.5.0", "lovable-tagger": "^1.1.7"}, template)
	require.NoError(t, err)
	assert.Equal(t, "^7.3.5", got["vite"], "the newest line the project's plugins accept")
	assert.NotContains(t, got, "@vitejs/plugin-react")

	got, _, err = Complete(Set{"vue": "^3.5.0", "@vitejs/plugin-vue": "^6.0.0"}, template)
	require.NoError(t, err)
	assert.Equal(t, "^8.0.0", got["vite"])

	own := Set{"vite": "^5.4.1", "react": "^18.3.1"}
	got, w, err = Complete(own, template)
	require.NoError(t, err)
	assert.Equal(t, own, got)
	assert.Empty(t, w)

	_, _, err = Complete(Set{"vue": "^3.5.0", "lodash": "^4"}, template)
	var re *InvalidError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, CodeBadDependency, re.Code)
	assert.Contains(t, re.Msg, "no vite, and neither react nor a Vite framework plugin")
	assert.Contains(t, re.Msg, "@vitejs/plugin-vue")
}

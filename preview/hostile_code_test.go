package preview_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// listener is a TCP port of the host that tenant code must not reach; it
// records who connects.
type listener struct {
	ln   net.Listener
	port int
	wg   sync.WaitGroup

	mu      sync.Mutex
	from    []string // remote addresses, in the order of acceptance
	checked int      // how many of from an earlier check has seen
}

func listen(t *testing.T) *listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &listener{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.mu.Lock()
			l.from = append(l.from, c.RemoteAddr().String())
			l.mu.Unlock()
			c.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		l.wg.Wait()
	})
	return l
}

// since returns the connections accepted since the last call, other than
// the test's own: the test connects last, and once its connection is
// accepted, every connection made before it has been (the kernel's accept
// queue is first in, first out).
func (l *listener) since(t *testing.T) []string {
	t.Helper()
	c, err := net.Dial("tcp", l.ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	own := c.LocalAddr().String()
	var out []string
	require.Eventually(t, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i := l.checked; i < len(l.from); i++ {
			if l.from[i] == own {
				out = append([]string(nil), l.from[l.checked:i]...)
				l.checked = i + 1
				return true
			}
		}
		return false
	}, wait, pollEvery, "the listener accepts the test's own connection")
	return out
}

// escape is what a probe that runs code tries: the files it writes outside
// its project, the listener it connects to, and the report it leaves in
// its project when it is done.
type escape struct {
	name    string
	targets map[string]string // what -> host path
	port    int               // the listener's
	done    string            // the report's file name in the project
}

// installed is the name of escape.targets' entry for the shared
// dependency install: the probe finds it (beside react's package.json),
// the test searches the install cache for the file's name.
const installed = "the dependency install (shared)"

func (h *hostile) escape(t *testing.T, l *listener, name string) *escape {
	id := randomMarker("")[:12] + "-" + name
	e := &escape{
		name: name,
		targets: map[string]string{
			"a directory of the host":      filepath.Join(h.dir, "pwned-"+id),
			"the host's /tmp":              "/tmp/vitehost-pwned-" + id,
			"the service's base directory": filepath.Join(h.svc.base, "pwned-"+id),
			installed:                      "pwned-" + id,
		},
		port: l.port,
		done: "hostile-done-" + id + ".json",
	}
	// What got through is removed again: the install cache outlives the test.
	t.Cleanup(func() {
		for what, p := range e.targets {
			if what == installed {
				for _, f := range findFile(t, depsCache(t), p) {
					os.Remove(f)
				}
				continue
			}
			os.Remove(p)
		}
	})
	return e
}

// code returns JavaScript, valid in ES modules and CommonJS alike, that
// tries the escape and then reports; root is a JavaScript expression for
// the project's directory.
func (e *escape) code(root string) string {
	targets := map[string]string{}
	for k, v := range e.targets {
		if k != installed {
			targets[k] = v
		}
	}
	tj, _ := json.Marshal(targets)
	return fmt.Sprintf(`;(async () => {
  const fs = await import('node:fs')
  const net = await import('node:net')
  const path = await import('node:path')
  const { createRequire } = await import('node:module')
  const root = %s
  const report = {}
  const write = (what, file) => {
    try { fs.writeFileSync(file, 'written by a hostile tenant'); report[what] = 'written' } catch (e) { report[what] = String((e && e.code) || e) }
  }
  for (const [what, file] of Object.entries(%s)) write(what, file)
  try {
    const react = createRequire(path.join(root, 'package.json')).resolve('react/package.json')
    write(%q, path.join(path.dirname(react), %q))
  } catch (e) { report[%q] = String((e && e.code) || e) }
  report.connect = await new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: %d })
    s.setTimeout(10000, () => { s.destroy(); resolve('timeout') })
    s.on('connect', () => { s.end('hello from a hostile tenant'); resolve('connected') })
    s.on('error', (e) => resolve(String(e.code || e)))
  })
  fs.writeFileSync(path.join(root, %q), JSON.stringify({ done: true, report }))
})()
`, root, tj, installed, e.targets[installed], installed, e.port, e.done)
}

// Expressions for the directory of the module that runs the code.
const (
	esmDir = "decodeURIComponent(new URL('.', import.meta.url).pathname)"
	cjsDir = "__dirname"
)

// tryEscape sends a's files as a new session and, with update set, as an
// update of a running session; each time it loads the page (the CSS
// pipeline runs then) until the probe reports through the preview host
// that it is done, or the session has failed, and checks the host: no file
// written outside the project, no connection accepted. A config file is
// read when the dev server starts: only CSS that uses code is an update's.
func (h *hostile) tryEscape(t *testing.T, l *listener, update bool, a func(e *escape) attempt) {
	t.Helper()
	ev := &evidence{}
	svc := h.svc
	check := func(e *escape) {
		t.Helper()
		for what, p := range e.targets {
			if what == installed {
				assert.Empty(t, findFile(t, depsCache(t), p), "%s: a file was written into %s", e.name, what)
				continue
			}
			assert.NoFileExists(t, p, "%s: a file was written into %s", e.name, what)
		}
		assert.Empty(t, l.since(t), "%s: a connection reached the host's port", e.name)
	}

	e := h.escape(t, l, "create")
	at := a(e)
	status, created := svc.collect(t, ev, "POST", "", at.create(probeApp(at.name), true))
	if status == 200 {
		h.awaitProbe(t, ev, created, e)
		svc.collect(t, ev, "DELETE", "/"+created.SessionID, nil)
	}
	check(e)

	if update {
		e = h.escape(t, l, "update")
		at = a(e)
		status, running := svc.collect(t, ev, "POST", "", at.create(benignApp, false))
		require.Equal(t, 200, status, "a session without the attempt starts: %s", running.Raw)
		status, _ = svc.collect(t, ev, "POST", "/"+running.SessionID+"/update", map[string]any{"files": at.project(probeApp(at.name), true)})
		if status == 200 {
			h.awaitProbe(t, ev, running, e)
		}
		svc.collect(t, ev, "DELETE", "/"+running.SessionID, nil)
		check(e)
	}
	ev.assertClean(t, h.secrets)
}

// awaitProbe loads the session's page until the probe's report is served,
// or the session has failed (then its code has ended too).
func (h *hostile) awaitProbe(t *testing.T, ev *evidence, s apiResponse, e *escape) {
	t.Helper()
	deadline := time.After(wait)
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	for {
		h.svc.crawl(t, ev, s.PreviewURL)
		status, body := h.svc.fetch(t, ev, s.PreviewURL+"/"+e.done)
		var report struct {
			Done   bool
			Report map[string]string
		}
		if status == 200 && json.Unmarshal([]byte(body), &report) == nil && report.Done {
			t.Logf("%s: the probe reports %v", e.name, report.Report)
			return
		}
		_, st := h.svc.collect(t, ev, "GET", "/"+s.SessionID, nil)
		if st.Status == "error" || st.Status == "" {
			t.Logf("%s: the session failed (%s): %s", e.name, st.Status, st.Raw)
			return
		}
		select {
		case <-poll.C:
		case <-deadline:
			require.FailNow(t, "the probe never reported, and the session did not fail", e.name)
		}
	}
}

// findFile returns the paths under root named name.
func findFile(t *testing.T, root, name string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// tailwind4 is the dependency set of a project with Tailwind 4 through
// its Vite plugin.
var tailwind4 = map[string]any{
	"dependencies":    map[string]string{"react": "^19.2.0", "react-dom": "^19.2.0"},
	"devDependencies": map[string]string{"vite": "^8.0.0", "@vitejs/plugin-react": "^6.0.0", "tailwindcss": "^4.3.0", "@tailwindcss/vite": "^4.3.0"},
}

// TestHostileCode makes the dev server run the tenant's code, the ways
// Vite's ecosystem runs code that a project names: a Tailwind 4 @plugin
// and @config in CSS, a PostCSS plugin named in a JSON rc file, a
// postcss.config.js and a vite.config.ts. Each tries to write outside its
// project and to connect to a port of the host.
func TestHostileCode(t *testing.T) {
	h := startHostile(t)
	l := listen(t)
	tw4CSS := func(directive string) map[string]any {
		return file("src/index.css", "@import \"tailwindcss\";\n"+directive+"\n")
	}
	noop := "\nexport default function () {}\n"
	tests := []struct {
		name    string
		update  bool
		attempt func(e *escape) attempt
	}{
		{"Tailwind 4 @plugin", true, func(e *escape) attempt {
			return attempt{name: "tailwind-plugin", pkg: tailwind4, files: []any{
				tw4CSS(`@plugin "../hostile-plugin.mjs";`), file("hostile-plugin.mjs", e.code(esmDir)+noop)}}
		}},
		{"Tailwind 4 @config", true, func(e *escape) attempt {
			return attempt{name: "tailwind-config", pkg: tailwind4, files: []any{
				tw4CSS(`@config "../hostile.config.mjs";`), file("hostile.config.mjs", e.code(esmDir)+"\nexport default {}\n")}}
		}},
		{"PostCSS plugin named in .postcssrc.json", false, func(e *escape) attempt {
			return attempt{name: "postcssrc", files: []any{
				file(".postcssrc.json", `{"plugins": {"./hostile-plugin.cjs": {}}}`),
				file("hostile-plugin.cjs", e.code(cjsDir)+"\nmodule.exports = () => ({ postcssPlugin: 'hostile' })\nmodule.exports.postcss = true\n")}}
		}},
		{"postcss.config.js", false, func(e *escape) attempt {
			return attempt{name: "postcss-config", files: []any{file("postcss.config.js", e.code(esmDir)+"\nexport default { plugins: [] }\n")}}
		}},
		{"vite.config.ts", false, func(e *escape) attempt {
			return attempt{name: "vite-config", files: []any{configTS(e.code(esmDir) + "\nexport default defineConfig({ plugins: [react()] })")}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.tryEscape(t, l, tt.update, tt.attempt)
		})
	}
}

// poisoner is a Tailwind 4 plugin that, from inside the dev server, appends
// code to every file that Vite's dependency optimizer writes into the
// session's cache, as soon as it appears and for as long as the server
// runs, and reports each file it changed in report (at the project root).
// It looks for the optimizer's output in its project and, only where it
// can tell that it runs in a sandbox (an /etc/passwd without root), in the
// whole file system it sees: run without the sandbox, it must not touch
// the host's files.
func poisoner(marker, report string) string {
	return fmt.Sprintf(`import fs from 'node:fs'
import path from 'node:path'

const root = decodeURIComponent(new URL('.', import.meta.url).pathname)
let passwd = ''
try { passwd = fs.readFileSync('/etc/passwd', 'utf8') } catch {}
const sandboxed = !/^root:/m.test(passwd)
const skip = new Set(['/proc', '/sys', '/dev', '/usr', '/node_modules'])
const poison = '\n;globalThis.__hostilePoison = %q;\n'
const poisoned = []
// Optimizer output is a directory with a _metadata.json.
const outputs = (dir, depth) => {
  let found = []
  let entries = []
  try { entries = fs.readdirSync(dir, { withFileTypes: true }) } catch { return found }
  if (entries.some((e) => e.name === '_metadata.json')) found.push(dir)
  if (depth > 0) for (const e of entries) {
    const sub = path.join(dir, e.name)
    if (e.isDirectory() && !skip.has(sub)) found = found.concat(outputs(sub, depth - 1))
  }
  return found
}
const tick = () => {
  for (const dir of sandboxed ? outputs('/', 5) : outputs(root, 4)) {
    for (const name of fs.readdirSync(dir)) {
      const file = path.join(dir, name)
      if (!name.endsWith('.js') || poisoned.includes(file)) continue
      try {
        if (!fs.readFileSync(file, 'utf8').includes(%q)) fs.appendFileSync(file, poison)
        poisoned.push(file)
        fs.writeFileSync(path.join(root, %q), JSON.stringify({ sandboxed, poisoned }))
      } catch {}
    }
  }
}
setInterval(() => { try { tick() } catch {} }, 10).unref()
export default function () {}
`, marker, marker, report)
}

// TestHostilePoisonedOptimizer is a tenant that tampers with what Vite's
// dependency optimizer wrote into its own session, hoping that the service
// hands that output to the next session with the same dependency set (the
// shared optimized dependencies of internal/launch/optimized.go): the
// other tenant's page would run the first tenant's code. The next session
// gets nothing of it.
func TestHostilePoisonedOptimizer(t *testing.T) {
	// A cache of its own, so that the hostile session is the first of its
	// dependency set; the sandbox's user must reach it (t.TempDir's parent
	// is private to root).
	cache, err := os.MkdirTemp("", "vitehost-hostile-deps-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(cache) })
	require.NoError(t, os.Chmod(cache, 0o755))
	h := startHostileWith(t, preview.Options{CacheDir: cache})
	marker := randomMarker("POISON")
	report := "hostile-poisoned-" + randomMarker("")[:12] + ".json"
	css := func(directive string) map[string]any {
		return file("src/index.css", "@import \"tailwindcss\";\n"+directive+"\n")
	}
	hostileApp := attempt{name: "poisoner", pkg: tailwind4, files: []any{
		css(`@plugin "../hostile-plugin.mjs";`), file("hostile-plugin.mjs", poisoner(marker, report))}}
	ev := &evidence{}
	status, created := h.svc.collect(t, ev, "POST", "", hostileApp.create(appTSX("poisoner"), true))
	require.Equal(t, 200, status, "body: %s", created.Raw)

	// The hostile session changed its own optimizer output: that is its
	// business, in its sandbox.
	deadline := time.After(wait)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for done := false; !done; {
		h.svc.crawl(t, &evidence{}, created.PreviewURL)
		status, body := h.svc.fetch(t, &evidence{}, created.PreviewURL+"/"+report)
		if done = status == 200 && strings.Contains(body, "poisoned"); done {
			t.Logf("the hostile session reports: %s", body)
			break
		}
		select {
		case <-poll.C:
		case <-deadline:
			require.FailNow(t, "the hostile session found no optimizer output to change")
		}
	}

	// Another tenant with the same dependency set and no config of its own.
	victim := attempt{name: "victim", pkg: tailwind4, files: []any{css("")}}
	status, other := h.svc.collect(t, ev, "POST", "", victim.create(appTSX("victim"), true))
	require.Equal(t, 200, status, "body: %s", other.Raw)
	assert.Contains(t, h.svc.crawl(t, ev, other.PreviewURL).module("/src/App.tsx"), "victim")
	ev.assertClean(t, []secret{{"the hostile session's code", marker}})
}

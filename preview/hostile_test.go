package preview_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

// The hostile suite of issue 12: a tenant that sends nothing but API
// requests tries every door out of its preview that is known, and each
// test asserts that nothing got through. The host holds secrets (values in
// the service's environment, a file outside every project, /etc/passwd,
// another tenant's source), and every byte the tenant gets back (API
// answers, pages, modules, error payloads, HMR messages) is searched for
// them. Code that the tenant makes the dev server run (a CSS plugin, a
// PostCSS or Vite config) tries to write outside its project and to
// connect to a port of the host; the test checks the host, not what the
// code says of itself.
//
// The suite runs against the default Options: the sandbox. This file holds
// what a tenant reads (host files, the environment, another session, the
// endpoints that act on the host); hostile_code_test.go the code it makes
// the dev server run, hostile_limits_test.go what it makes that code use.

// hostile is a preview service with the host's secrets planted.
type hostile struct {
	svc        *service
	dir        string // a host directory outside every project
	secretFile string // a host file that holds a secret
	secrets    []secret
}

// Names of the service's environment variables that hold secrets.
const (
	secretEnv     = "VITEHOST_HOSTILE_SECRET"
	secretViteEnv = "VITE_HOSTILE_SECRET" // Vite exposes VITE_* variables of its process to modules
)

// startHostile plants the secrets, in the environment before the service
// starts (its children inherit from there, if anything), and starts the
// service with the default Options.
func startHostile(t *testing.T) *hostile {
	t.Helper()
	return startHostileWith(t, preview.Options{})
}

// startHostileWith is startHostile with opts.
func startHostileWith(t *testing.T, opts preview.Options) *hostile {
	t.Helper()
	testenv.Short(t)
	testenv.LookPath(t, "bwrap")
	h := &hostile{dir: t.TempDir()}
	env, viteEnv, file := randomMarker("HOSTILEENV"), randomMarker("HOSTILEVITEENV"), randomMarker("HOSTILEFILE")
	t.Setenv(secretEnv, env)
	t.Setenv(secretViteEnv, viteEnv)
	h.secretFile = filepath.Join(h.dir, "secret-"+randomMarker("")+".txt")
	require.NoError(t, os.WriteFile(h.secretFile, []byte("api_token="+file+"\n"), 0o644))
	h.secrets = []secret{{"the service's environment variable " + secretEnv, env}, {"the service's environment variable " + secretViteEnv, viteEnv}, {"the host file " + h.secretFile, file}}
	if line := hostPasswdLine(); line != "" {
		h.secrets = append(h.secrets, secret{"the host's /etc/passwd", line})
	}
	h.secrets = append(h.secrets, startEnvironment()...)
	h.svc = startService(t, opts)
	return h
}

// all returns the secrets and the service's base directory: a host path
// that tells a tenant where the other sessions are. Probes that name the
// base directory themselves check h.secrets only.
func (h *hostile) all() []secret {
	return append(h.secrets[:len(h.secrets):len(h.secrets)], secret{"the service's base directory (a host path)", h.svc.base})
}

// hostPasswdLine returns root's line of the host's /etc/passwd: a sandbox
// has an /etc/passwd of its own, without root.
func hostPasswdLine() string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "root:") {
			return line
		}
	}
	return ""
}

// startEnvironment returns the entries of the environment this process
// started with, as /proc/<pid>/environ shows them (variables set later are
// not there): an operator's API tokens and credentials are among them.
// Variables that a sandbox sets itself, and short values, are left out.
func startEnvironment() []secret {
	b, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return nil
	}
	own := map[string]bool{"PATH": true, "HOME": true, "NODE_ENV": true, "TERM": true, "LANG": true, "LC_ALL": true, "PWD": true, "OLDPWD": true, "SHLVL": true, "_": true, "TMPDIR": true, "USER": true, "LOGNAME": true, "SHELL": true}
	var out []secret
	for _, kv := range strings.Split(string(b), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && !own[k] && len(v) >= 8 {
			out = append(out, secret{"the service's start environment (" + k + ")", kv})
		}
	}
	return out
}

// rel is the path p as a relative import from anywhere in a project: more
// "../" than any project is deep, then p.
func rel(p string) string { return strings.Repeat("../", 24) + strings.TrimPrefix(p, "/") }

func file(name, content string) map[string]any {
	return map[string]any{"name": name, "content": content}
}

// probeApp is an App.tsx that renders what src/probe.ts exports; its title
// says which probe it is, so that a crawl can tell it got this version.
func probeApp(name string) map[string]any {
	return file("src/App.tsx", fmt.Sprintf(`import probe from './probe'

export default function App() {
  return <main><h1 id="title">probe %s</h1><pre id="probe">{String(probe)}</pre></main>
}
`, name))
}

// probeTS is a src/probe.ts that exports the default export of spec.
func probeTS(spec string) map[string]any {
	return file("src/probe.ts", fmt.Sprintf("import s from %q\nexport default s\n", spec))
}

// globTS is a src/probe.ts that imports every file the glob pattern finds,
// as text, when the module loads.
func globTS(pattern string) map[string]any {
	return file("src/probe.ts", fmt.Sprintf("const found = import.meta.glob(%q, { query: '?raw', import: 'default', eager: true })\nexport default JSON.stringify(found)\n", pattern))
}

// cssTS is a src/probe.ts that loads src/probe.css (as text with inline).
func cssTS(css string, inline bool) []any {
	probe := "import './probe.css'\nexport default 'css'\n"
	if inline {
		probe = "import css from './probe.css?inline'\nexport default css\n"
	}
	return []any{file("src/probe.ts", probe), file("src/probe.css", css)}
}

// attempt is one way in: the files a tenant sends besides App.tsx.
type attempt struct {
	name  string
	files []any
	pkg   map[string]any // nil: the template's dependency set
	// ran, when set, is what some answer holds once the tenant's own code
	// (a config) has run: an attempt whose code never ran proves nothing.
	ran string
}

// project returns the files of a session of a's dependency set, with app
// as its App.tsx and, when with is set, a's files: the template's files
// when a has a package.json of its own (the service uses the template only
// without one).
func (a attempt) project(app map[string]any, with bool) []any {
	var files []any
	names := map[string]bool{}
	add := func(f any) {
		name := f.(map[string]any)["name"].(string)
		if !names[name] {
			names[name] = true
			files = append(files, f)
		}
	}
	add(app)
	if with {
		for _, f := range a.files {
			add(f)
		}
	}
	if a.pkg != nil {
		for _, name := range []string{"index.html", "src/main.tsx", "src/index.css"} {
			add(tmplFile(name))
		}
	}
	return files
}

func (a attempt) create(app map[string]any, with bool) map[string]any {
	body := map[string]any{"files": a.project(app, with)}
	if a.pkg != nil {
		body["packageJson"] = a.pkg
	}
	return body
}

// benignApp is the App.tsx of a session before an attempt reaches it.
var benignApp = appTSX("benign")

// try makes attempt a the two ways a tenant can, and returns everything
// the tenant got back: as an update of a running session whose page holds
// its HMR socket (the update answer, Vite's HMR messages, the page and its
// modules after it), and as the files of a new session (the create answer,
// the page and its modules). Both sessions are deleted before it returns.
func (h *hostile) try(t *testing.T, a attempt) *evidence {
	t.Helper()
	ev := &evidence{}
	svc := h.svc

	status, running := svc.collect(t, ev, "POST", "", a.create(benignApp, false))
	require.Equal(t, 200, status, "a session without the attempt starts: %s", running.Raw)
	hmr := svc.recordHMR(t, ev, running)
	status, _ = svc.collect(t, ev, "POST", "/"+running.SessionID+"/update", map[string]any{"files": a.project(probeApp(a.name), true)})
	if status == 200 {
		hmr.settle(t)
	}
	assert.Contains(t, svc.crawl(t, ev, running.PreviewURL).module("/src/App.tsx"), "probe "+a.name, "the crawl reached the updated App.tsx")
	svc.collect(t, ev, "GET", "/"+running.SessionID, nil)
	svc.collect(t, ev, "DELETE", "/"+running.SessionID, nil)

	status, created := svc.collect(t, ev, "POST", "", a.create(probeApp(a.name), true))
	if status == 200 {
		svc.crawl(t, ev, created.PreviewURL)
		svc.collect(t, ev, "GET", "/"+created.SessionID, nil)
		svc.collect(t, ev, "DELETE", "/"+created.SessionID, nil)
	}
	if a.ran != "" {
		assert.True(t, ev.contains(a.ran), "the tenant's config ran (the sandbox runs it): no answer holds %q", a.ran)
	}
	return ev
}

// settle waits for Vite's reaction to an update of App.tsx: an update, an
// error or a reload, or the socket closing when the dev server restarts.
func (r *hmrRecorder) settle(t *testing.T) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case m := <-r.msgs:
			switch m["type"] {
			case "update", "error", "full-reload":
				return
			}
		case <-r.done:
			return
		case <-deadline:
			assert.Fail(t, "Vite did not react to the update of App.tsx")
			return
		}
	}
}

// TestHostileHostFiles tries to read a host file by every import a module
// can make (absolute, relative, /@fs, globs, CSS @import), and by asking
// the preview host for it directly.
func TestHostileHostFiles(t *testing.T) {
	h := startHostile(t)
	abs := h.secretFile
	dir := filepath.Dir(abs)
	attempts := []attempt{
		{name: "import by absolute path", files: []any{probeTS(abs + "?raw")}},
		{name: "import by relative path", files: []any{probeTS(rel(abs) + "?raw")}},
		{name: "import through /@fs", files: []any{probeTS("/@fs" + abs + "?raw")}},
		{name: "import through /proc/self/root", files: []any{probeTS("/proc/self/root" + abs + "?raw")}},
		{name: "import as a URL", files: []any{probeTS(abs + "?url")}},
		{name: "import /etc/passwd", files: []any{probeTS(rel("/etc/passwd") + "?raw")}},
		{name: "import /proc/self/environ", files: []any{probeTS("/proc/self/environ?raw")}},
		{name: "import /proc/1/environ", files: []any{probeTS(rel("/proc/1/environ") + "?raw")}},
		{name: "import the service's /proc/pid/environ", files: []any{probeTS(fmt.Sprintf("/proc/%d/environ?raw", os.Getpid()))}},
		{name: "relative glob", files: []any{globTS(rel(dir) + "/secret-*")}},
		{name: "root-relative glob", files: []any{globTS("/" + rel(dir) + "/secret-*")}},
		{name: "absolute glob", files: []any{globTS(dir + "/secret-*")}},
		{name: "glob over a host tree", files: []any{globTS(rel(filepath.Dir(dir)) + "/**/secret-*")}},
		{name: "CSS @import by absolute path", files: cssTS(fmt.Sprintf("@import %q;\n", abs), false)},
		{name: "CSS @import by relative path", files: cssTS(fmt.Sprintf("@import %q;\n", rel(abs)), false)},
		{name: "CSS @import through /@fs, inlined", files: cssTS(fmt.Sprintf("@import url(%q);\n", "/@fs"+abs), true)},
		{name: "CSS url() of a host file", files: cssTS(fmt.Sprintf(".x { background: url(%q) }\n", rel(abs)), true)},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			h.try(t, a).assertClean(t, h.all())
		})
	}

	t.Run("direct requests", func(t *testing.T) {
		ev := &evidence{}
		status, created := h.svc.collect(t, ev, "POST", "", map[string]any{"files": []any{benignApp}})
		require.Equal(t, 200, status, "body: %s", created.Raw)
		for _, p := range []string{
			"/@fs" + abs, "/@fs" + abs + "?raw", "/@fs" + abs + "?import&raw", "/@fs" + abs + "?raw??",
			"/@fs" + abs + "?import&?raw", "/@fs" + abs + "?.svg?import", abs + "?raw", abs + "?import&raw",
			"/" + rel(abs), "/" + strings.ReplaceAll(rel(abs), "../", "%2e%2e/"), "/" + strings.ReplaceAll(rel(abs), "../", "..%2f"),
			"/@fs/etc/passwd", "/@fs/etc/passwd?raw", "/@fs/proc/self/environ?raw", "/@fs/proc/self/root" + abs + "?raw",
			fmt.Sprintf("/@fs/proc/%d/environ?raw", os.Getpid()), "/@fs" + dir + "/", "/@fs" + filepath.Dir(dir) + "/",
		} {
			h.svc.fetch(t, ev, created.PreviewURL+p)
		}
		ev.assertClean(t, h.all())
	})
}

// configTS is a vite.config.ts with the React plugin that runs body first.
func configTS(body string) map[string]any {
	return file("vite.config.ts", `import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'
import fs from 'node:fs'

const read = (p: string) => { try { return fs.readFileSync(p, 'utf8') } catch (e) { return String(e) } }
`+body+`
`)
}

// readAll is the body of a vite.config.ts that collects what the host
// offers its process: the environment, directly and through /proc, the
// service's own process, and files given by the caller.
func readAll(files ...string) string {
	quoted, _ := json.Marshal(files)
	return fmt.Sprintf(`const found = {
  env: process.env,
  environ: read('/proc/self/environ'),
  parent: read('/proc/' + process.ppid + '/environ'),
  service: read('/proc/%d/environ'),
  files: %s.map(read),
}
`, os.Getpid(), quoted)
}

// TestHostileEnvironment tries to read the service's environment: through
// import.meta.env, .env files that expand variables, and a vite.config that
// reads process.env and /proc, puts what it found into the modules
// (define) and into an error.
func TestHostileEnvironment(t *testing.T) {
	h := startHostile(t)
	envTS := file("src/probe.ts", "export default JSON.stringify(import.meta.env) + String(import.meta.env."+secretViteEnv+")\n")
	dotenv := fmt.Sprintf("VITE_A=${%s}\nVITE_B=$%s\nVITE_C=${%s}\n", secretEnv, secretEnv, secretViteEnv)
	attempts := []attempt{
		{name: "import.meta.env", files: []any{envTS}},
		{name: ".env expansion", files: []any{envTS, file(".env", dotenv)}},
		{name: ".env.development.local expansion", files: []any{envTS, file(".env.development.local", dotenv)}},
		{name: "vite.config define", files: []any{
			file("src/probe.ts", "declare const __FOUND__: string\nexport default __FOUND__\n"),
			configTS(readAll(h.secretFile, "/etc/passwd") + "export default defineConfig({ plugins: [react()], define: { __FOUND__: JSON.stringify(JSON.stringify(found)) } })"),
		}, ran: `"__FOUND__"`},
		{name: "vite.config throws what it read", files: []any{
			probeTS("./App.tsx"),
			configTS(readAll(h.secretFile, "/etc/passwd") + "throw new Error('found: ' + JSON.stringify(found))\nexport default defineConfig({})"),
		}, ran: "found: {"},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			h.try(t, a).assertClean(t, h.all())
		})
	}
}

// TestHostileOtherSession tries to read another tenant's source: by
// relative and absolute imports, a glob over the service's directory, a
// vite.config that reads it, and direct requests.
func TestHostileOtherSession(t *testing.T) {
	h := startHostile(t)
	marker := randomMarker("OTHERTENANT")
	status, other := h.svc.api(t, "POST", "", map[string]any{"files": []any{appTSX(marker)}})
	require.Equal(t, 200, status, "body: %s", other.Raw)
	secrets := append(h.secrets, secret{"another session's source", marker})
	otherApp := filepath.Join(h.svc.base, "preview-"+other.SessionID, "src", "App.tsx")
	require.FileExists(t, otherApp, "the test knows where the service keeps the other session")

	otherRel := "../../preview-" + other.SessionID + "/src/App.tsx" // from src/probe.ts, through the BaseDir
	attempts := []attempt{
		{name: "import by relative path", files: []any{probeTS(otherRel + "?raw")}},
		{name: "import by absolute path", files: []any{probeTS(otherApp + "?raw")}},
		{name: "import through /@fs", files: []any{probeTS("/@fs" + otherApp + "?raw")}},
		{name: "glob over the service's directory", files: []any{globTS("../../preview-*/src/*.tsx")}},
		{name: "absolute glob", files: []any{globTS(h.svc.base + "/*/src/*.tsx")}},
		{name: "vite.config reads the service's directory", files: []any{
			probeTS("./App.tsx"),
			configTS(fmt.Sprintf(`const found: Record<string, string> = {}
for (const dir of ['..', %q]) {
  try { for (const d of fs.readdirSync(dir)) found[d] = read(dir + '/' + d + '/src/App.tsx') } catch (e) { found[dir] = String(e) }
}
throw new Error('found: ' + JSON.stringify(found))
export default defineConfig({})`, h.svc.base)),
		}, ran: "found: {"},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			h.try(t, a).assertClean(t, secrets)
		})
	}

	t.Run("direct requests", func(t *testing.T) {
		ev := &evidence{}
		status, created := h.svc.collect(t, ev, "POST", "", map[string]any{"files": []any{benignApp}})
		require.Equal(t, 200, status, "body: %s", created.Raw)
		rootRel := "/../preview-" + other.SessionID + "/src/App.tsx"
		for _, p := range []string{
			"/@fs" + otherApp, "/@fs" + otherApp + "?raw", "/@fs" + otherApp + "?import&raw", rootRel, rootRel + "?raw",
			strings.ReplaceAll(rootRel, "..", "%2e%2e"), "/@fs" + h.svc.base + "/",
		} {
			h.svc.fetch(t, ev, created.PreviewURL+p)
		}
		ev.assertClean(t, secrets)
	})
	_, page := h.svc.get(t, other.PreviewURL+"/src/App.tsx")
	assert.Contains(t, page, marker, "the other session still serves its own source")
}

// TestHostileHostEndpoints asks a preview host for the dev server's
// endpoints that act on the host: Vite's /__open-in-editor would start the
// service's $EDITOR. Every spelling answers 404, and no editor runs.
func TestHostileHostEndpoints(t *testing.T) {
	editorDir := t.TempDir()
	ran := filepath.Join(editorDir, "editor-ran")
	editor := filepath.Join(editorDir, "editor")
	require.NoError(t, os.WriteFile(editor, []byte("#!/bin/sh\necho \"$@\" >> "+ran+"\n"), 0o755))
	for _, v := range []string{"LAUNCH_EDITOR", "VISUAL", "EDITOR"} {
		t.Setenv(v, editor)
	}
	h := startHostile(t)
	ev := &evidence{}
	status, created := h.svc.collect(t, ev, "POST", "", map[string]any{"files": []any{benignApp}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	for _, p := range []string{
		"/__open-in-editor?file=src/App.tsx", "/__open-in-editor?file=" + h.secretFile, "/__OPEN-IN-EDITOR?file=src/App.tsx",
		"/__open-in-editor/?file=src/App.tsx", "/__open-in-editor.x?file=src/App.tsx", "//__open-in-editor?file=src/App.tsx",
		"/./__open-in-editor?file=src/App.tsx", "/src/../__open-in-editor?file=src/App.tsx", "/%5F%5Fopen-in-editor?file=src/App.tsx",
		"/__open-in-editor%3Ffile=src/App.tsx",
	} {
		status, _ := h.svc.fetch(t, ev, created.PreviewURL+p)
		assert.Equal(t, 404, status, p)
	}
	assert.NoFileExists(t, ran, "no editor ran on the host")
	ev.assertClean(t, h.all())
}

package bench

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

func init() { Register("deps", 35, runDeps) }

// The template's dependency set, as
// preview/internal/launch/template/package.json declares it.
var templateDeps = map[string]string{"react": "^19.2.0", "react-dom": "^19.2.0"}
var templateDevDeps = map[string]string{"@vitejs/plugin-react": "^6.0.0", "vite": "^8.0.0"}

// addedPackage is a package a benchmark adds to the template: small, with
// no dependencies, and code whose output the page shows.
type addedPackage struct {
	name, spec string
	imp, expr  string // the import line and an expression that uses it
	want       string // what expr renders to
}

var addedPackages = []addedPackage{
	{"clsx", "^2.1.1", "import clsx from 'clsx'", `clsx("a", { b: true })`, "a b"},
	{"ms", "^2.1.3", "import ms from 'ms'", `ms(60000)`, "1m"},
	{"nanoid", "^5.1.5", "import { customAlphabet } from 'nanoid'", `customAlphabet("x", 3)()`, "xxx"},
	{"escape-html", "^1.0.3", "import escape from 'escape-html'", `escape("<b>")`, "&lt;b&gt;"},
	{"tiny-invariant", "^1.3.3", "import invariant from 'tiny-invariant'", `(invariant(true, "x"), "invariant")`, "invariant"},
}

// lovablePackageJSON is a project of the shape AI builders scaffold (shadcn
// components on Radix, React Router, TanStack Query, forms, zod, Tailwind),
// with a Vite the service accepts.
//
//go:embed testdata/lovable/package.json
var lovablePackageJSON []byte

// packageJSON returns a package.json with deps and devDeps.
func packageJSON(deps, devDeps map[string]string) map[string]any {
	return map[string]any{"name": "bench", "private": true, "type": "module", "dependencies": deps, "devDependencies": devDeps}
}

func withPackage(p addedPackage) map[string]string {
	d := map[string]string{p.name: p.spec}
	for k, v := range templateDeps {
		d[k] = v
	}
	return d
}

// appUsing is an App.tsx that shows what p's code renders.
func appUsing(p addedPackage) map[string]any {
	return map[string]any{"name": "src/App.tsx", "content": fmt.Sprintf(
		"%s\n\nexport default function App() {\n  return <main><h1 id=\"dep\">{%s}</h1></main>\n}\n", p.imp, p.expr)}
}

// runDeps measures dependency changes and installs with the node's package
// store: a package added to a live template session until the page shows
// it, beside npm install and pnpm add of that package in a local project of
// the same packages; a create of the template plus packages the store
// holds but no installed set has; and a Lovable-style project's cold create
// beside npm install of it by hand.
func runDeps(ctx context.Context, env *Env) ([]Row, error) {
	runs := len(addedPackages)
	if env.Quick {
		runs = 1
	}
	cache := filepath.Join(env.Dir, "deps-cache")
	svc, err := startPreviewServiceWith(env, "deps", cache, func(o *preview.Options) { o.Spares = -1 })
	if err != nil {
		return nil, err
	}
	defer svc.close()
	// The template's set, installed (and pnpm with it) before anything is
	// timed.
	if err := svc.m.Prepare(ctx); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	pnpm, err := filepath.Glob(filepath.Join(cache, "tools", "pnpm-*", "node_modules", "pnpm", "bin", "pnpm.cjs"))
	if err != nil || len(pnpm) == 0 {
		return nil, errors.New("the store's pnpm is not in the cache")
	}

	local, err := localProject(ctx, env, "npm-local", []string{"npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"})
	if err != nil {
		return nil, err
	}
	pnpmArgs := func(verb string, extra ...string) []string {
		return append([]string{"node", pnpm[0], verb, "--config.ignore-scripts=true", "--store-dir", filepath.Join(env.Dir, "pnpm-hand-store"),
			"--config.node-linker=hoisted", "--reporter=silent"}, extra...)
	}
	localPNPM, err := localProject(ctx, env, "pnpm-local", pnpmArgs("install"))
	if err != nil {
		return nil, err
	}

	browser, stop, err := testenv.StartBrowser()
	if err != nil {
		return nil, err
	}
	defer stop()
	id, _, _, err := svc.createAndLoad(ctx, "live")
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(browser.Ctx, 10*time.Minute)
	defer cancel()
	if err := chromedp.Run(bctx, chromedp.Navigate(svc.m.PreviewURL(id))); err != nil {
		return nil, err
	}
	events, err := svc.recordEvents(bctx, id)
	if err != nil {
		return nil, err
	}
	var live, npmAdd, pnpmAdd []time.Duration
	var installs, stops, starts []time.Duration // the live adds' parts
	for _, p := range addedPackages[:runs] {
		start := time.Now()
		if _, err := svc.post(ctx, "/"+id+"/update", map[string]any{
			"files":       []any{appUsing(p)},
			"packageJson": packageJSON(withPackage(p), templateDevDeps),
		}); err != nil {
			return nil, fmt.Errorf("add %s: %w", p.name, err)
		}
		if err := pollAcrossReload(bctx, fmt.Sprintf(`(document.querySelector("#dep") || {}).textContent === %q`, p.want)); err != nil {
			return nil, fmt.Errorf("add %s: the page: %w", p.name, err)
		}
		shown := time.Now()
		live = append(live, shown.Sub(start))
		installed, restarting, err := events.installAndStart(bctx, start)
		if err != nil {
			return nil, fmt.Errorf("add %s: %w", p.name, err)
		}
		installs, stops, starts = append(installs, installed.Sub(start)), append(stops, restarting.Sub(installed)), append(starts, shown.Sub(restarting))

		d, err := timed(ctx, local, "npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", p.name+"@"+p.spec)
		if err != nil {
			return nil, err
		}
		npmAdd = append(npmAdd, d)
		d, err = timed(ctx, localPNPM, pnpmArgs("add", p.name+"@"+p.spec)...)
		if err != nil {
			return nil, err
		}
		pnpmAdd = append(pnpmAdd, d)
		// Back to the same packages for the next one (not timed).
		if _, err := timed(ctx, local, "npm", "uninstall", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", p.name); err != nil {
			return nil, err
		}
		if _, err := timed(ctx, localPNPM, pnpmArgs("remove", p.name)...); err != nil {
			return nil, err
		}
		env.Log.Info("added a package", "package", p.name, "live", live[len(live)-1], "npm", npmAdd[len(npmAdd)-1], "pnpm", pnpmAdd[len(pnpmAdd)-1])
	}
	l, n, pn := Summarize(live), Summarize(npmAdd), Summarize(pnpmAdd)
	rows := []Row{
		{What: "add one package to a live template session until the page shows it", Value: Ms(l.P50) + " p50",
			Ratio: Ratio(float64(l.P50), float64(n.P50)) + " npm install <pkg>",
			Note:  fmt.Sprintf("%d packages, each new to the store (%s); an update of package.json and App.tsx, then Chromium polls the page across its reload; sandbox", l.N, packageNames(runs))},
		{What: "  its parts: the install (pnpm) / the switch (the old dev server's stop, the files) / the new dev server's start until the page shows it",
			Value: Ms(Summarize(installs).P50) + " / " + Ms(Summarize(stops).P50) + " / " + Ms(Summarize(starts).P50) + " p50",
			Note:  "from the session's event stream: the install's done, then the status starting"},
		{What: "npm install <pkg> in a local project of the template's packages", Value: Ms(n.P50) + " p50",
			Note: "the same packages, same run; npm's download cache as the machine has it"},
		{What: "pnpm add <pkg> in a local project of the template's packages", Value: Ms(pn.P50) + " p50",
			Ratio: Ratio(float64(l.P50), float64(pn.P50)) + " (live add / pnpm add)",
			Note:  strings.Replace(filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(pnpm[0]))))), "-", " ", 1) + ", hoisted, a store of its own"},
	}

	// The template plus packages that the store holds (the adds above) in a
	// combination no installed set has.
	combo := map[string]string{}
	for k, v := range templateDeps {
		combo[k] = v
	}
	for _, p := range addedPackages[:min(2, runs)] {
		combo[p.name] = p.spec
	}
	start := time.Now()
	a, err := svc.post(ctx, "", map[string]any{"files": projectFrame(appUsing(addedPackages[0])), "packageJson": packageJSON(combo, templateDevDeps)})
	if err != nil {
		return rows, fmt.Errorf("create with stored packages: %w", err)
	}
	if _, err := crawlClient(ctx, svc.client, a.PreviewURL); err != nil {
		return rows, err
	}
	rows = append(rows, Row{What: "create of the template plus packages in the store, a set not installed yet, until the page is loaded",
		Value: Ms(time.Since(start)), Note: fmt.Sprintf("%d package(s) added to the template; target ≤ 3 s; sandbox", len(combo)-len(templateDeps))})
	svc.delete(ctx, a.SessionID)

	r, err := measureLovable(ctx, env, pnpm[0])
	return append(rows, r...), err
}

// measureLovable creates a Lovable-style project on a service with an empty
// cache and store (pnpm itself copied in first from the script pnpm of
// another cache, not timed), beside npm install of the same package.json in
// an empty directory.
func measureLovable(ctx context.Context, env *Env, pnpm string) ([]Row, error) {
	var pkg map[string]any
	if err := json.Unmarshal(lovablePackageJSON, &pkg); err != nil {
		return nil, err
	}
	cache := filepath.Join(env.Dir, "lovable-cache")
	pkgDir := filepath.Dir(filepath.Dir(pnpm)) // tools/pnpm-X/node_modules/pnpm
	rel, err := filepath.Rel(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(pkgDir)))), pkgDir)
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(filepath.Join(cache, rel), os.DirFS(pkgDir)); err != nil {
		return nil, err
	}
	svc, err := startPreviewServiceWith(env, "lovable", cache, func(o *preview.Options) { o.Spares = -1 })
	if err != nil {
		return nil, err
	}
	defer svc.close()
	start := time.Now()
	a, err := svc.post(ctx, "", map[string]any{"files": projectFrame(lovableApp()), "packageJson": pkg})
	if err != nil {
		return nil, fmt.Errorf("lovable create: %w", err)
	}
	if _, err := crawlClient(ctx, svc.client, a.PreviewURL); err != nil {
		return nil, err
	}
	created := time.Since(start)

	dir := filepath.Join(env.Dir, "lovable-npm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), lovablePackageJSON, 0o644); err != nil {
		return nil, err
	}
	byHand, err := timed(ctx, dir, "npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	if err != nil {
		return nil, err
	}
	deps, _ := pkg["dependencies"].(map[string]any)
	dev, _ := pkg["devDependencies"].(map[string]any)
	return []Row{
		{What: "Lovable-style project: cold create until the page is loaded", Value: Ms(created),
			Ratio: Ratio(float64(created), float64(byHand)) + " npm install",
			Note:  fmt.Sprintf("%d dependencies + %d dev; an empty cache and store (pnpm already there); sandbox", len(deps), len(dev))},
		{What: "Lovable-style project: npm install by hand", Value: Ms(byHand),
			Note: "an empty directory, same run; npm's download cache as the machine has it"},
	}, nil
}

// lovableApp is an App.tsx that uses a few of the Lovable-style project's
// packages.
func lovableApp() map[string]any {
	return map[string]any{"name": "src/App.tsx", "content": `import { QueryClient, QueryClientProvider } from "@tanstack/react-query"
import { BrowserRouter, Routes, Route } from "react-router-dom"
import { clsx } from "clsx"
import { twMerge } from "tailwind-merge"
import { Check } from "lucide-react"
import { z } from "zod"

const queryClient = new QueryClient()
const name = z.string().parse("lovable")

export default function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <BrowserRouter>
        <Routes>
          <Route path="*" element={<h1 className={twMerge(clsx("p-2", "p-4"))}><Check /> {name}</h1>} />
        </Routes>
      </BrowserRouter>
    </QueryClientProvider>
  )
}
`}
}

// projectFrame is the index.html and src/main.tsx of a project that
// declares its own package.json (a create then starts from no template).
func projectFrame(app map[string]any) []any {
	return []any{
		map[string]any{"name": "index.html", "content": `<!doctype html>
<html lang="en">
  <head><meta charset="UTF-8" /><title>Preview</title></head>
  <body><div id="root"></div><script type="module" src="/src/main.tsx"></script></body>
</html>
`},
		map[string]any{"name": "src/main.tsx", "content": `import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import App from './App.tsx'

createRoot(document.getElementById('root')!).render(<StrictMode><App /></StrictMode>)
`},
		app,
	}
}

// localProject makes a project of the template's packages in env.Dir/name
// with the install command argv (not timed).
func localProject(ctx context.Context, env *Env, name string, argv []string) (string, error) {
	dir := filepath.Join(env.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(packageJSON(templateDeps, templateDevDeps), "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), data, 0o644); err != nil {
		return "", err
	}
	if _, err := timed(ctx, dir, argv...); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return dir, nil
}

// sessionEvents are the events of a session's stream as they arrive: type,
// data and the time the session stamped on each.
type sessionEvents struct {
	mu     sync.Mutex
	events []sessionEvent
}

type sessionEvent struct {
	typ, what string // what: an install's phase, a status
	at        time.Time
}

// Event types of the stream (preview's API).
const (
	eventInstall = "install"
	eventStatus  = "status"
)

// after returns the time of the first event typ about what that the
// session stamped at or after t, or the zero time.
func (e *sessionEvents) after(t time.Time, typ, what string) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if ev.typ == typ && ev.what == what && !ev.at.Before(t.Truncate(time.Millisecond)) {
			return ev.at
		}
	}
	return time.Time{}
}

// installAndStart returns when the dependency change begun at start was
// installed and when its new dev server began to start, as the session
// stamped them (the stream may bring them a little after the page shows).
func (e *sessionEvents) installAndStart(ctx context.Context, start time.Time) (installed, starting time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		installed = e.after(start, eventInstall, "done")
		if !installed.IsZero() {
			if starting = e.after(installed, eventStatus, string(preview.StatusStarting)); !starting.IsZero() {
				return installed, starting, nil
			}
		}
		select {
		case <-ctx.Done():
			return installed, starting, fmt.Errorf("the event stream told no install done, then a start: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// recordEvents reads the event stream of session id until ctx ends.
func (s *previewService) recordEvents(ctx context.Context, id string) (*sessionEvents, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.base+"/kontext/preview/"+id+"/events", nil)
	if err != nil {
		return nil, err
	}
	res, err := (&http.Client{Transport: s.client.Transport}).Do(req) // no timeout: it streams
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return nil, fmt.Errorf("events: %s", res.Status)
	}
	e := &sessionEvents{}
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		typ := ""
		for sc.Scan() {
			line := sc.Text()
			if t, ok := strings.CutPrefix(line, "event: "); ok {
				typ = t
				continue
			}
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var v struct {
				Time   int64  `json:"time"`
				Phase  string `json:"phase"`
				Status string `json:"status"`
			}
			if json.Unmarshal([]byte(data), &v) != nil {
				continue
			}
			e.mu.Lock()
			e.events = append(e.events, sessionEvent{typ: typ, what: v.Phase + v.Status, at: time.UnixMilli(v.Time)})
			e.mu.Unlock()
		}
	}()
	return e, nil
}

// timed runs argv in dir and returns how long it took.
func timed(ctx context.Context, dir string, argv ...string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %w: %s", argv, err, lastLine(out))
	}
	return time.Since(start), nil
}

func lastLine(out []byte) string {
	if len(out) > 400 {
		out = out[len(out)-400:]
	}
	return string(out)
}

// pollAcrossReload polls expr in the page until it is true; a reload
// between two polls is part of what it waits for.
func pollAcrossReload(ctx context.Context, expr string) error {
	for {
		var ok bool
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func packageNames(n int) string {
	s := ""
	for i, p := range addedPackages[:n] {
		if i > 0 {
			s += ", "
		}
		s += p.name
	}
	return s
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fsnotify/fsnotify"
	"github.com/gorilla/websocket"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

func init() { Register("preview", 30, runPreview) }

// previewService is a preview.Manager behind a real listener, its router in
// front, as examples/previewserver runs it.
type previewService struct {
	m       *preview.Manager
	store   *preview.MemoryStore
	base    string
	baseDir string // the Manager's BaseDir
	srv     *http.Server
	client  *http.Client
	dialer  *websocket.Dialer
}

func startPreviewService(env *Env, name, cacheDir string, noSandbox bool) (*previewService, error) {
	return startPreviewServiceWith(env, name, cacheDir, func(o *preview.Options) {
		o.NoSandbox = noSandbox
		// Each create in a runner of its own: the figures of this section
		// count node processes, and a spare runner helps one create of
		// several; the density section measures sessions in spares.
		o.Spares = -1
	})
}

// startPreviewServiceWith starts a service whose options tune may change.
func startPreviewServiceWith(env *Env, name, cacheDir string, tune func(*preview.Options)) (*previewService, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	store := &preview.MemoryStore{}
	opts := &preview.Options{
		PublicURL: fmt.Sprintf("http://localhost:%d", port),
		BaseDir:   filepath.Join(env.Dir, name),
		CacheDir:  cacheDir,
		Store:     store,
		Logger:    env.Log.With("service", name),
		Limits:    preview.Limits{MaxSessions: 40},
	}
	tune(opts)
	m, err := preview.New(opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &previewService{m: m, store: store, base: fmt.Sprintf("http://localhost:%d", port), baseDir: opts.BaseDir, srv: &http.Server{Handler: m.Router(m.API())}}
	go s.srv.Serve(ln)
	addr := ln.Addr().String()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr) // every host is this listener, as *.localhost is in a browser
	}
	s.client = &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 16}, Timeout: 5 * time.Minute}
	s.dialer = &websocket.Dialer{NetDialContext: dial, Subprotocols: []string{"vite-hmr"}, HandshakeTimeout: 30 * time.Second}
	return s, nil
}

func (s *previewService) close() {
	s.m.Close(context.Background())
	s.srv.Close()
}

type createAnswer struct {
	Success    bool   `json:"success"`
	SessionID  string `json:"sessionId"`
	PreviewURL string `json:"previewUrl"`
	WSURL      string `json:"wsUrl"`
	Updated    []string
	HMR        preview.HMR `json:"hmr"`
	Error      *struct{ Code, Message string }
}

func (s *previewService) post(ctx context.Context, path string, body any) (createAnswer, error) {
	var out createAnswer
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, "POST", s.base+"/kontext/preview"+path, bytes.NewReader(b))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return out, err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &out); err != nil || res.StatusCode != http.StatusOK {
		return out, fmt.Errorf("POST %s: %d %s", path, res.StatusCode, raw)
	}
	return out, nil
}

func appSource(text string) map[string]any {
	return map[string]any{"name": "src/App.tsx", "content": fmt.Sprintf(
		"export default function App() {\n  return <main><h1>%s</h1></main>\n}\n", text)}
}

// createAndLoad creates a session and loads its page with every module
// through the router, as a browser would right after: the API's answer and
// the loaded page are timed separately.
func (s *previewService) createAndLoad(ctx context.Context, text string) (id string, api, page time.Duration, err error) {
	start := time.Now()
	a, err := s.post(ctx, "", map[string]any{"files": []any{appSource(text)}})
	if err != nil {
		return "", 0, 0, err
	}
	api = time.Since(start)
	if _, err := crawlClient(ctx, s.client, a.PreviewURL); err != nil {
		return a.SessionID, api, 0, err
	}
	return a.SessionID, api, time.Since(start), nil
}

func (s *previewService) delete(ctx context.Context, id string) {
	req, _ := http.NewRequestWithContext(ctx, "DELETE", s.base+"/kontext/preview/"+id, nil)
	if res, err := s.client.Do(req); err == nil {
		res.Body.Close()
	}
}

// benchDepsCache is where the benchmark keeps dependency installs between
// runs: outside ~/.cache, since the sandbox's user must read them.
var benchDepsCache = filepath.Join(os.TempDir(), "vitehost-bench-preview-deps")

// runPreview measures the preview service with the React template: create
// until the page is served (cold and warm dependency cache), update until
// the HMR message arrives through the router beside the direct baseline and
// beside the API's answer, memory per idle session, each with the sandbox
// and without it, a batch of 121 files until the page shows them, and 20
// sessions created at once.
func runPreview(ctx context.Context, env *Env) ([]Row, error) {
	var rows []Row

	// Cold: an empty dependency cache (npm's own download cache is warm).
	cold := 2
	if env.Quick {
		cold = 1
	}
	var coldAPI []time.Duration
	for i := range cold {
		svc, err := startPreviewService(env, fmt.Sprintf("cold%d", i), filepath.Join(env.Dir, fmt.Sprintf("cold-deps-%d", i)), false)
		if err != nil {
			return rows, err
		}
		_, api, page, err := svc.createAndLoad(ctx, "cold")
		svc.close()
		if err != nil {
			return rows, fmt.Errorf("cold create: %w", err)
		}
		coldAPI = append(coldAPI, page)
		env.Log.Info("cold create", "api", api, "page", page)
	}
	c := Summarize(coldAPI)
	rows = append(rows, Row{What: "create until the page is loaded, cold dependency cache (sandbox)", Value: Ms(c.P50) + " p50",
		Note: fmt.Sprintf("%d runs; npm install of react, react-dom, vite, @vitejs/plugin-react (npm's download cache warm)", c.N)})

	var ref *previewFigures // the unsandboxed figures, measured first
	var sandboxed *previewService
	for _, noSandbox := range []bool{true, false} {
		mode := "sandbox"
		if noSandbox {
			mode = "no sandbox"
		}
		svc, err := startPreviewService(env, strings.ReplaceAll(mode, " ", "-"), benchDepsCache, noSandbox)
		if err != nil {
			return rows, err
		}
		f, err := measurePreview(ctx, env, svc)
		if err != nil {
			svc.close()
			return rows, fmt.Errorf("%s: %w", mode, err)
		}
		rows = append(rows, f.rows(mode, ref)...)
		if noSandbox {
			ref = f
			svc.close()
		} else {
			sandboxed = svc
		}
	}
	defer sandboxed.close()
	r, err := measureBatch(ctx, env, sandboxed)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	r, err = measureConcurrentCreates(ctx, env, sandboxed, 20)
	return append(rows, r...), err
}

// previewFigures are the measurements of one service.
type previewFigures struct {
	api, page       Stats
	memory          float64       // MiB per idle session, 2 s after the last page load
	settledMemory   float64       // MiB per idle session, settled
	settled         time.Duration // how long the memory took to settle
	sessions, procs int
	updates         updateFigures
}

// updateFigures are the measurements of updates of one service.
type updateFigures struct {
	written, viaFile Stats // the file written; the baseline, a file written by hand
	viaAPI, answers  Stats // the update's message on the page's socket; the API's answer
}

func (f *previewFigures) rows(mode string, ref *previewFigures) []Row {
	ratio := func(v func(*previewFigures) float64, what string) string {
		if ref == nil {
			return ""
		}
		return Ratio(v(f), v(ref)) + " " + what
	}
	u := &f.updates
	return []Row{
		{What: "create until the API answers (page served), warm cache (" + mode + ")", Value: fmt.Sprintf("%s p50 / %s p99", Ms(f.api.P50), Ms(f.api.P99)),
			Ratio: ratio(func(f *previewFigures) float64 { return float64(f.api.P50) }, "no sandbox"), Note: fmt.Sprintf("%d creates", f.api.N)},
		{What: "create until the page and all its modules loaded, warm cache (" + mode + ")", Value: fmt.Sprintf("%s p50 / %s p99", Ms(f.page.P50), Ms(f.page.P99)),
			Ratio: ratio(func(f *previewFigures) float64 { return float64(f.page.P50) }, "no sandbox"),
			Note:  fmt.Sprintf("%d creates, then every module through the router; target p50 <= 500 ms", f.page.N)},
		{What: "resident memory per idle session (" + mode + ")", Value: fmt.Sprintf("%.0f MiB", f.memory),
			Ratio: ratio(func(f *previewFigures) float64 { return f.memory }, "no sandbox"),
			Note: fmt.Sprintf("%d sessions, %d node processes, 2 s after the last page load; %.0f MiB once settled (in %s); target <= 310 MiB",
				f.sessions, f.procs, f.settledMemory, f.settled.Round(time.Second))},
		{What: "update via the API until the file is written (" + mode + ")", Value: fmt.Sprintf("%s p50 / %s p99", Ms(u.written.P50), Ms(u.written.P99)),
			Note: fmt.Sprintf("%d updates: HTTP, validation, atomic write (seen by inotify)", u.written.N)},
		{What: "HMR baseline: file written (temp file + rename) until Vite's socket has the update (" + mode + ")", Value: fmt.Sprintf("%s p50 / %s p99", Ms(u.viaFile.P50), Ms(u.viaFile.P99)),
			Note: fmt.Sprintf("%d writes, socket on Vite's HMR listener", u.viaFile.N)},
		{What: "update via the API until the update arrives through the router (" + mode + ")", Value: fmt.Sprintf("%s p50 / %s p99", Ms(u.viaAPI.P50), Ms(u.viaAPI.P99)),
			Ratio: Ratio(float64(u.viaAPI.P50), float64(u.viaFile.P50)) + " baseline" + map[bool]string{true: "", false: ", " + ratio(func(f *previewFigures) float64 { return float64(f.updates.viaAPI.P50) }, "no sandbox")}[ref == nil],
			Note:  fmt.Sprintf("%d updates of src/App.tsx; target: sandbox within 1.10x of no sandbox", u.viaAPI.N)},
		{What: "update via the API until the API answers with Vite's outcome (" + mode + ")", Value: fmt.Sprintf("%s p50 / %s p99", Ms(u.answers.P50), Ms(u.answers.P99)),
			Ratio: Ratio(float64(u.answers.P50), float64(u.viaAPI.P50)) + " socket",
			Note:  fmt.Sprintf("the same %d updates, timed from the same start as the row above (the page's socket); target p50 <= 2x socket", u.answers.N)},
	}
}

// measurePreview measures creates with a warm dependency cache, the memory
// of the idle sessions, and updates, on svc.
func measurePreview(ctx context.Context, env *Env, svc *previewService) (*previewFigures, error) {
	if err := svc.m.Prepare(ctx); err != nil {
		return nil, err
	}
	warm := 10
	if env.Quick {
		warm = 3
	}
	var apiTimes, pageTimes []time.Duration
	var idle []string
	for i := range warm + 1 {
		id, api, page, err := svc.createAndLoad(ctx, fmt.Sprintf("warm %d", i))
		if err != nil {
			return nil, fmt.Errorf("warm create: %w", err)
		}
		if i == 0 {
			svc.delete(ctx, id) // the first start pays for a cold file cache (and, in the sandbox, optimizes once for all)
			continue
		}
		apiTimes = append(apiTimes, api)
		pageTimes = append(pageTimes, page)
		idle = append(idle, id)
	}
	f := &previewFigures{api: Summarize(apiTimes), page: Summarize(pageTimes), sessions: len(idle)}

	// Memory of idle sessions: the node processes this benchmark started,
	// 2 s after the last page load (the figure older trees' benches read,
	// which the before section compares), and once settled: how much of
	// the first is garbage V8 has not collected yet depends on when its
	// last collection ran. Since the warm-up leaves the optimized
	// dependencies to Vite (5034b7f), an unsandboxed session held about
	// 20 MiB more 2 s after its load, and no more once settled.
	time.Sleep(2 * time.Second)
	rss, procs := nodeRSS()
	f.memory, f.procs = float64(rss)/float64(len(idle))/(1<<20), procs
	f.settled = settleMemory(ctx, func() int64 {
		rss, _ = nodeRSS()
		return rss
	})
	f.settledMemory = float64(rss) / float64(len(idle)) / (1 << 20)
	for _, id := range idle {
		svc.delete(ctx, id)
	}
	var err error
	f.updates, err = measureUpdates(ctx, env, svc)
	return f, err
}

// measureUpdates alternates updates through the API (timed until the
// update message arrives on a vite-hmr socket opened through the router,
// at wsUrl, and until the API answers) with direct writes into the session
// directory (timed until the message arrives on a socket connected to
// Vite's HMR port directly).
func measureUpdates(ctx context.Context, env *Env, svc *previewService) (u updateFigures, err error) {
	n := 50
	if env.Quick {
		n = 10
	}
	id, _, _, err := svc.createAndLoad(ctx, "update 0")
	if err != nil {
		return u, err
	}
	defer svc.delete(ctx, id)
	rec, err := svc.store.Get(ctx, id)
	if err != nil {
		return u, err
	}
	previewURL := svc.m.PreviewURL(id)
	tok, err := viteToken(ctx, svc.client, previewURL)
	if err != nil {
		return u, err
	}
	token := url.QueryEscape(tok)
	hmrURL, err := url.Parse(rec.HMRURL)
	if err != nil || rec.HMRURL == "" {
		return u, fmt.Errorf("no HMR URL in the session record %+v", rec)
	}
	dialer, directURL := &websocket.Dialer{Subprotocols: []string{"vite-hmr"}}, "ws://"+hmrURL.Host+preview.HMRPath+"?token="+token
	if hmrURL.Scheme == "unix" { // a sandboxed dev server
		sock := hmrURL.Path
		dialer.NetDialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
		directURL = "ws://localhost" + preview.HMRPath + "?token=" + token
	}
	routed, err := hmrSocket(ctx, svc.dialer, svc.m.WSURL(id)+"?token="+token, previewURL)
	if err != nil {
		return u, fmt.Errorf("socket through the router: %w", err)
	}
	defer routed.close()
	direct, err := hmrSocket(ctx, dialer, directURL, "")
	if err != nil {
		return u, fmt.Errorf("direct socket: %w", err)
	}
	defer direct.close()

	app := filepath.Join(rec.Dir, "src", "App.tsx")
	// The moment the file lands, seen from outside: it splits the API's time
	// into the service's part (request to written file) and Vite's.
	landed, stopWatch, err := watchFile(app)
	if err != nil {
		return u, err
	}
	defer stopWatch()
	var apiTimes, answerTimes, fileTimes, writeTimes []time.Duration
	for i := range n + 1 {
		routed.drain()
		drainTimes(landed)
		start := time.Now()
		a, err := svc.post(ctx, "/"+id+"/update", map[string]any{"files": []any{appSource(fmt.Sprintf("api %d", i))}})
		if err != nil {
			return u, err
		}
		answered := time.Since(start)
		if a.HMR.Type != preview.HMRUpdate {
			return u, fmt.Errorf("update %d through the API: hmr %+v", i, a.HMR)
		}
		at, err := routed.next(ctx)
		if err != nil {
			return u, fmt.Errorf("update %d through the API: %w", i, err)
		}
		if i > 0 {
			apiTimes = append(apiTimes, at.Sub(start))
			answerTimes = append(answerTimes, answered)
			select {
			case w := <-landed:
				writeTimes = append(writeTimes, w.Sub(start))
			default:
			}
		}
		time.Sleep(120 * time.Millisecond) // chokidar passes one change per path per 50 ms

		direct.drain()
		src := appSource(fmt.Sprintf("file %d", i))["content"].(string)
		start = time.Now() // the write is part of it, as in the API's case
		if err := os.WriteFile(app+".bench-tmp", []byte(src), 0o644); err != nil {
			return u, err
		}
		if err := os.Rename(app+".bench-tmp", app); err != nil {
			return u, err
		}
		at, err = direct.next(ctx)
		if err != nil {
			return u, fmt.Errorf("direct write %d: %w", i, err)
		}
		if i > 0 {
			fileTimes = append(fileTimes, at.Sub(start))
		}
		time.Sleep(120 * time.Millisecond)
	}
	return updateFigures{written: Summarize(writeTimes), viaFile: Summarize(fileTimes), viaAPI: Summarize(apiTimes), answers: Summarize(answerTimes)}, nil
}

// batchParts is the size of the batch that measureBatch sends: new modules,
// plus the App that imports them.
const batchParts = 120

// measureBatch sends the update the issue measured, batchParts new modules
// of about 40 KiB each and the App that imports them, listed first, to a
// page open in Chromium, and times the API's answer and the moment the page
// shows every new module (a MutationObserver in the page notes it).
func measureBatch(ctx context.Context, env *Env, svc *previewService) ([]Row, error) {
	runs := 5
	if env.Quick {
		runs = 1
	}
	browser, stop, err := testenv.StartBrowser()
	if err != nil {
		return nil, err
	}
	defer stop()
	id, _, _, err := svc.createAndLoad(ctx, "batch 0")
	if err != nil {
		return nil, err
	}
	defer svc.delete(ctx, id)
	bctx, cancel := context.WithTimeout(browser.Ctx, 5*time.Minute)
	defer cancel()
	if err := chromedp.Run(bctx, chromedp.Navigate(svc.m.PreviewURL(id)),
		chromedp.Poll(`!!document.querySelector("h1")`, nil, chromedp.WithPollingInterval(10*time.Millisecond)),
		chromedp.Evaluate(`window.__vitehostMarker = 42; window.__overlays = 0;
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) if (n.nodeName === 'VITE-ERROR-OVERLAY') window.__overlays++;
}).observe(document.documentElement, { childList: true, subtree: true });`, nil)); err != nil {
		return nil, fmt.Errorf("open the page: %w", err)
	}
	padding := strings.Repeat("x", 40<<10)
	var answers, shown []time.Duration
	size := 0
	for run := range runs {
		files, bytes := batchFiles(run, padding)
		size = bytes
		// The page notes when it shows every module of this run.
		watch := fmt.Sprintf(`window.__shownAt = 0;
new MutationObserver((_, o) => {
  if (document.querySelectorAll(".part-%d").length === %d) { window.__shownAt = Date.now(); o.disconnect() }
}).observe(document.body, { childList: true, subtree: true });`, run, batchParts)
		if err := chromedp.Run(bctx, chromedp.Evaluate(watch, nil)); err != nil {
			return nil, err
		}
		start := time.Now()
		a, err := svc.post(ctx, "/"+id+"/update", map[string]any{"files": files})
		if err != nil {
			return nil, err
		}
		answers = append(answers, time.Since(start))
		if a.HMR.Type != preview.HMRUpdate || a.HMR.Error != nil {
			return nil, fmt.Errorf("batch %d: hmr %+v", run, a.HMR)
		}
		var at int64
		if err := chromedp.Run(bctx, chromedp.Poll(`window.__shownAt`, &at, chromedp.WithPollingInterval(10*time.Millisecond))); err != nil {
			return nil, fmt.Errorf("batch %d on the page: %w", run, err)
		}
		shown = append(shown, time.UnixMilli(at).Sub(start).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
	}
	var overlays, marker int
	if err := chromedp.Run(bctx, chromedp.Evaluate(`window.__overlays`, &overlays), chromedp.Evaluate(`window.__vitehostMarker || 0`, &marker)); err != nil {
		return nil, err
	}
	a, p := Summarize(answers), Summarize(shown)
	note := fmt.Sprintf("%d batches of %d files (%.1f MB, the importer first) into a page open in Chromium, in the sandbox; error overlays seen: %d; page reloaded: %v",
		a.N, batchParts+1, float64(size)/(1<<20), overlays, marker != 42)
	return []Row{
		{What: fmt.Sprintf("update of %d new modules and their importer until the API answers", batchParts), Value: fmt.Sprintf("%s p50 / %s p99", Ms(a.P50), Ms(a.P99)), Note: note},
		{What: fmt.Sprintf("update of %d new modules and their importer until the page shows all of them", batchParts), Value: fmt.Sprintf("%s p50 / %s p99", Ms(p.P50), Ms(p.P99)), Note: "the same batches; the page's clock, in milliseconds"},
	}, nil
}

// batchFiles returns the files of batch run: an App that imports
// batchParts new modules (first), and the modules, whose class names carry
// the run. It returns their size too.
func batchFiles(run int, padding string) ([]any, int) {
	var imports, uses strings.Builder
	parts := make([]any, 0, batchParts)
	size := 0
	for i := range batchParts {
		name := fmt.Sprintf("Part%dx%03d", run, i)
		fmt.Fprintf(&imports, "import %s from './parts%d/%s'\n", name, run, name)
		fmt.Fprintf(&uses, "<%s />", name)
		src := fmt.Sprintf("const padding = %q\n\nexport default function %s() {\n  return <li className=\"part-%d\" title={padding.slice(0, 1)}>%s</li>\n}\n", padding, name, run, name)
		size += len(src)
		parts = append(parts, map[string]any{"name": fmt.Sprintf("src/parts%d/%s.tsx", run, name), "content": src})
	}
	app := fmt.Sprintf("%s\nexport default function App() {\n  return <main><h1>batch %d</h1><ul>%s</ul></main>\n}\n", imports.String(), run, uses.String())
	return append([]any{map[string]any{"name": "src/App.tsx", "content": app}}, parts...), size + len(app)
}

// measureConcurrentCreates creates n sessions at once and reports the total
// time, the failures and the memory they take.
func measureConcurrentCreates(ctx context.Context, env *Env, svc *previewService, n int) ([]Row, error) {
	if env.Quick {
		n = 5
	}
	before, _ := nodeRSS()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	var failures []string
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			id, _, _, err := svc.createAndLoad(ctx, fmt.Sprintf("concurrent %d", i))
			mu.Lock()
			defer mu.Unlock()
			if id != "" {
				ids = append(ids, id)
			}
			if err != nil {
				failures = append(failures, err.Error())
			}
		})
	}
	wg.Wait()
	total := time.Since(start)
	time.Sleep(2 * time.Second)
	after, procs := nodeRSS()
	for _, id := range ids {
		svc.delete(ctx, id)
	}
	note := fmt.Sprintf("each create followed by its page load; %d node processes", procs)
	if len(failures) > 0 {
		note += "; first failure: " + failures[0]
	}
	return []Row{
		{What: fmt.Sprintf("%d sessions created at once: total time", n), Value: Ms(total), Note: note},
		{What: fmt.Sprintf("%d sessions created at once: failures", n), Value: strconv.Itoa(len(failures)), Note: "there must be none"},
		{What: fmt.Sprintf("%d sessions created at once: memory", n), Value: fmt.Sprintf("%.0f MiB", float64(after-before)/(1<<20)),
			Note: fmt.Sprintf("%.0f MiB per session", float64(after-before)/float64(max(len(ids), 1))/(1<<20))},
	}, nil
}

// watchFile reports the times at which path is replaced or written.
func watchFile(path string) (<-chan time.Time, func(), error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, nil, err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, nil, err
	}
	times := make(chan time.Time, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.Events {
			if ev.Name == path && ev.Has(fsnotify.Create|fsnotify.Rename|fsnotify.Write) {
				select {
				case times <- time.Now():
				default:
				}
			}
		}
	}()
	return times, func() { w.Close(); <-done }, nil
}

func drainTimes(c <-chan time.Time) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

type hmrConn struct {
	c       *websocket.Conn
	updates chan time.Time
	done    chan struct{}
}

func hmrSocket(ctx context.Context, d *websocket.Dialer, u, origin string) (*hmrConn, error) {
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	c, res, err := d.DialContext(ctx, u, h)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	if _, msg, err := c.ReadMessage(); err != nil || !bytes.Contains(msg, []byte(`"connected"`)) {
		c.Close()
		return nil, fmt.Errorf("first message %q: %v", msg, err)
	}
	s := &hmrConn{c: c, updates: make(chan time.Time, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if bytes.Contains(msg, []byte(`"type":"update"`)) {
				s.updates <- time.Now()
			}
		}
	}()
	return s, nil
}

func (s *hmrConn) drain() {
	for {
		select {
		case <-s.updates:
		default:
			return
		}
	}
}

func (s *hmrConn) next(ctx context.Context) (time.Time, error) {
	select {
	case at := <-s.updates:
		return at, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-time.After(10 * time.Second):
		return time.Time{}, errors.New("no update message within 10 s")
	}
}

func (s *hmrConn) close() {
	s.c.Close()
	<-s.done
}

// nodeRSS sums the resident memory of the node processes descended from
// this process.
func nodeRSS() (rss int64, procs int) {
	t := readProcs()
	for _, pid := range t.tree(os.Getpid()) {
		if t.comm[pid] == "node" {
			rss += rssOf(pid)
			procs++
		}
	}
	return rss, procs
}

func rssOf(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

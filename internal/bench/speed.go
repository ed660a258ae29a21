package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

func init() { Register("speed", 35, runSpeed) }

// runSpeed measures how fast a session that is created or woken serves its
// page, side by side in one run on one sandboxed service with the default
// spare runners (they follow demand, preview.Options.SpareMemory): creates
// one a second; twenty at once twice, first with the stock of spares as
// the steady rate left it, then once the stock has followed the demand
// the first burst showed; wakes one after another, and ten at once, each
// twice the same way; each until the page and all its modules are loaded
// through the router; a running session's reload and the plain vite CLI's
// start until the same page load beside them; creates in Chromium until the app's content is
// painted; the memory of the idle node with its spares, and of an idle
// session. Each row says how many of its sessions found a spare, and how
// many spares were ready before.
func runSpeed(ctx context.Context, env *Env) ([]Row, error) {
	burst, wakes, painted := 20, 10, 5
	if env.Quick {
		burst, wakes, painted = 5, 3, 2
	}
	steady := 2 * wakes // each woken one after another, twice
	svc, err := startDensityService(ctx, env, "speed", func(o *preview.Options) {
		o.IdleTimeout = wakeIdle
		o.Limits.MaxSessions = 1 + steady + 1 + 2*burst + painted + 1
	})
	if err != nil {
		return nil, err
	}
	defer svc.close()
	if err := svc.awaitSpare(ctx); err != nil {
		return nil, err
	}
	// The service's own session (Prepare's) hibernates like any other.
	time.Sleep(wakeIdle + time.Second)
	node := speedNodeMemory(svc)

	var rows []Row
	// Creates one a second; the first pays for a cold file cache.
	var steadyIDs []string
	var steadyPages []time.Duration
	var t0 spareTakes
	next := time.Now()
	for i := range steady + 1 {
		time.Sleep(time.Until(next))
		next = time.Now().Add(time.Second)
		if i == 1 {
			t0 = speedTakes(svc)
		}
		id, _, page, err := svc.createAndLoad(ctx, fmt.Sprintf("steady %d", i))
		if err != nil {
			return rows, fmt.Errorf("create one a second: %w", err)
		}
		if i > 0 {
			steadyIDs, steadyPages = append(steadyIDs, id), append(steadyPages, page)
		}
	}
	s := Summarize(steadyPages)
	rows = append(rows, Row{What: "create, one a second: page and all its modules loaded", Value: fmt.Sprintf("%s p50 / %s p99", Ms(s.P50), Ms(s.P99)),
		Note: fmt.Sprintf("%d creates of the template's set (%s), every module through the router; target p50 <= 400 ms", s.N, speedTakes(svc).since(t0))})

	// Twenty at once, with the stock as the steady rate left it.
	burstIDs, r := speedBurst(ctx, svc, burst, "first", "the stock of spares as the steady rate left it")
	rows = append(rows, r)
	// The sessions just made run, idle, until they hibernate (wakeIdle).
	running := sessions(svc.baseDir)
	// Twenty at once again, once the stock has followed the demand that
	// the first burst showed.
	settled := speedSettle(ctx, svc)
	_, r = speedBurst(ctx, svc, burst, "second", fmt.Sprintf("after the stock followed the first burst's demand (it settled in %s)", settled.Round(100*time.Millisecond)))
	rows = append(rows, r)

	// Wakes one after another, each followed by the same load of the
	// running session: first with the stock as the second burst left it
	// (drained), then, on other sessions, once it has followed the demand.
	inTurn := steadyIDs[:min(wakes, len(steadyIDs))]
	drained, err := speedWakesInTurn(ctx, svc, inTurn, "first", "the stock as the second burst left it")
	if err != nil {
		return rows, err
	}
	settled = speedSettle(ctx, svc)
	stocked, err := speedWakesInTurn(ctx, svc, steadyIDs[len(inTurn):min(2*wakes, len(steadyIDs))], "second",
		fmt.Sprintf("after the stock followed the demand (it settled in %s)", settled.Round(100*time.Millisecond)))
	if err != nil {
		return rows, err
	}
	l := Summarize(append(drained.reloads, stocked.reloads...))

	// Ten wakes at once, with the stock as the wakes above left it, then
	// ten more once the stock has followed the demand.
	first, err := speedWakes(ctx, svc, burstIDs[:min(wakes, len(burstIDs))], "first", "the stock as the wakes above left it")
	if err != nil {
		return rows, err
	}
	settled = speedSettle(ctx, svc)
	second, err := speedWakes(ctx, svc, burstIDs[min(wakes, len(burstIDs)):min(2*wakes, len(burstIDs))], "second",
		fmt.Sprintf("after the stock followed the demand (it settled in %s)", settled.Round(100*time.Millisecond)))
	if err != nil {
		return rows, err
	}

	// Plain vite, started by hand on a copy of a session's project.
	rec, err := svc.store.Get(ctx, steadyIDs[0])
	if err != nil {
		return rows, err
	}
	project, err := plainProject(env, rec.Dir, "speed-plain")
	if err != nil {
		return rows, err
	}
	var plain []time.Duration
	for i := range 4 {
		start := time.Now()
		p, err := runPlainVite(ctx, project)
		if err != nil {
			return rows, fmt.Errorf("plain vite: %w", err)
		}
		took := time.Since(start)
		p.stop()
		if i > 0 { // the first optimizes the dependencies
			plain = append(plain, took)
		}
	}
	p := Summarize(plain)
	rows = append(rows, drained.row(l.P50, p.P50), stocked.row(l.P50, p.P50),
		first.row(l.P50), second.row(l.P50),
		Row{What: "running session: the same page load", Value: fmt.Sprintf("%s p50 / %s p99", Ms(l.P50), Ms(l.P99)),
			Note: fmt.Sprintf("%d loads, right after each wake", l.N)},
		Row{What: "plain vite CLI: start until the same page load", Value: Ms(p.P50) + " p50",
			Note: fmt.Sprintf("%d starts on a copy of the project, optimized dependencies cached", p.N)})

	// Creates in Chromium once the stock has made up for the wakes above,
	// as a node that sees creates one after another has it.
	settled = speedSettle(ctx, svc)
	pr, err := speedPainted(ctx, svc, painted, fmt.Sprintf("after the stock settled (in %s)", settled.Round(100*time.Millisecond)))
	rows = append(rows, pr...)
	if err != nil {
		return rows, err
	}

	per := medianMemory(running)
	return append(rows,
		Row{What: "idle node: this process and its spare runners", Value: node.mem.String(),
			Note: fmt.Sprintf("%d spare runners waiting (Options.Spares is the floor; more follow demand within Options.SpareMemory)", node.spares)},
		Row{What: "idle session right after its page load: resident memory", Value: per.String(),
			Note: fmt.Sprintf("median of %d running sessions after the creates at once, each its sandbox's process tree, before V8 gives memory back (the density section reads it settled)", len(running))}), nil
}

// speedBurst creates n sessions at once, each until its page and all its
// modules are loaded, and returns their ids and the row of their times,
// named name and described by when.
func speedBurst(ctx context.Context, svc *previewService, n int, name, when string) ([]string, Row) {
	t0 := speedTakes(svc)
	ids, pages, failures := speedAtOnce(n, func(i int) (string, time.Duration, error) {
		id, _, page, err := svc.createAndLoad(ctx, fmt.Sprintf("%s burst %d", name, i))
		return id, page, err
	})
	s := Summarize(pages)
	note := fmt.Sprintf("%s (%s); every module through the router; failures: %d (there must be none); target p50 <= 1500 ms", when, speedTakes(svc).since(t0), len(failures))
	if len(failures) > 0 {
		note += "; first failure: " + failures[0].Error()
	}
	return ids, Row{What: fmt.Sprintf("create, %d at once, %s burst: page and all its modules loaded", n, name), Value: fmt.Sprintf("%s p50 / %s p99", Ms(s.P50), Ms(s.P99)), Note: note}
}

// wakesInTurn is what speedWakesInTurn measured.
type wakesInTurn struct {
	name, when     string
	times, reloads []time.Duration
	takes          spareTakes
}

// speedWakesInTurn waits until the sessions ids hibernate, then wakes them
// one after another, each until its page and all its modules are loaded
// through the router, and each followed by the same load of the running
// session; the row is named name, and when says in what state the
// service was.
func speedWakesInTurn(ctx context.Context, svc *previewService, ids []string, name, when string) (wakesInTurn, error) {
	w := wakesInTurn{name: name, when: when}
	for _, id := range ids {
		if err := svc.awaitStatus(ctx, id, preview.StatusHibernated); err != nil {
			return w, err
		}
	}
	t0 := speedTakes(svc)
	for _, id := range ids {
		start := time.Now()
		if _, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(id)); err != nil {
			return w, fmt.Errorf("wake %s: %w", id, err)
		}
		w.times = append(w.times, time.Since(start))
		start = time.Now()
		if _, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(id)); err != nil {
			return w, err
		}
		w.reloads = append(w.reloads, time.Since(start))
	}
	w.takes = speedTakes(svc).since(t0)
	return w, nil
}

// row is the row of w, beside a running session's reload of p50 reload
// and plain vite's start of p50 plain.
func (w wakesInTurn) row(reload, plain time.Duration) Row {
	a := Summarize(w.times)
	return Row{What: "wake, one after another, " + w.name + ": page and all its modules loaded", Value: fmt.Sprintf("%s p50 / %s p99", Ms(a.P50), Ms(a.P99)),
		Ratio: Ratio(float64(a.P50), float64(reload)) + " reload, " + Ratio(float64(a.P50), float64(plain)) + " plain vite start",
		Note:  fmt.Sprintf("%d hibernated sessions woken back to back, %s (%s), every module through the router; target p50 <= 400 ms", a.N, w.when, w.takes)}
}

// wakesAtOnce is what speedWakes measured.
type wakesAtOnce struct {
	name, when string
	times      []time.Duration
	takes      spareTakes
	failures   []error
}

// speedWakes waits until the sessions ids hibernate, then wakes them all
// at once, each until its page and all its modules are loaded through the
// router.
func speedWakes(ctx context.Context, svc *previewService, ids []string, name, when string) (wakesAtOnce, error) {
	for _, id := range ids {
		if err := svc.awaitStatus(ctx, id, preview.StatusHibernated); err != nil {
			return wakesAtOnce{}, err
		}
	}
	t0 := speedTakes(svc)
	_, times, failures := speedAtOnce(len(ids), func(i int) (string, time.Duration, error) {
		start := time.Now()
		_, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(ids[i]))
		return ids[i], time.Since(start), err
	})
	return wakesAtOnce{name: name, when: when, times: times, takes: speedTakes(svc).since(t0), failures: failures}, nil
}

// row is the row of w, beside a running session's reload of p50 reload.
func (w wakesAtOnce) row(reload time.Duration) Row {
	a := Summarize(w.times)
	note := fmt.Sprintf("sessions of the first burst, %s (%s); failures: %d (there must be none); target p50 <= 700 ms", w.when, w.takes, len(w.failures))
	if len(w.failures) > 0 {
		note += "; first failure: " + w.failures[0].Error()
	}
	return Row{What: fmt.Sprintf("wake, %d at once, %s: page and all its modules loaded", len(w.times)+len(w.failures), w.name), Value: fmt.Sprintf("%s p50 / %s p99", Ms(a.P50), Ms(a.P99)),
		Ratio: Ratio(float64(a.P50), float64(reload)) + " reload", Note: note}
}

// speedSettle waits until the service's stock of spares has stopped
// changing, the stock's own decision: no spare made or stopped for 5 s
// (making one takes about a second), at most two minutes. It returns how
// long it waited.
func speedSettle(ctx context.Context, svc *previewService) time.Duration {
	start := time.Now()
	last, since := speedTakes(svc).ready, time.Now()
	for time.Since(since) < 5*time.Second && time.Since(start) < 2*time.Minute && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		if n := speedTakes(svc).ready; n != last {
			last, since = n, time.Now()
		}
	}
	return time.Since(start)
}

// speedAtOnce runs f for 0..n-1 at once and returns what each returned:
// the ids and times of those that succeeded, and the errors.
func speedAtOnce(n int, f func(i int) (string, time.Duration, error)) (ids []string, times []time.Duration, failures []error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, took, err := f(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err)
				return
			}
			ids, times = append(ids, id), append(times, took)
		})
	}
	wg.Wait()
	return ids, times, failures
}

// nodeMemory is the memory of this process and of the spare runners of a
// service that wait, and how many those are.
type nodeMemory struct {
	mem    memory
	spares int
}

// speedNodeMemory measures the nodeMemory of svc.
func speedNodeMemory(svc *previewService) nodeMemory {
	n := nodeMemory{mem: processMemory(os.Getpid())}
	for _, sb := range sandboxes(svc.baseDir) {
		if sb.spare {
			n.mem = n.mem.add(sb.mem)
			n.spares++
		}
	}
	return n
}

// speedPainted creates n sessions one after another, each opened in
// Chromium, and times each from the create request to the first
// contentful paint of the app's content (the browser's own
// first-contentful-paint entry of the document that shows it); when
// says in what state the service was.
func speedPainted(ctx context.Context, svc *previewService, n int, when string) ([]Row, error) {
	browser, stop, err := testenv.StartBrowser()
	if err != nil {
		return nil, err
	}
	defer stop()
	var times []time.Duration
	var t0 spareTakes
	for i := range n + 1 {
		if i == 1 {
			t0 = speedTakes(svc)
		}
		text := "painted " + strconv.Itoa(i)
		bctx, cancel := context.WithTimeout(browser.Ctx, time.Minute)
		start := time.Now()
		a, err := svc.post(bctx, "", map[string]any{"files": []any{appSource(text)}})
		if err != nil {
			cancel()
			return nil, err
		}
		var fcp float64 // Unix milliseconds, the browser's clock (this machine's)
		err = chromedp.Run(bctx, chromedp.Navigate(a.PreviewURL),
			chromedp.Poll(fmt.Sprintf(`(document.querySelector("main h1") || {}).textContent === %q`, text), nil, chromedp.WithPollingInterval(5*time.Millisecond)),
			chromedp.Poll(`(() => { const e = performance.getEntriesByName("first-contentful-paint")[0]; return e ? performance.timeOrigin + e.startTime : 0 })()`, &fcp, chromedp.WithPollingInterval(5*time.Millisecond)))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("open %s in Chromium: %w", a.PreviewURL, err)
		}
		if i > 0 { // the first pays for Chromium's own start
			times = append(times, time.UnixMicro(int64(fcp*1000)).Sub(start))
		}
	}
	s := Summarize(times)
	return []Row{{What: "create in Chromium until the app's content is painted", Value: fmt.Sprintf("%s p50 / %s p99", Ms(s.P50), Ms(s.P99)),
		Note: fmt.Sprintf("%d creates one after another, %s (%s): from the create request to the page's first-contentful-paint, once the app's <h1> is there; target p50 <= 500 ms", s.N, when, speedTakes(svc).since(t0))}}, nil
}

// spareTakes is how many starts and wakes of the template's set found a
// spare runner ready and how many started one of their own, as a service's
// metrics count them, and how many spares are ready.
type spareTakes struct{ found, missed, ready int }

// speedTakes reads the spareTakes of svc.
func speedTakes(svc *previewService) spareTakes {
	rec := httptest.NewRecorder()
	svc.m.Metrics().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var t spareTakes
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		for prefix, v := range map[string]*int{
			`vitehost_preview_spare_runner_takes_total{found="true"} `:  &t.found,
			`vitehost_preview_spare_runner_takes_total{found="false"} `: &t.missed,
			"vitehost_preview_spare_runners ":                           &t.ready,
		} {
			if n, ok := strings.CutPrefix(line, prefix); ok {
				*v, _ = strconv.Atoi(n)
			}
		}
	}
	return t
}

// since returns the takes from before to t, and the spares ready before.
func (t spareTakes) since(before spareTakes) spareTakes {
	return spareTakes{found: t.found - before.found, missed: t.missed - before.missed, ready: before.ready}
}

func (t spareTakes) String() string {
	return fmt.Sprintf("%d of %d in a spare, %d ready before", t.found, t.found+t.missed, t.ready)
}

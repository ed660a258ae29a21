package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
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
// one a second and twenty at once, wakes one after another and ten at
// once, each until the page and all its modules are loaded through the
// router; a running session's reload and the plain vite CLI's start until
// the same page load beside them; creates in Chromium until the app's
// content is painted; the memory of the idle node with its spares, and of
// an idle session.
func runSpeed(ctx context.Context, env *Env) ([]Row, error) {
	steady, burst, wakes, painted := 10, 20, 10, 5
	if env.Quick {
		steady, burst, wakes, painted = 3, 5, 3, 2
	}
	svc, err := startDensityService(ctx, env, "speed", func(o *preview.Options) { o.IdleTimeout = wakeIdle })
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
	next := time.Now()
	for i := range steady + 1 {
		time.Sleep(time.Until(next))
		next = time.Now().Add(time.Second)
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
		Note: fmt.Sprintf("%d creates of the template's set, every module through the router; target p50 <= 400 ms", s.N)})

	// Twenty at once.
	burstIDs, burstPages, failures := speedAtOnce(burst, func(i int) (string, time.Duration, error) {
		id, _, page, err := svc.createAndLoad(ctx, fmt.Sprintf("burst %d", i))
		return id, page, err
	})
	// The sessions just made run, idle, until they hibernate (wakeIdle).
	running := sessions(svc.baseDir)
	s = Summarize(burstPages)
	note := fmt.Sprintf("%d creates at once, every module through the router; failures: %d (there must be none); target p50 <= 1500 ms", burst, len(failures))
	if len(failures) > 0 {
		note += "; first failure: " + failures[0].Error()
	}
	rows = append(rows, Row{What: fmt.Sprintf("create, %d at once: page and all its modules loaded", burst), Value: fmt.Sprintf("%s p50 / %s p99", Ms(s.P50), Ms(s.P99)), Note: note})

	// Wakes one after another, each followed by the same load of the
	// running session.
	var wakeTimes, reloads []time.Duration
	for _, id := range steadyIDs[:min(wakes, len(steadyIDs))] {
		if err := svc.awaitStatus(ctx, id, preview.StatusHibernated); err != nil {
			return rows, err
		}
	}
	for _, id := range steadyIDs[:min(wakes, len(steadyIDs))] {
		start := time.Now()
		if _, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(id)); err != nil {
			return rows, fmt.Errorf("wake %s: %w", id, err)
		}
		wakeTimes = append(wakeTimes, time.Since(start))
		start = time.Now()
		if _, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(id)); err != nil {
			return rows, err
		}
		reloads = append(reloads, time.Since(start))
	}
	w, l := Summarize(wakeTimes), Summarize(reloads)

	// Ten wakes at once.
	together := burstIDs[:min(wakes, len(burstIDs))]
	for _, id := range together {
		if err := svc.awaitStatus(ctx, id, preview.StatusHibernated); err != nil {
			return rows, err
		}
	}
	_, atOnce, wakeFailures := speedAtOnce(len(together), func(i int) (string, time.Duration, error) {
		start := time.Now()
		_, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(together[i]))
		return together[i], time.Since(start), err
	})
	a := Summarize(atOnce)

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
	rows = append(rows,
		Row{What: "wake, one after another: page and all its modules loaded", Value: fmt.Sprintf("%s p50 / %s p99", Ms(w.P50), Ms(w.P99)),
			Ratio: Ratio(float64(w.P50), float64(l.P50)) + " reload, " + Ratio(float64(w.P50), float64(p.P50)) + " plain vite start",
			Note:  fmt.Sprintf("%d hibernated sessions woken back to back, every module through the router; target p50 <= 400 ms", w.N)},
		Row{What: fmt.Sprintf("wake, %d at once: page and all its modules loaded", len(together)), Value: fmt.Sprintf("%s p50 / %s p99", Ms(a.P50), Ms(a.P99)),
			Ratio: Ratio(float64(a.P50), float64(l.P50)) + " reload",
			Note:  fmt.Sprintf("failures: %d (there must be none); target p50 <= 700 ms", len(wakeFailures))},
		Row{What: "running session: the same page load", Value: fmt.Sprintf("%s p50 / %s p99", Ms(l.P50), Ms(l.P99)),
			Note: fmt.Sprintf("%d loads, right after each wake", l.N)},
		Row{What: "plain vite CLI: start until the same page load", Value: Ms(p.P50) + " p50",
			Note: fmt.Sprintf("%d starts on a copy of the project, optimized dependencies cached", p.N)})

	r, err := speedPainted(ctx, svc, painted)
	rows = append(rows, r...)
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
// first-contentful-paint entry of the document that shows it).
func speedPainted(ctx context.Context, svc *previewService, n int) ([]Row, error) {
	browser, stop, err := testenv.StartBrowser()
	if err != nil {
		return nil, err
	}
	defer stop()
	var times []time.Duration
	for i := range n + 1 {
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
		Note: fmt.Sprintf("%d creates one after another: from the create request to the page's first-contentful-paint, once the app's <h1> is there; target p50 <= 500 ms", s.N)}}, nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/phayes/freeport"

	"github.com/vitehost/vitehost/preview"
)

func init() { Register("density", 40, runDensity) }

// runDensity measures what a session costs while nobody looks at it: the
// memory of an idle session beside plain Vite's, how long a hibernated
// session takes to serve its page again, and 200 sessions on this machine.
// Each measures sessions that start in a runner of their own and sessions
// that start in a spare (preview.Options.Spares).
func runDensity(ctx context.Context, env *Env) ([]Row, error) {
	var rows []Row
	r, idle, err := measureIdleMemory(ctx, env)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	r, err = measureWakes(ctx, env)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	r, err = measureDensity(ctx, env, idle)
	return append(rows, r...), err
}

// wakeIdle is the IdleTimeout of the services that measure hibernation:
// short, so that the sessions sleep soon after their page load.
const wakeIdle = 3 * time.Second

// runners names the two ways a session's dev server starts, and the
// preview.Options.Spares of each.
var runners = []struct {
	name   string
	spares int
}{{"own runner", -1}, {"in a spare", 1}}

// startDensityService starts a service for the density figures and runs
// Prepare, which the spares need (the template's optimized dependencies).
func startDensityService(ctx context.Context, env *Env, name string, tune func(*preview.Options)) (*previewService, error) {
	svc, err := startPreviewServiceWith(env, name, benchDepsCache, tune)
	if err != nil {
		return nil, err
	}
	if err := svc.m.Prepare(ctx); err != nil {
		svc.close()
		return nil, err
	}
	return svc, nil
}

// awaitSpare waits until the service has a spare runner ready, as its
// metrics say.
func (s *previewService) awaitSpare(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rec := httptest.NewRecorder()
		s.m.Metrics().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for _, line := range strings.Split(rec.Body.String(), "\n") {
			if v, ok := strings.CutPrefix(line, "vitehost_preview_spare_runners "); ok && v != "0" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("no spare runner after 2 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// measureWakes times a page load (the page and every module, through the
// router) of a hibernated session, woken in a runner of its own and in a
// spare, beside the same load of a running session and the plain vite
// CLI's start until the same page load.
func measureWakes(ctx context.Context, env *Env) ([]Row, error) {
	n := 10
	if env.Quick {
		n = 3
	}
	var rows []Row
	var loads []time.Duration
	var wakeP50 []time.Duration
	var project string
	for _, rn := range runners {
		name := "density-wake-" + strings.ReplaceAll(rn.name, " ", "-")
		svc, err := startDensityService(ctx, env, name, func(o *preview.Options) {
			o.IdleTimeout, o.Spares = wakeIdle, rn.spares
		})
		if err != nil {
			return nil, err
		}
		w, l, dir, err := wakeSessions(ctx, svc, n, rn.spares > 0)
		if err != nil {
			svc.close()
			return nil, fmt.Errorf("%s: %w", rn.name, err)
		}
		if project == "" {
			plain, err := plainProject(env, dir, "density-wake-plain")
			if err != nil {
				svc.close()
				return nil, err
			}
			project = plain
		}
		svc.close()
		loads = append(loads, l...)
		s := Summarize(w)
		wakeP50 = append(wakeP50, s.P50)
		rows = append(rows, Row{What: "hibernated session woken (" + rn.name + "): page and all its modules loaded", Value: fmt.Sprintf("%s p50 / %s p99", Ms(s.P50), Ms(s.P99)),
			Note: fmt.Sprintf("%d wakes, one at a time, every module through the router; target p50 <= 700 ms", s.N)})
	}
	var plain []time.Duration
	for i := range 4 {
		start := time.Now()
		p, err := runPlainVite(ctx, project)
		if err != nil {
			return nil, fmt.Errorf("plain vite: %w", err)
		}
		took := time.Since(start)
		p.stop()
		if i > 0 { // the first optimizes the dependencies
			plain = append(plain, took)
		}
	}
	l, p := Summarize(loads), Summarize(plain)
	for i := range rows {
		rows[i].Ratio = Ratio(float64(wakeP50[i]), float64(p.P50)) + " plain vite start"
	}
	return append(rows,
		Row{What: "running session: the same page load", Value: fmt.Sprintf("%s p50 / %s p99", Ms(l.P50), Ms(l.P99)),
			Note: fmt.Sprintf("%d loads, right after each wake", l.N)},
		Row{What: "plain vite CLI: start until the same page load", Value: Ms(p.P50) + " p50",
			Note: fmt.Sprintf("%d starts on a copy of the project, optimized dependencies cached", p.N)}), nil
}

// wakeSessions creates n+1 sessions, each followed by its page load, and
// wakes each once it hibernated: how long each wake took until the page and
// its modules were loaded, how long the same load took right after, and
// the first session's directory. With spare, each wake waits for a spare
// first. The first wake pays for a cold file cache and is not counted.
func wakeSessions(ctx context.Context, svc *previewService, n int, spare bool) (wakes, loads []time.Duration, dir string, err error) {
	var ids []string
	for i := range n + 1 {
		id, _, _, err := svc.createAndLoad(ctx, fmt.Sprintf("wake %d", i))
		if err != nil {
			return nil, nil, "", err
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		if err := svc.awaitStatus(ctx, id, preview.StatusHibernated); err != nil {
			return nil, nil, "", err
		}
		if spare {
			if err := svc.awaitSpare(ctx); err != nil {
				return nil, nil, "", err
			}
		}
		start := time.Now()
		if _, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(id)); err != nil {
			return nil, nil, "", fmt.Errorf("wake %s: %w", id, err)
		}
		took := time.Since(start)
		start = time.Now()
		if _, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(id)); err != nil {
			return nil, nil, "", err
		}
		if i > 0 {
			wakes, loads = append(wakes, took), append(loads, time.Since(start))
		}
	}
	rec, err := svc.store.Get(ctx, ids[0])
	return wakes, loads, rec.Dir, err
}

// awaitStatus waits until the record of session id says want.
func (s *previewService) awaitStatus(ctx context.Context, id string, want preview.Status) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rec, err := s.store.Get(ctx, id)
		if err == nil && rec.Status == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("session %s: %s, not %s, after 2 minutes (%v)", id, rec.Status, want, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// measureDensity creates 200 sessions, each followed by its page load,
// lets them hibernate, and opens 20 of them again: failures, the memory of
// this process and every process it started (at its peak, and settled
// once all sleep), and how long the 20 took to serve their pages again.
func measureDensity(ctx context.Context, env *Env, idle memory) ([]Row, error) {
	n, reopen, workers := 200, 20, 4
	if env.Quick {
		n, reopen = 20, 5
	}
	svc, err := startPreviewServiceWith(env, "density", benchDepsCache, func(o *preview.Options) {
		o.IdleTimeout = wakeIdle
		o.Limits.MaxSessions = n + 10
	})
	if err != nil {
		return nil, err
	}
	defer svc.close()
	if err := svc.m.Prepare(ctx); err != nil {
		return nil, err
	}
	// Before and after, the service holds its one spare runner.
	if err := svc.awaitSpare(ctx); err != nil {
		return nil, err
	}
	debug.FreeOSMemory()
	base, baseSelf := selfAndChildren(), processMemory(os.Getpid())

	// The peak: this process and every dev server, sampled twice a second.
	var peak memory
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if m := selfAndChildren(); m.rss > peak.rss {
				peak = m
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()

	start := time.Now()
	ids := make([]string, n)
	var failures []string
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, err.Error())
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				id, _, _, err := svc.createAndLoad(ctx, fmt.Sprintf("density %d", i))
				ids[i] = id
				if err != nil {
					fail(fmt.Errorf("create %d: %w", i, err))
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	created := time.Since(start)
	for _, id := range ids {
		if id == "" {
			continue
		}
		if err := svc.awaitStatus(ctx, id, preview.StatusHibernated); err != nil {
			fail(err)
		}
	}
	slept := time.Since(start)
	close(stopSampling)
	<-sampled
	if err := svc.awaitSpare(ctx); err != nil {
		fail(err)
	}
	debug.FreeOSMemory()
	var settled memory
	settleMemory(ctx, func() int64 {
		settled = selfAndChildren()
		return settled.rss
	})
	disk := dirSize(filepath.Join(env.Dir, "density"))

	// 20 of them again, four at a time.
	var wakes []time.Duration
	pick := make(chan string)
	for range workers {
		wg.Go(func() {
			for id := range pick {
				t0 := time.Now()
				_, err := crawlClient(ctx, svc.client, svc.m.PreviewURL(id))
				mu.Lock()
				wakes = append(wakes, time.Since(t0))
				mu.Unlock()
				if err != nil {
					fail(fmt.Errorf("wake %s: %w", id, err))
				}
			}
		})
	}
	for i := range reopen {
		if id := ids[i*n/reopen]; id != "" {
			pick <- id
		}
	}
	close(pick)
	wg.Wait()
	w := Summarize(wakes)
	note := ""
	if len(failures) > 0 {
		note = fmt.Sprintf("; first failure: %s", failures[0])
	}
	// What the sessions cost while they sleep is this process's memory:
	// their records, event logs and state (the spare runner is measured
	// before and after, but its memory changes as it settles).
	self := processMemory(os.Getpid())
	perSession := (self.rss - baseSelf.rss) / int64(n)
	return []Row{
		{What: fmt.Sprintf("density: %d sessions created and loaded, %d at a time, then hibernated", n, workers), Value: fmt.Sprintf("%s, %s", created.Round(time.Second), slept.Round(time.Second)),
			Note: fmt.Sprintf("until the last page load, until the last hibernation; IdleTimeout %s", wakeIdle)},
		{What: "density: failures", Value: strconv.Itoa(len(failures)), Note: "creates, page loads and wakes; there must be none" + note},
		{What: "density: peak memory (this process and every dev server)", Value: peak.String(),
			Note: fmt.Sprintf("%s before the first create; sampled twice a second, at most %d processes", mib(base.rss), peak.procs)},
		{What: "density: settled memory, all sessions hibernated", Value: settled.String(),
			Note: fmt.Sprintf("this process and its spare runner, %d processes; %s of session directories on disk (%s each, the optimizer's cache included)", settled.procs, mib(disk), kib(disk/int64(n)))},
		{What: "density: memory per hibernated session", Value: kib(perSession), Ratio: fmt.Sprintf("1/%.0f of an idle running session", float64(idle.rss)/float64(max(perSession, 1))),
			Note: fmt.Sprintf("this process's resident memory, settled (%s) minus before the first create (%s), over the sessions", mib(self.rss), mib(baseSelf.rss))},
		{What: fmt.Sprintf("density: %d hibernated sessions opened again, %d at a time", w.N, workers), Value: fmt.Sprintf("%s p50 / %s p99", Ms(w.P50), Ms(w.P99)),
			Note: "each until its page and all its modules are loaded"},
	}, nil
}

func kib(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10)) }

// dirSize returns the bytes of the files under dir.
func dirSize(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

// measureIdleMemory compares the memory of idle sessions, each after its
// page was loaded once through the router, started in a runner of its own
// and in a spare, with the plain Vite CLI on the same project (the
// session's own files, the create-vite React config) after the same page
// load, all read once their memory has settled.
func measureIdleMemory(ctx context.Context, env *Env) ([]Row, memory, error) {
	n := 3
	if env.Quick {
		n = 1
	}
	type measured struct {
		name string
		svc  *previewService
		mem  []memory
	}
	var all []*measured
	defer func() {
		for _, m := range all {
			m.svc.close()
		}
	}()
	var project string
	for _, rn := range runners {
		svc, err := startDensityService(ctx, env, "density-mem-"+strings.ReplaceAll(rn.name, " ", "-"), func(o *preview.Options) { o.Spares = rn.spares })
		if err != nil {
			return nil, memory{}, err
		}
		all = append(all, &measured{name: rn.name, svc: svc})
		for i := range n + 1 {
			if rn.spares > 0 {
				if err := svc.awaitSpare(ctx); err != nil {
					return nil, memory{}, err
				}
			}
			id, _, _, err := svc.createAndLoad(ctx, fmt.Sprintf("memory %d", i))
			if err != nil {
				return nil, memory{}, err
			}
			if i == 0 {
				svc.delete(ctx, id) // the first start pays for a cold file cache
				continue
			}
			if project == "" {
				rec, err := svc.store.Get(ctx, id)
				if err != nil {
					return nil, memory{}, err
				}
				project = rec.Dir
			}
		}
	}
	plain, err := startPlainVite(ctx, env, project)
	if err != nil {
		return nil, memory{}, fmt.Errorf("plain vite: %w", err)
	}
	defer plain.stop()

	var reference memory
	took := settleMemory(ctx, func() int64 {
		reference = treeMemory(plain.pid)
		total := reference.rss
		for _, m := range all {
			m.mem = sessions(m.svc.baseDir)
			for _, s := range m.mem {
				total += s.rss
			}
		}
		return total
	})
	rows := []Row{{What: "plain vite CLI after a page load: resident memory", Value: reference.String(),
		Note: fmt.Sprintf("the session's project with the create-vite React config, optimized dependencies cached; %d processes", reference.procs)}}
	var own memory
	for _, m := range all {
		if len(m.mem) != n {
			return rows, memory{}, fmt.Errorf("%s: %d sandboxes run sessions, %d sessions were made", m.name, len(m.mem), n)
		}
		med := medianMemory(m.mem)
		if own.rss == 0 {
			own = med
		}
		env.Log.Info("idle memory", "runner", m.name, "session", med.String(), "plain", reference.String(), "settled", took)
		rows = append(rows, Row{What: "idle session (" + m.name + ") after a page load: resident memory", Value: med.String(),
			Ratio: Ratio(float64(med.rss), float64(reference.rss)) + " RSS, " + Ratio(float64(med.private), float64(reference.private)) + " private",
			Note: fmt.Sprintf("median of %d sessions, each its sandbox's process tree (%d processes); read once memory settled (%s); target <= 1.15x RSS",
				len(m.mem), med.procs, took.Round(time.Second))})
	}
	return rows, own, nil
}

// settleMemory calls total every second until it has not dropped by more
// than 1% for 10 s (V8 gives memory back for a while after the last
// request), two minutes at most; it returns how long that took.
func settleMemory(ctx context.Context, total func() int64) time.Duration {
	start := time.Now()
	var lows []int64
	for time.Since(start) < 2*time.Minute && ctx.Err() == nil {
		lows = append(lows, total())
		if k := len(lows); k > 10 && float64(lows[k-1]) > 0.99*float64(lows[k-11]) {
			break
		}
		time.Sleep(time.Second)
	}
	return time.Since(start)
}

// plainVite is the vite CLI running a copy of a session's project.
type plainVite struct {
	pid    int
	base   string
	exited chan error
}

func (p *plainVite) stop() { stopGroup(p.pid, p.exited) }

// startPlainVite runs the plain vite CLI on a copy of the session project
// in dir and loads its page once; a first run, stopped, optimizes the
// dependencies, which the sessions find optimized.
func startPlainVite(ctx context.Context, env *Env, dir string) (*plainVite, error) {
	plain, err := plainProject(env, dir, "density-plain")
	if err != nil {
		return nil, err
	}
	for i := range 2 {
		p, err := runPlainVite(ctx, plain)
		if err != nil || i == 1 {
			return p, err
		}
		p.stop()
	}
	panic("unreachable")
}

// plainProject copies the session project in dir to env.Dir/name for the
// plain vite CLI: its dependencies linked, the create-vite React template's
// config, and the optimizer's cache in the project, as the sessions have it.
func plainProject(env *Env, dir, name string) (string, error) {
	plain := filepath.Join(env.Dir, name)
	if err := os.CopyFS(plain, skipFS{os.DirFS(dir)}); err != nil {
		return "", err
	}
	modules, err := depsInstall(filepath.Join(plain, "package.json"))
	if err != nil {
		return "", err
	}
	if err := os.Symlink(modules, filepath.Join(plain, "node_modules")); err != nil {
		return "", err
	}
	config := "import { defineConfig } from 'vite'\nimport react from '@vitejs/plugin-react'\n\nexport default defineConfig({ plugins: [react()], cacheDir: '.vite-cache' })\n"
	if err := os.WriteFile(filepath.Join(plain, "vite.config.js"), []byte(config), 0o644); err != nil {
		return "", err
	}
	return plain, nil
}

// runPlainVite starts the vite CLI in dir and loads its page once.
func runPlainVite(ctx context.Context, dir string) (*plainVite, error) {
	port, err := freeport.GetFreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", "vite"), "--strictPort", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &plainVite{pid: cmd.Process.Pid, base: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	if err := waitOK(ctx, p.base+"/", p.exited); err != nil {
		p.stop()
		return nil, err
	}
	if _, err := crawl(ctx, p.base); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// depsInstall finds the dependency install of the preview service whose
// package.json is the one at pkg.
func depsInstall(pkg string) (string, error) {
	want, err := os.ReadFile(pkg)
	if err != nil {
		return "", err
	}
	dirs, _ := filepath.Glob(filepath.Join(benchDepsCache, "*", "package.json"))
	for _, p := range dirs {
		if got, err := os.ReadFile(p); err == nil && string(got) == string(want) {
			return filepath.Join(filepath.Dir(p), "node_modules"), nil
		}
	}
	return "", errors.New("no dependency install for " + pkg)
}

// skipFS hides what is not the project's own in a session directory: the
// dependency link or mount point and the optimizer's cache.
type skipFS struct{ fs.FS }

func (f skipFS) Open(name string) (fs.File, error) {
	if skipped(name) {
		return nil, fs.ErrNotExist
	}
	return f.FS.Open(name)
}

func (f skipFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(f.FS, name)
	out := entries[:0]
	for _, e := range entries {
		if !skipped(filepath.Join(name, e.Name())) {
			out = append(out, e)
		}
	}
	return out, err
}

func skipped(name string) bool {
	first, _, _ := strings.Cut(filepath.ToSlash(name), "/")
	return first == "node_modules" || first == ".vite-cache"
}

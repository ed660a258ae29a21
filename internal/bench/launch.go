package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/phayes/freeport"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

func init() { Register("launch", 20, runLaunch) }

// handPoll is how often a dev server started by hand is asked for its page:
// often enough that the poll adds little to what it measures.
const handPoll = 5 * time.Millisecond

// runLaunch measures how long vite.Start takes to return a ready dev server,
// beside the same dev server started by hand on the same project in the same
// run: `vite --port P --strictPort`, `nuxi dev --port P`, and each other
// framework's own CLI, ready at the first 200 on /. The runs alternate, so
// that both sides see the same warm file cache.
func runLaunch(ctx context.Context, env *Env) ([]Row, error) {
	viteRuns, nuxtRuns := 5, 3
	if env.Quick {
		viteRuns, nuxtRuns = 2, 1
	}
	var rows []Row
	r, err := launchCLI(ctx, env, viteLaunch, viteRuns)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	r, err = launchNuxt(ctx, env, nuxtRuns)
	rows = append(rows, r...)
	if err != nil {
		return rows, err
	}
	for _, l := range frameworkLaunches {
		r, err = launchCLI(ctx, env, l, viteRuns)
		rows = append(rows, r...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// cliLaunch is a dev server that the launcher starts, beside the command
// that starts the same by hand.
type cliLaunch struct {
	name    string   // the framework, as the rows name it
	fixture string   // the fixture it runs on
	about   string   // the fixture, as the rows' note says it
	bin     string   // node_modules/.bin/<bin> starts it by hand
	args    []string // its arguments; --port P is added
	shown   string   // the command, as the rows show it
}

var viteLaunch = cliLaunch{
	name: "Vite", fixture: "vite8-react", about: "React fixture",
	bin: "vite", args: []string{"--strictPort", "--host", "127.0.0.1"},
	shown: "node_modules/.bin/vite --strictPort",
}

// frameworkLaunches are the frameworks that run beside plain Vite: Astro
// through its own dev server, SvelteKit and React Router as Vite plugins,
// each against its own CLI.
var frameworkLaunches = []cliLaunch{
	{
		name: "Astro", fixture: "astro5", about: "Astro 5 fixture",
		bin: "astro", args: []string{"dev", "--host", "127.0.0.1"}, shown: "astro dev",
	},
	{
		name: "SvelteKit", fixture: "sveltekit2", about: "SvelteKit 2 fixture",
		bin: "vite", args: []string{"dev", "--strictPort", "--host", "127.0.0.1"}, shown: "vite dev",
	},
	{
		name: "React Router", fixture: "reactrouter7", about: "React Router 7 fixture",
		bin: "react-router", args: []string{"dev", "--strictPort", "--host", "127.0.0.1"}, shown: "react-router dev",
	},
}

// copies makes one copy of the fixture per variant, so that no variant's
// caches (node_modules/.vite, .nuxt, which Nuxt clears when its layers
// change) are touched by another.
func copies(env *Env, fixture string, variants ...string) (map[string]string, error) {
	dirs := map[string]string{}
	for _, v := range variants {
		dir := filepath.Join(env.Dir, "launch-"+fixture+"-"+v, fixture)
		if err := testenv.CopyFixture(fixture, dir); err != nil {
			return nil, err
		}
		dirs[v] = dir
	}
	return dirs, nil
}

func launchCLI(ctx context.Context, env *Env, l cliLaunch, runs int) ([]Row, error) {
	dirs, err := copies(env, l.fixture, "launcher", "hand")
	if err != nil {
		return nil, err
	}
	var ready, first, hand []time.Duration
	version := ""
	// One unmeasured round first: the first node start pays for a cold file cache.
	for i := -1; i < runs; i++ {
		env.Log.Info("launch: "+l.fixture, "run", i)
		r, f, v, err := startWithLauncher(ctx, dirs["launcher"], env.Log)
		if err != nil {
			return nil, err
		}
		h, err := startByHand(ctx, dirs["hand"], l.bin, l.args...)
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			ready, first, hand = append(ready, r), append(first, f), append(hand, h)
			version = v
		}
	}
	rs, fs, hs := Summarize(ready), Summarize(first), Summarize(hand)
	note := fmt.Sprintf("median of %d, Vite %s, %s", runs, version, l.about)
	return []Row{
		{What: l.name + ": vite.Start until ready", Value: Ms(rs.P50), Ratio: Ratio(float64(rs.P50), float64(hs.P50)) + " by hand", Note: note},
		{What: l.name + ": vite.Start until first 200 on /", Value: Ms(fs.P50), Ratio: Ratio(float64(fs.P50), float64(hs.P50)) + " by hand",
			Note: fmt.Sprintf("%s; %s against %s", note, signedMs(fs.P50-hs.P50), l.shown)},
		{What: l.name + ": " + l.shown + " until first 200 on /", Value: Ms(hs.P50), Note: note},
	}, nil
}

func launchNuxt(ctx context.Context, env *Env, runs int) ([]Row, error) {
	dirs, err := copies(env, "nuxt4", "launcher", "hand", "nofork")
	if err != nil {
		return nil, err
	}
	var ready, hand, nofork []time.Duration
	version := ""
	for i := -1; i < runs; i++ {
		env.Log.Info("launch: nuxt", "run", i)
		r, _, v, err := startWithLauncher(ctx, dirs["launcher"], env.Log)
		if err != nil {
			return nil, err
		}
		h, err := startByHand(ctx, dirs["hand"], "nuxi", "dev", "--host", "127.0.0.1")
		if err != nil {
			return nil, err
		}
		n, err := startByHand(ctx, dirs["nofork"], "nuxi", "dev", "--host", "127.0.0.1", "--no-fork")
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			ready, hand, nofork = append(ready, r), append(hand, h), append(nofork, n)
			version = v
		}
	}
	rs, hs, ns := Summarize(ready), Summarize(hand), Summarize(nofork)
	note := fmt.Sprintf("median of %d, Nuxt 4 fixture on Vite %s", runs, version)
	return []Row{
		{What: "Nuxt: vite.Start until ready (page answers)", Value: Ms(rs.P50),
			Ratio: Ratio(float64(rs.P50), float64(hs.P50)) + " nuxi dev, " + Ratio(float64(rs.P50), float64(ns.P50)) + " --no-fork",
			Note:  fmt.Sprintf("%s; %s against nuxi dev --no-fork, which it runs", note, signedMs(rs.P50-ns.P50))},
		{What: "Nuxt: nuxi dev until first 200 on /", Value: Ms(hs.P50), Note: note + "; warms two forks meanwhile"},
		{What: "Nuxt: nuxi dev --no-fork until first 200 on /", Value: Ms(ns.P50), Note: note},
	}, nil
}

// signedMs formats a difference of durations with its sign.
func signedMs(d time.Duration) string {
	if d >= 0 {
		return "+" + Ms(d)
	}
	return "-" + Ms(-d)
}

// startWithLauncher starts the project through vite.Start, measures until
// it returns and until the first 200 on /, and stops it.
func startWithLauncher(ctx context.Context, dir string, log *slog.Logger) (ready, first time.Duration, version string, err error) {
	t0 := time.Now()
	s, err := vite.Start(ctx, dir, &vite.Options{Logger: log, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		return 0, 0, "", err
	}
	ready = time.Since(t0)
	defer s.Stop(context.WithoutCancel(ctx))
	if err := waitOK(ctx, s.Targets().HTTP.String()+"/", nil); err != nil {
		return 0, 0, "", err
	}
	first = time.Since(t0)
	return ready, first, s.Version(), nil
}

// startByHand starts node_modules/.bin/<bin> with args and --port in its own
// process group, measures until the first 200 on /, and stops it.
func startByHand(ctx context.Context, dir, bin string, args ...string) (time.Duration, error) {
	port, err := freeport.GetFreePort()
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", bin), append(args, "--port", strconv.Itoa(port))...)
	cmd.Dir = dir
	// As the launcher runs them: no telemetry, no update check on the network.
	cmd.Env = append(os.Environ(), "NUXT_TELEMETRY_DISABLED=1", "ASTRO_TELEMETRY_DISABLED=1", "ASTRO_DISABLE_UPDATE_CHECK=true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopGroup(cmd.Process.Pid, exited)
	if err := waitOK(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/", exited); err != nil {
		return 0, fmt.Errorf("%s by hand: %w", bin, err)
	}
	return time.Since(t0), nil
}

// waitOK polls u until it answers 200, the process exits, or a minute passes.
func waitOK(ctx context.Context, u string, exited <-chan error) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	deadline := time.After(2 * time.Minute)
	tick := time.NewTicker(handPoll)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("exited before it answered 200: %v", err)
		case <-deadline:
			return errors.New("no 200 within 2 minutes")
		case <-tick.C:
		}
	}
}

// stopGroup ends a process group started by hand: SIGTERM, SIGKILL after 5 s.
func stopGroup(pgid int, exited <-chan error) {
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	for i := 0; i < 250 && syscall.Kill(-pgid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

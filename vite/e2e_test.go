package vite_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

// TestViteVersions starts the React fixture on each supported Vite major
// behind a public URL with an HMR path, and follows one edit from the file
// to the HMR socket.
func TestViteVersions(t *testing.T) {
	testenv.Short(t)
	for _, tc := range []struct{ fixture, major string }{
		{"vite8-react", "8."},
		{"vite7-react", "7."},
		{"vite6-react", "6."},
		{"vite5-react", "5."},
		{"vite4-react", "4."},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			dir := testenv.Fixture(t, tc.fixture)
			hot := filepath.Join(t.TempDir(), "public", "hot")
			public, _ := url.Parse("http://localhost:8000")
			s := start(t, dir, &vite.Options{PublicURL: public, HMRPath: "/hmr", HotFile: hot})

			assert.Equal(t, vite.Vite, s.Framework())
			assert.True(t, strings.HasPrefix(s.Version(), tc.major), "version %q", s.Version())
			tg := s.Targets()
			require.NotNil(t, tg.HTTP)
			require.NotNil(t, tg.HMR)
			assert.NotEqual(t, tg.HTTP.Port(), tg.HMR.Port())
			assert.Equal(t, "127.0.0.1", tg.HTTP.Hostname())
			assert.Equal(t, "127.0.0.1", tg.HMR.Hostname())
			assert.Empty(t, tg.HMR.Path, "the proxy keeps the request path: hot.hmr has none")

			// The hot files hold the two URLs.
			httpURL, err := hotfile.Read(hot)
			require.NoError(t, err)
			hmrURL, err := hotfile.Read(hotfile.HMRPath(hot))
			require.NoError(t, err)
			assert.Equal(t, tg.HTTP.String(), httpURL.String())
			assert.Equal(t, tg.HMR.String(), hmrURL.String())

			// The page, and a client that connects to the proxy.
			code, body := get(t, tg.HTTP.String()+"/")
			require.Equal(t, 200, code)
			assert.Contains(t, body, `<div id="root">`)
			code, client := get(t, tg.HTTP.String()+"/@vite/client")
			require.Equal(t, 200, code)
			assert.Contains(t, client, "const hmrPort = 8000;")
			assert.Contains(t, client, `"/hmr"`)
			assert.Contains(t, client, `"localhost"`)
			assert.Contains(t, client, s.Token())
			assert.NotContains(t, client, "hmrPort = "+tg.HMR.Port())

			// The public host passes Vite's host check.
			code, _ = getHost(t, tg.HTTP.String()+"/", "localhost:8000")
			assert.Equal(t, 200, code)

			// The HMR socket at the HMR path, and an edit.
			conn := dialHMR(t, tg.HMR, "/hmr", s.Token())
			code, _ = get(t, tg.HTTP.String()+"/src/App.jsx") // puts App.jsx in the module graph
			require.Equal(t, 200, code)
			app := filepath.Join(dir, "src", "App.jsx")
			src, err := os.ReadFile(app)
			require.NoError(t, err)
			m := conn.editUntil(t, app, func(i int) string {
				return strings.Replace(string(src), "Hello from the fixture", "Edited "+strconv.Itoa(i), 1)
			}, "update", "full-reload")
			assert.Equal(t, "update", m["type"], "React fast refresh accepts App.jsx")
			assert.Contains(t, string(mustJSON(t, m)), "/src/App.jsx")

			// Stop: hot files gone, no process of the group left.
			pid := s.PID()
			require.NotZero(t, pid)
			require.NoError(t, s.Stop(context.Background()))
			assert.NoFileExists(t, hot)
			assert.NoFileExists(t, hotfile.HMRPath(hot))
			pids, err := vite.GroupPIDs(pid)
			require.NoError(t, err)
			assert.Empty(t, pids, "processes of the group after Stop")
			assert.Nil(t, s.Targets().HTTP)
			assert.NoError(t, s.Err())
			select {
			case <-s.Done():
			default:
				t.Fatal("Done not closed after Stop")
			}
			require.NoError(t, s.Stop(context.Background()), "a second Stop")
		})
	}
}

// TestViteDirect starts plain Vite without a public URL: the browser talks to
// the dev server, and the HMR client connects to the HMR port.
func TestViteDirect(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	s := start(t, dir, nil)
	tg := s.Targets()
	code, client := get(t, tg.HTTP.String()+"/@vite/client")
	require.Equal(t, 200, code)
	assert.Contains(t, client, "const hmrPort = "+tg.HMR.Port()+";")
	dialHMR(t, tg.HMR, "/", s.Token())
}

// TestViteConfigAndPlugins builds the whole config from Go: no config file,
// the React plugin by module name, inline config.
func TestViteConfigAndPlugins(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vite.config.js"), []byte("this is not JavaScript"), 0o644))
	public, _ := url.Parse("https://preview-abc.example.com")
	s := start(t, dir, &vite.Options{
		NoConfigFile: true,
		PublicURL:    public,
		HMRPath:      "/hmr",
		Plugins:      []vite.Plugin{{Module: "@vitejs/plugin-react"}},
		Config: map[string]any{
			"cacheDir": filepath.Join(dir, ".vite-cache"),
			"base":     "/app/",
		},
	})
	tg := s.Targets()
	code, client := get(t, tg.HTTP.String()+"/app/@vite/client")
	require.Equal(t, 200, code)
	assert.Contains(t, client, "const hmrPort = 443;")
	assert.Contains(t, client, `"wss"`)
	assert.Contains(t, client, `"preview-abc.example.com"`)
	assert.Contains(t, client, `"/hmr"`, "the HMR path stays /hmr under base /app/")
	code, _ = getHost(t, tg.HTTP.String()+"/app/", "preview-abc.example.com")
	assert.Equal(t, 200, code, "PublicURL's host is allowed")
	code, _ = getHost(t, tg.HTTP.String()+"/app/", "evil.example.com")
	assert.Equal(t, 403, code, "other hosts are not")
	code, body := get(t, tg.HTTP.String()+"/app/src/App.jsx")
	require.Equal(t, 200, code)
	assert.Contains(t, body, "RefreshRuntime", "the React plugin is active")
	dialHMR(t, tg.HMR, "/hmr", s.Token())
}

// TestNuxt starts the Nuxt fixture behind a public URL and follows an edit
// of app/app.vue to the HMR socket on the HMR port.
func TestNuxt(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "nuxt4")
	hot := filepath.Join(t.TempDir(), "hot")
	public, _ := url.Parse("http://localhost:8000")
	s := start(t, dir, &vite.Options{PublicURL: public, HMRPath: "/hmr", HotFile: hot})

	assert.Equal(t, vite.Nuxt, s.Framework())
	assert.True(t, strings.HasPrefix(s.Version(), "7."), "Nuxt 4.4 uses Vite 7, got %q", s.Version())
	a, b := readHot(hot)
	require.NotEmpty(t, a)
	require.NotEmpty(t, b)
	httpURL, _ := url.Parse(a)
	hmrURL, _ := url.Parse(b)
	assert.NotEqual(t, httpURL.Port(), hmrURL.Port())
	assert.Equal(t, s.Targets().HTTP.String(), a)

	code, body := get(t, a+"/")
	require.Equal(t, 200, code)
	assert.Contains(t, body, "Hello from Nuxt")
	code, client := get(t, a+"/_nuxt/@vite/client")
	require.Equal(t, 200, code)
	assert.Contains(t, client, "const hmrPort = 8000;")
	assert.Contains(t, client, `"/hmr"`)

	// Only our two listeners, both on loopback; nothing on 24678.
	pid := s.PID()
	listens := listeningPorts(t, pid)
	assert.ElementsMatch(t, []string{"127.0.0.1:" + httpURL.Port(), "127.0.0.1:" + hmrURL.Port()}, listens)

	conn := dialHMR(t, hmrURL, "/hmr", s.Token())
	code, _ = get(t, a+"/_nuxt/app.vue") // puts app/app.vue in the client's module graph
	require.Equal(t, 200, code)
	appVue := filepath.Join(dir, "app", "app.vue")
	src, err := os.ReadFile(appVue)
	require.NoError(t, err)
	conn.editUntil(t, appVue, func(i int) string {
		return strings.Replace(string(src), "Hello from Nuxt", "Edited "+strconv.Itoa(i), 1)
	}, "update", "full-reload")

	require.NoError(t, s.Stop(context.Background()))
	assert.NoFileExists(t, hot)
	assert.NoFileExists(t, hotfile.HMRPath(hot))
	pids, err := vite.GroupPIDs(pid)
	require.NoError(t, err)
	assert.Empty(t, pids)
}

// TestTwoNuxtApps runs two Nuxt apps side by side: with Nuxt's SSR HMR
// listener on its default 24678 the second would collide.
func TestTwoNuxtApps(t *testing.T) {
	testenv.Short(t)
	dirs := []string{testenv.Fixture(t, "nuxt4"), testenv.Fixture(t, "nuxt4")}
	servers := make([]*vite.Server, len(dirs))
	t.Run("group", func(t *testing.T) {
		for i, dir := range dirs {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				t.Parallel()
				s, err := vite.Start(context.Background(), dir, &vite.Options{Logger: testLogger(t)})
				require.NoError(t, err)
				servers[i] = s
			})
		}
	})
	t.Cleanup(func() {
		for _, s := range servers {
			if s != nil {
				s.Stop(context.Background())
			}
		}
	})
	require.False(t, t.Failed())
	seen := map[string]bool{}
	for _, s := range servers {
		tg := s.Targets()
		for _, u := range []*url.URL{tg.HTTP, tg.HMR} {
			assert.False(t, seen[u.Host], "port %s used twice", u.Host)
			seen[u.Host] = true
		}
		code, body := get(t, tg.HTTP.String()+"/")
		assert.Equal(t, 200, code)
		assert.Contains(t, body, "Hello from Nuxt")
	}
}

// TestCrashRestart kills the dev server with SIGKILL: the hot files go, the
// server comes back on its own, and new hot files appear.
func TestCrashRestart(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite7-react") // Vite 7 still runs esbuild: a grandchild to clean up
	hot := filepath.Join(t.TempDir(), "hot")
	s := start(t, dir, &vite.Options{HotFile: hot})
	updates, cancel := s.Subscribe()
	defer cancel()
	oldPID, oldToken := s.PID(), s.Token()
	oldHTTP, _ := readHot(hot)
	require.NotEmpty(t, oldHTTP)

	require.NoError(t, syscall.Kill(oldPID, syscall.SIGKILL))

	// Down: zero targets, no hot files.
	select {
	case tg := <-updates:
		assert.Nil(t, tg.HTTP)
	case <-time.After(long):
		t.Fatal("no update after the crash")
	}
	// Back: new targets and hot files.
	var back hotfile.Targets
	select {
	case back = <-updates:
	case <-time.After(long):
		t.Fatal("not restarted")
	}
	require.NotNil(t, back.HTTP)
	assert.NotEqual(t, oldPID, s.PID())
	assert.NotEqual(t, oldToken, s.Token())
	a, b := readHot(hot)
	assert.Equal(t, back.HTTP.String(), a)
	assert.Equal(t, back.HMR.String(), b)
	pids, err := vite.GroupPIDs(oldPID)
	require.NoError(t, err)
	assert.Empty(t, pids, "the crashed run's group is gone")
	code, _ := get(t, a+"/")
	assert.Equal(t, 200, code)
	dialHMR(t, back.HMR, "/", s.Token())
}

// TestNoRestart leaves a crashed dev server down and says why.
func TestNoRestart(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	hot := filepath.Join(t.TempDir(), "hot")
	s := start(t, dir, &vite.Options{HotFile: hot, NoRestart: true})
	require.NoError(t, syscall.Kill(s.PID(), syscall.SIGKILL))
	select {
	case <-s.Done():
	case <-time.After(long):
		t.Fatal("Done not closed after a crash with NoRestart")
	}
	require.ErrorIs(t, s.Err(), vite.ErrExited)
	assert.NoFileExists(t, hot)
	assert.Nil(t, s.Targets().HTTP)
}

// TestStartErrors feeds Start the usual mistakes: each fails with a cause
// that names the problem and leaves nothing running.
func TestStartErrors(t *testing.T) {
	testenv.Short(t)
	withoutModules := filepath.Join(t.TempDir(), "app")
	require.NoError(t, os.CopyFS(withoutModules, os.DirFS(filepath.Join(testenv.FixturesDir(), "vite8-react"))))
	brokenConfig := testenv.Fixture(t, "vite8-react")
	require.NoError(t, os.WriteFile(filepath.Join(brokenConfig, "vite.config.js"),
		[]byte("import { defineConfig } from 'vite'\nexport default defineConfig({ plugins: [ }\n"), 0o644))
	brokenNuxt := testenv.Fixture(t, "nuxt4")
	require.NoError(t, os.WriteFile(filepath.Join(brokenNuxt, "nuxt.config.ts"),
		[]byte("export default defineNuxtConfig({ devtools: { enabled: false }, telemetry: false,, })\n"), 0o644))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name    string
		dir     string
		opts    *vite.Options
		want    error
		mention string
	}{
		{"no package.json", t.TempDir(), nil, vite.ErrNoPackageJSON, "package.json"},
		{"no package.json, framework given", t.TempDir(), &vite.Options{Framework: vite.Vite}, vite.ErrNoPackageJSON, "package.json"},
		{"no node_modules", withoutModules, nil, vite.ErrNotInstalled, "npm install"},
		{"broken vite config", brokenConfig, nil, vite.ErrStartFailed, "vite.config.js"},
		{"broken nuxt config", brokenNuxt, nil, vite.ErrStartFailed, "nuxt.config"},
		{"fixed port taken", brokenConfig, &vite.Options{Port: takenPort, NoConfigFile: true}, vite.ErrPortInUse, strconv.Itoa(takenPort)},
		{"fixed HMR port taken", brokenConfig, &vite.Options{HMRPort: takenPort, NoConfigFile: true}, vite.ErrPortInUse, strconv.Itoa(takenPort)},
		{"no node", brokenConfig, &vite.Options{Node: "/nonexistent/node"}, vite.ErrNoNode, "/nonexistent/node"},
		{"bad public URL", brokenConfig, &vite.Options{PublicURL: &url.URL{Scheme: "ftp", Host: "x"}}, vite.ErrInvalidOptions, "PublicURL"},
		{"vite options on nuxt", brokenNuxt, &vite.Options{NoConfigFile: true}, vite.ErrInvalidOptions, "plain Vite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := vite.Options{}
			if tc.opts != nil {
				o = *tc.opts
			}
			o.Logger = testLogger(t)
			s, err := vite.Start(context.Background(), tc.dir, &o)
			require.Error(t, err)
			require.Nil(t, s)
			assert.ErrorIs(t, err, tc.want)
			var se *vite.StartError
			require.ErrorAs(t, err, &se)
			assert.Contains(t, err.Error(), tc.mention)
			t.Log(err)
			assert.Empty(t, testenv.Processes(), "processes left after a failed start")
		})
	}
}

// TestPortRaceRetry loses the race for the first picked port: the launch
// picks again and starts.
func TestPortRaceRetry(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	defer vite.SetPick(func(h, m int) (int, int, error) {
		calls++
		hp, mp, err := vite.PickPorts(h, m)
		if calls == 1 {
			return takenPort, mp, err // as if another process bound it first
		}
		return hp, mp, err
	})()
	s := start(t, dir, nil)
	assert.Equal(t, 2, calls)
	assert.NotEqual(t, strconv.Itoa(takenPort), s.Targets().HTTP.Port())
}

// TestStartContext: the context bounds the start, and cancelling it later
// stops the server.
func TestStartContext(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")

	t.Run("cancelled during start", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s, err := vite.Start(ctx, dir, &vite.Options{Logger: testLogger(t)})
		require.Error(t, err)
		require.Nil(t, s)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Empty(t, testenv.Processes())
	})

	t.Run("cancelled later", func(t *testing.T) {
		hot := filepath.Join(t.TempDir(), "hot")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := vite.Start(ctx, dir, &vite.Options{HotFile: hot, Logger: testLogger(t)})
		require.NoError(t, err)
		pid := s.PID()
		require.FileExists(t, hot)
		cancel()
		select {
		case <-s.Done():
		case <-time.After(long):
			t.Fatal("not stopped after the context was cancelled")
		}
		assert.ErrorIs(t, s.Err(), context.Canceled)
		assert.NoFileExists(t, hot)
		pids, err := vite.GroupPIDs(pid)
		require.NoError(t, err)
		assert.Empty(t, pids)
		require.NoError(t, s.Stop(context.Background()))
	})
}

// TestStopLeavesNoNode: after Stop, no node process (nor esbuild) that the
// test started is alive.
func TestStopLeavesNoNode(t *testing.T) {
	testenv.Short(t)
	for _, fixture := range []string{"vite7-react", "nuxt4"} {
		t.Run(fixture, func(t *testing.T) {
			dir := testenv.Fixture(t, fixture)
			s, err := vite.Start(context.Background(), dir, &vite.Options{Logger: testLogger(t)})
			require.NoError(t, err)
			require.NotEmpty(t, testenv.NodeProcesses())
			require.NoError(t, s.Stop(context.Background()))
			assert.Empty(t, testenv.NodeProcesses())
			assert.Empty(t, testenv.Processes())
		})
	}
}

// TestViteRestartsItself edits the config file: Vite restarts in the same
// process with a new HMR token, and subscribers hear of it.
func TestViteRestartsItself(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	s := start(t, dir, nil)
	updates, cancel := s.Subscribe()
	defer cancel()
	before, token := s.Targets(), s.Token()

	cfg := filepath.Join(dir, "vite.config.js")
	src, err := os.ReadFile(cfg)
	require.NoError(t, err)
	deadline := time.Now().Add(long)
	for i := 0; ; i++ {
		// An edit before Vite's watcher is ready goes unseen: edit again.
		require.NoError(t, os.WriteFile(cfg, append(src, fmt.Sprintf("\n// edit %d\n", i)...), 0o644))
		select {
		case tg := <-updates:
			assert.True(t, tg.Equal(before), "same listeners")
		case <-time.After(5 * time.Second):
			require.True(t, time.Now().Before(deadline), "no update after config edits")
			continue
		}
		break
	}
	assert.NotEqual(t, token, s.Token())
	dialHMR(t, before.HMR, "/", s.Token())
	code, _ := get(t, before.HTTP.String()+"/")
	assert.Equal(t, 200, code)
}

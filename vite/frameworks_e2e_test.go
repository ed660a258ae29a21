package vite_test

import (
	"context"
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

// TestAstro starts the Astro fixtures through Astro's own dev server
// behind a public URL, and follows an edit of the page and one of a module
// only the server imports: each makes Astro tell the browser to reload,
// and the server-rendered page then shows it. Astro 7 declares Node
// 22.12 or later; its dev() API runs on the Node 20 of these machines too.
func TestAstro(t *testing.T) {
	testenv.Short(t)
	for _, tc := range []struct{ fixture, major string }{
		{"astro5", "6."}, // Astro 5 uses Vite 6: the server.hmr option
		{"astro7", "8."}, // Astro 7 uses Vite 8: the server.ws option
	} {
		t.Run(tc.fixture, func(t *testing.T) { testAstro(t, tc.fixture, tc.major) })
	}
}

func testAstro(t *testing.T, fixture, major string) {
	dir := testenv.Fixture(t, fixture)
	hot := filepath.Join(t.TempDir(), "hot")
	public, _ := url.Parse("http://localhost:8000")
	s := start(t, dir, &vite.Options{PublicURL: public, HMRPath: "/hmr", HotFile: hot})

	assert.Equal(t, vite.Astro, s.Framework())
	assert.True(t, strings.HasPrefix(s.Version(), major), "Vite %q", s.Version())
	a, b := readHot(hot)
	require.NotEmpty(t, a)
	require.NotEmpty(t, b)
	tg := s.Targets()
	assert.Equal(t, tg.HTTP.String(), a)
	assert.Equal(t, tg.HMR.String(), b)
	assert.NotEqual(t, tg.HTTP.Port(), tg.HMR.Port())

	code, body := get(t, a+"/")
	require.Equal(t, 200, code)
	assert.Contains(t, body, "Hello from Astro", "Astro rendered the page")
	assert.Contains(t, body, "Rendered on the server")
	code, client := get(t, a+"/@vite/client")
	require.Equal(t, 200, code)
	assert.Contains(t, client, "const hmrPort = 8000;")
	assert.Contains(t, client, `"/hmr"`)
	assert.Contains(t, client, s.Token())
	code, _ = getHost(t, a+"/", "localhost:8000")
	assert.Equal(t, 200, code)

	// Only our two listeners, both on loopback.
	pid := s.PID()
	assert.ElementsMatch(t, []string{"127.0.0.1:" + tg.HTTP.Port(), "127.0.0.1:" + tg.HMR.Port()}, listeningPorts(t, pid))

	conn := dialHMR(t, tg.HMR, "/hmr", s.Token())
	page := filepath.Join(dir, "src", "pages", "index.astro")
	m := editFile(t, conn, page, "Hello from Astro", "Edited Astro ", "full-reload", "update")
	assert.Equal(t, "full-reload", m["type"], "an .astro page is rendered on the server: Astro reloads it")
	waitBody(t, a+"/", "Edited Astro ")

	conn.drain()
	lib := filepath.Join(dir, "src", "lib", "message.js")
	src, err := os.ReadFile(lib)
	require.NoError(t, err)
	writeFile(t, lib, strings.Replace(string(src), "Rendered on the server", "Edited on the server", 1))
	m = conn.waitFor(t, func(m map[string]any) bool { return m["type"] == "full-reload" || m["type"] == "update" })
	assert.Equal(t, "full-reload", m["type"], "a module only the server imports: Astro reloads the page")
	waitBody(t, a+"/", "Edited on the server")

	require.NoError(t, s.Stop(context.Background()))
	assert.NoFileExists(t, hot)
	assert.NoFileExists(t, hotfile.HMRPath(hot))
	pids, err := vite.GroupPIDs(pid)
	require.NoError(t, err)
	assert.Empty(t, pids)
}

// TestAstroRestarts covers what Astro does beside the page: an astro.config
// edit makes Astro build a new Vite server in the same process, with a new
// token, on the same HMR listener; a crash brings a new process on new
// ports; Stop leaves no process behind.
func TestAstroRestarts(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "astro5")
	hot := filepath.Join(t.TempDir(), "hot")
	s := start(t, dir, &vite.Options{HotFile: hot})
	updates, cancel := s.Subscribe()
	defer cancel()
	before, token := s.Targets(), s.Token()

	cfg := filepath.Join(dir, "astro.config.mjs")
	src, err := os.ReadFile(cfg)
	require.NoError(t, err)
	deadline := time.Now().Add(long)
	for i := 0; ; i++ {
		// An edit before Astro's watcher is ready goes unseen: edit again.
		writeFile(t, cfg, string(src)+"\n// edit "+strconv.Itoa(i)+"\n")
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
	waitBody(t, before.HTTP.String()+"/", "Hello from Astro")

	oldPID := s.PID()
	require.NoError(t, syscall.Kill(oldPID, syscall.SIGKILL))
	for back := false; !back; {
		select {
		case tg := <-updates:
			back = tg.HTTP != nil
		case <-time.After(long):
			t.Fatal("not restarted after a crash")
		}
	}
	assert.NotEqual(t, oldPID, s.PID())
	pids, err := vite.GroupPIDs(oldPID)
	require.NoError(t, err)
	assert.Empty(t, pids, "the crashed run's group is gone")
	a, b := readHot(hot)
	assert.Equal(t, s.Targets().HTTP.String(), a)
	assert.Equal(t, s.Targets().HMR.String(), b)
	waitBody(t, a+"/", "Hello from Astro")
	dialHMR(t, s.Targets().HMR, "/", s.Token())

	require.NoError(t, s.Stop(context.Background()))
	assert.Empty(t, testenv.NodeProcesses())
	assert.Empty(t, testenv.Processes())
}

// TestAstroStartErrors feeds Start the usual mistakes with an Astro
// project: each fails with a cause that names the problem and leaves
// nothing running.
func TestAstroStartErrors(t *testing.T) {
	testenv.Short(t)
	withoutModules := filepath.Join(t.TempDir(), "app")
	require.NoError(t, os.CopyFS(withoutModules, os.DirFS(filepath.Join(testenv.FixturesDir(), "astro5"))))
	brokenConfig := testenv.Fixture(t, "astro5")
	require.NoError(t, os.WriteFile(filepath.Join(brokenConfig, "astro.config.mjs"),
		[]byte("export default { server: { port: 4321,, } }\n"), 0o644))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	takenPort := taken.Addr().(*net.TCPAddr).Port
	good := testenv.Fixture(t, "astro5")

	for _, tc := range []struct {
		name    string
		dir     string
		opts    *vite.Options
		want    error
		mention string
	}{
		{"no node_modules", withoutModules, nil, vite.ErrNotInstalled, "npm install"},
		{"broken astro config", brokenConfig, nil, vite.ErrStartFailed, "astro.config.mjs"},
		{"fixed port taken", good, &vite.Options{Port: takenPort}, vite.ErrPortInUse, strconv.Itoa(takenPort)},
		{"fixed HMR port taken", good, &vite.Options{HMRPort: takenPort}, vite.ErrPortInUse, strconv.Itoa(takenPort)},
		{"vite options on astro", good, &vite.Options{Config: map[string]any{}}, vite.ErrInvalidOptions, "plain Vite"},
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
			assert.Equal(t, vite.Astro, se.Framework)
			assert.Contains(t, err.Error(), tc.mention)
			t.Log(err)
			assert.Empty(t, testenv.Processes(), "processes left after a failed start")
		})
	}
}

// TestVitePluginFrameworks starts frameworks that are a Vite plugin in the
// project's own config, SvelteKit 2 and React Router 7 (framework mode),
// through the plain runner behind a public URL: the page is rendered on the
// server, a component edit is a hot update, and an edit of a module only
// the server imports reaches the server-rendered page.
func TestVitePluginFrameworks(t *testing.T) {
	testenv.Short(t)
	for _, tc := range []struct {
		fixture, major string
		title          string
		component      string // a file of the page's client module graph
		server         string // a module only the server imports
		// serverEvent is the custom HMR event that a server module edit
		// sends, "" for none: SvelteKit renders the next request with the
		// new module and tells the open page nothing; React Router's HMR
		// runtime refetches the loaders.
		serverEvent string
	}{
		{
			fixture: "sveltekit2", major: "7.", title: "Hello from SvelteKit",
			component: "src/routes/+page.svelte", server: "src/lib/server/message.js",
		},
		{
			fixture: "reactrouter7", major: "8.", title: "Hello from React Router",
			component: "app/routes/home.jsx", server: "app/message.server.js",
			serverEvent: "react-router:hmr",
		},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			dir := testenv.Fixture(t, tc.fixture)
			hot := filepath.Join(t.TempDir(), "hot")
			public, _ := url.Parse("http://localhost:8000")
			s := start(t, dir, &vite.Options{PublicURL: public, HMRPath: "/hmr", HotFile: hot})

			assert.Equal(t, vite.Vite, s.Framework(), "a Vite plugin in the project's config: plain Vite")
			assert.True(t, strings.HasPrefix(s.Version(), tc.major), "version %q", s.Version())
			tg := s.Targets()
			a, _ := readHot(hot)
			require.Equal(t, tg.HTTP.String(), a)

			code, body := get(t, a+"/")
			require.Equal(t, 200, code)
			assert.Contains(t, body, tc.title, "the page is rendered on the server")
			assert.Contains(t, body, "Rendered on the server")
			code, client := get(t, a+"/@vite/client")
			require.Equal(t, 200, code)
			assert.Contains(t, client, "const hmrPort = 8000;")
			assert.Contains(t, client, `"/hmr"`)
			pid := s.PID()
			assert.ElementsMatch(t, []string{"127.0.0.1:" + tg.HTTP.Port(), "127.0.0.1:" + tg.HMR.Port()}, listeningPorts(t, pid))

			conn := dialHMR(t, tg.HMR, "/hmr", s.Token())
			code, _ = get(t, a+"/"+tc.component) // puts the component in the client's module graph
			require.Equal(t, 200, code)
			m := editFile(t, conn, filepath.Join(dir, tc.component), tc.title, "Edited ", "update", "full-reload")
			assert.Equal(t, "update", m["type"], "a component edit is a hot update")
			waitBody(t, a+"/", "Edited ")

			conn.drain()
			server := filepath.Join(dir, tc.server)
			src, err := os.ReadFile(server)
			require.NoError(t, err)
			writeFile(t, server, strings.Replace(string(src), "Rendered on the server", "Edited on the server", 1))
			waitBody(t, a+"/", "Edited on the server")
			if tc.serverEvent != "" {
				conn.waitFor(t, func(m map[string]any) bool { return m["type"] == "custom" && m["event"] == tc.serverEvent })
			}

			require.NoError(t, s.Stop(context.Background()))
			pids, err := vite.GroupPIDs(pid)
			require.NoError(t, err)
			assert.Empty(t, pids)
		})
	}
}

// editFile replaces from in path with prefix+i, i = 0, 1, ..., until a
// message of one of the types arrives on conn, and returns it.
func editFile(t *testing.T, conn *hmrConn, path, from, prefix string, types ...string) map[string]any {
	t.Helper()
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(src), from)
	return conn.editUntil(t, path, func(i int) string {
		return strings.Replace(string(src), from, prefix+strconv.Itoa(i), 1)
	}, types...)
}

// waitBody fetches u until its body contains want: the dev server's
// watcher sees an edit a few milliseconds after the write.
func waitBody(t *testing.T, u, want string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(long)
	for {
		code, body := get(t, u)
		if code == 200 && strings.Contains(body, want) {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s never contained %q; last answer %d:\n%s", u, want, code, body)
		}
	}
}

// writeFile replaces path the way editors do: a temporary file renamed
// over it.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, path))
}

// drain discards the messages that have arrived so far, so that the next
// wait sees only what comes after.
func (c *hmrConn) drain() {
	for {
		select {
		case <-c.msgs:
		default:
			return
		}
	}
}

// waitFor returns the first message for which match is true.
func (c *hmrConn) waitFor(t *testing.T, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(long)
	for {
		select {
		case m, ok := <-c.msgs:
			require.True(t, ok, "the HMR socket closed")
			if match(m) {
				return m
			}
		case <-deadline:
			t.Fatal("no matching message on the HMR socket")
		}
	}
}

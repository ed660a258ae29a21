package vite_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// requireSandbox ends the test through testenv.Missing when bubblewrap
// cannot create a sandbox here.
func requireSandbox(t *testing.T) {
	t.Helper()
	testenv.LookPath(t, "bwrap")
	if err := sandbox.Check(context.Background(), ""); err != nil {
		testenv.Missing(t, err.Error())
	}
}

// sandboxFixture installs the fixture as a preview service would lay it
// out: the project without node_modules, and the dependencies in a
// directory of their own beside it, both reachable by the sandbox's user.
func sandboxFixture(t *testing.T, name string) (project, modules string) {
	t.Helper()
	project = testenv.Fixture(t, name)
	modules = filepath.Join(filepath.Dir(project), "modules")
	require.NoError(t, os.Rename(filepath.Join(project, "node_modules"), modules))
	for d := filepath.Dir(project); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()+"/") {
			require.NoError(t, os.Chmod(d, 0o711)) // t.TempDir's directories are root's alone
		}
	}
	return project, modules
}

// sandboxConfig returns a sandbox for the dependencies in modules whose
// processes the leak check sees; label names its cgroup.
func sandboxConfig(t *testing.T, modules, label string) *sandbox.Config {
	return &sandbox.Config{
		Modules: modules,
		Env:     []string{testenv.OwnerEnv()},
		Name:    label,
		Logger:  testLogger(t),
	}
}

func randomLabel(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// unixClient returns an HTTP client whose every connection goes to the Unix
// socket sock, as a proxy's transport does for a unix target.
func unixClient(sock string) *http.Client {
	return &http.Client{
		Timeout: long,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			},
		},
	}
}

// getUnix fetches path from the dev server on the Unix socket sock with the
// Host header host and returns the status and body.
func getUnix(t testing.TB, sock, path, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://localhost"+path, nil)
	require.NoError(t, err)
	req.Host = host
	req.Header.Set("Accept", "*/*") // as browsers and curl: Vite 4's SPA fallback serves index.html to no other
	res, err := unixClient(sock).Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// dialHMRUnix opens a vite-hmr WebSocket at path over the Unix socket sock.
func dialHMRUnix(t testing.TB, sock, path, token string) *hmrConn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	return openHMR(t, d, url.URL{Scheme: "ws", Host: "localhost", Path: path, RawQuery: url.Values{"token": {token}}.Encode()})
}

// cgroupDirs returns the cgroup directories whose name carries label.
func cgroupDirs(label string) []string {
	var out []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "vitehost-"+label+"-") {
			out = append(out, p)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// TestSandbox runs the React fixture, with a config file of its own, in the
// sandbox on each supported Vite major: the page, a transformed module and
// the HMR socket over the Unix sockets, an edit on the host brought to the
// HMR socket, the project's config in effect, nothing of the host's
// /etc/passwd in a module that imports it, and nothing left after Stop.
func TestSandbox(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	hostPasswd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	for _, tc := range []struct{ fixture, major string }{
		{"vite8-react", "8."},
		{"vite7-react", "7."},
		{"vite6-react", "6."},
		{"vite5-react", "5."},
		{"vite4-react", "4."},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			project, modules := sandboxFixture(t, tc.fixture)
			require.NoError(t, os.WriteFile(filepath.Join(project, "vite.config.js"), []byte(`
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

export default defineConfig({
  plugins: [react()],
  define: { __FROM_CONFIG__: JSON.stringify('the project config is in effect') },
  root: 'src', // the runner keeps the root at the project
})
`), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(project, "src", "passwd.js"),
				[]byte("import p from '../../../../../../../../etc/passwd?raw'\nexport default p\n"), 0o644))

			label := randomLabel("vite")
			public, _ := url.Parse("http://localhost:8000")
			s := start(t, project, &vite.Options{
				Sandbox:   sandboxConfig(t, modules, label),
				PublicURL: public,
				HMRPath:   "/hmr",
			})
			assert.True(t, strings.HasPrefix(s.Version(), tc.major), "version %q", s.Version())
			tg := s.Targets()
			require.Equal(t, "unix", tg.HTTP.Scheme)
			require.Equal(t, "unix", tg.HMR.Scheme)
			assert.Equal(t, "http.sock", filepath.Base(tg.HTTP.Path))
			assert.Equal(t, "hmr.sock", filepath.Base(tg.HMR.Path))
			assert.Equal(t, filepath.Dir(tg.HTTP.Path), filepath.Dir(tg.HMR.Path))
			sock, hmrSock := tg.HTTP.Path, tg.HMR.Path

			code, body := getUnix(t, sock, "/", "localhost")
			require.Equal(t, 200, code, body)
			assert.Contains(t, body, `<div id="root">`)
			assert.Contains(t, body, "/@vite/client", "index.html is transformed")
			code, client := getUnix(t, sock, "/@vite/client", "localhost")
			require.Equal(t, 200, code)
			assert.Contains(t, client, "const hmrPort = 8000;")
			assert.Contains(t, client, `"/hmr"`)
			code, app := getUnix(t, sock, "/src/App.jsx", "localhost")
			require.Equal(t, 200, code)
			assert.Contains(t, app, "RefreshRuntime", "the project's React plugin is active")
			// In dev, Vite puts the config's define into /@vite/env.
			code, env := getUnix(t, sock, "/@vite/env", "localhost")
			require.Equal(t, 200, code)
			assert.Contains(t, env, "the project config is in effect")

			// The public host passes Vite's host check, another host does not.
			code, _ = getUnix(t, sock, "/", "localhost:8000")
			assert.Equal(t, 200, code)
			code, _ = getUnix(t, sock, "/", "evil.example.com")
			if tc.major != "4." { // Vite 4 has no host check (5.4.12 and 6.0.9 brought it)
				assert.Equal(t, 403, code)
			}

			// An import of the host's /etc/passwd reaches the sandbox's own.
			code, _ = getUnix(t, sock, "/src/passwd.js", "localhost")
			assert.Equal(t, 200, code)
			code, passwd := getUnix(t, sock, "/@fs/etc/passwd?raw&import", "localhost")
			t.Logf("/@fs/etc/passwd: %d %.120q", code, passwd)
			assert.Contains(t, passwd, "sandbox:x:1000:1000:")
			for _, line := range strings.Split(strings.TrimSpace(string(hostPasswd)), "\n") {
				if !strings.HasPrefix(line, "nobody:") { // the sandbox has a nobody of its own
					assert.NotContains(t, passwd, line, "the host's /etc/passwd is served")
				}
			}

			conn := dialHMRUnix(t, hmrSock, "/hmr", s.Token())
			appFile := filepath.Join(project, "src", "App.jsx")
			src, err := os.ReadFile(appFile)
			require.NoError(t, err)
			m := conn.editUntil(t, appFile, func(i int) string {
				return strings.Replace(string(src), "Hello from the fixture", "Edited "+strconv.Itoa(i), 1)
			}, "update", "full-reload")
			assert.Equal(t, "update", m["type"])
			assert.Contains(t, string(mustJSON(t, m)), "/src/App.jsx")

			// Stop: no process, no socket, no socket directory, no cgroup.
			require.NotEmpty(t, testenv.NodeProcesses())
			require.NoError(t, s.Stop(context.Background()))
			assert.Empty(t, testenv.Processes())
			assert.NoFileExists(t, sock)
			assert.NoDirExists(t, filepath.Dir(sock))
			assert.Empty(t, cgroupDirs(label))
			assert.Nil(t, s.Targets().HTTP)
		})
	}
}

// TestSandboxHostEnvironment: a secret of the host process's environment
// reaches neither a module through a .env file nor /proc/self/environ.
func TestSandboxHostEnvironment(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	t.Setenv("VITEHOST_PROBE_SECRET", "host-secret-value")
	project, modules := sandboxFixture(t, "vite8-react")
	require.NoError(t, os.WriteFile(filepath.Join(project, ".env"),
		[]byte("VITE_LEAK=${VITEHOST_PROBE_SECRET}\nVITE_PLAIN=plain\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(project, "src", "env.js"),
		[]byte("export const leak = import.meta.env.VITE_LEAK, plain = import.meta.env.VITE_PLAIN\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(project, "src", "environ.js"),
		[]byte("import e from '../../../../../../../proc/self/environ?raw'\nexport default e\n"), 0o644))
	s := start(t, project, &vite.Options{Sandbox: sandboxConfig(t, modules, randomLabel("env"))})
	sock := s.Targets().HTTP.Path
	code, body := getUnix(t, sock, "/src/env.js", "localhost")
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, `"plain"`, ".env files are read")
	assert.NotContains(t, body, "host-secret-value")
	code, body = getUnix(t, sock, "/src/environ.js", "localhost")
	require.Equal(t, 200, code, body)
	// The module imports the file by the URL Vite gave it.
	m := regexp.MustCompile(`import e from "([^"]+)"`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	code, body = getUnix(t, sock, m[1]+"&import", "localhost")
	t.Logf("/proc/self/environ through an import: %d %.300q", code, body)
	assert.Contains(t, body, "NODE_ENV=development", "the dev server's own environment")
	assert.NotContains(t, body, "host-secret-value")
}

// TestSandboxConfigFailures: a config that throws and one that never
// resolves end the start with a StartError within StartTimeout, and leave
// nothing running.
func TestSandboxConfigFailures(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	for _, tc := range []struct {
		name, config string
		timeout      time.Duration
		want         error
		mention      string
	}{
		{"throws", "throw new Error('the tenant config broke')\n", 0, vite.ErrStartFailed, "the tenant config broke"},
		{"never resolves", "export default new Promise(() => {})\n", 5 * time.Second, vite.ErrStartTimeout, "not ready in time"},
		{"busy forever", "for (;;) {}\n", 5 * time.Second, vite.ErrStartTimeout, "not ready in time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			project, modules := sandboxFixture(t, "vite8-react")
			require.NoError(t, os.WriteFile(filepath.Join(project, "vite.config.js"), []byte(tc.config), 0o644))
			label := randomLabel("fail")
			s, err := vite.Start(context.Background(), project, &vite.Options{
				Sandbox:      sandboxConfig(t, modules, label),
				StartTimeout: tc.timeout,
				Logger:       testLogger(t),
			})
			require.Error(t, err)
			require.Nil(t, s)
			t.Log(err)
			var se *vite.StartError
			require.ErrorAs(t, err, &se)
			assert.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.mention)
			assert.Empty(t, testenv.Processes())
			assert.Empty(t, cgroupDirs(label))
		})
	}
}

// TestSandboxMemoryLimit: a config that allocates without end is killed at
// the sandbox's memory limit, and the start error says so.
func TestSandboxMemoryLimit(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	if _, err := sandbox.CgroupSupport(); err != nil {
		testenv.Missing(t, err.Error())
	}
	project, modules := sandboxFixture(t, "vite8-react")
	require.NoError(t, os.WriteFile(filepath.Join(project, "vite.config.js"),
		[]byte("const keep = []\nfor (;;) keep.push(Buffer.alloc(8 << 20, 1))\n"), 0o644))
	cfg := sandboxConfig(t, modules, randomLabel("oom"))
	cfg.Limits.Memory = 256 << 20
	s, err := vite.Start(context.Background(), project, &vite.Options{Sandbox: cfg, Logger: testLogger(t)})
	require.Error(t, err)
	require.Nil(t, s)
	t.Log(err)
	assert.ErrorIs(t, err, vite.ErrStartFailed)
	assert.ErrorIs(t, err, sandbox.ErrMemoryLimit)
	assert.Empty(t, testenv.Processes())
}

// TestSandboxCrashRestart kills the dev server's node inside the sandbox:
// the sandbox goes, a new one comes up on the same socket paths.
func TestSandboxCrashRestart(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	project, modules := sandboxFixture(t, "vite8-react")
	label := randomLabel("crash")
	s := start(t, project, &vite.Options{Sandbox: sandboxConfig(t, modules, label)})
	updates, cancel := s.Subscribe()
	defer cancel()
	before, token := s.Targets(), s.Token()
	cgroups := cgroupDirs(label)
	nodes := testenv.NodeProcesses()
	require.Len(t, nodes, 1)
	pid, err := strconv.Atoi(strings.Fields(nodes[0])[0])
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	select {
	case tg := <-updates:
		assert.Nil(t, tg.HTTP, "down")
	case <-time.After(long):
		t.Fatal("no update after the crash")
	}
	var back hotfile.Targets
	select {
	case back = <-updates:
	case <-time.After(long):
		t.Fatal("not restarted")
	}
	require.NotNil(t, back.HTTP)
	assert.True(t, back.Equal(before), "the same socket paths")
	assert.NotEqual(t, token, s.Token())
	now := cgroupDirs(label)
	assert.Len(t, now, len(cgroups), "one cgroup, the new run's")
	for _, d := range cgroups {
		assert.NotContains(t, now, d, "the crashed run's cgroup is removed")
	}
	code, _ := getUnix(t, back.HTTP.Path, "/", "localhost")
	assert.Equal(t, 200, code)
	dialHMRUnix(t, back.HMR.Path, "/", s.Token())
}

// TestSocketDir runs plain Vite without a sandbox on Unix sockets in a
// directory of the caller's.
func TestSocketDir(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	sockDir := filepath.Join(t.TempDir(), "run")
	s := start(t, dir, &vite.Options{SocketDir: sockDir, HMRPath: "/hmr"})
	tg := s.Targets()
	assert.Equal(t, &url.URL{Scheme: "unix", Path: filepath.Join(sockDir, "http.sock")}, tg.HTTP)
	assert.Equal(t, &url.URL{Scheme: "unix", Path: filepath.Join(sockDir, "hmr.sock")}, tg.HMR)
	code, body := getUnix(t, tg.HTTP.Path, "/", "localhost")
	require.Equal(t, 200, code)
	assert.Contains(t, body, `<div id="root">`)
	code, client := getUnix(t, tg.HTTP.Path, "/@vite/client", "localhost")
	require.Equal(t, 200, code)
	assert.NotContains(t, client, "const hmrPort = 0", "the page's own port")
	dialHMRUnix(t, tg.HMR.Path, "/hmr", s.Token())
	require.NoError(t, s.Stop(context.Background()))
	assert.NoFileExists(t, tg.HTTP.Path)
	assert.DirExists(t, sockDir, "the caller's directory stays")
}

// TestSandboxOptions: what cannot work with a sandbox fails before any
// process starts.
func TestSandboxOptions(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	nuxt := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(nuxt, "package.json"), []byte(`{"dependencies":{"nuxt":"^4"}}`), 0o644))
	for _, tc := range []struct {
		name    string
		dir     string
		opts    vite.Options
		mention string
	}{
		{"nuxt", nuxt, vite.Options{Sandbox: &sandbox.Config{}}, "plain Vite only"},
		{"nuxt socket dir", nuxt, vite.Options{SocketDir: t.TempDir()}, "plain Vite only"},
		{"port", dir, vite.Options{Sandbox: &sandbox.Config{}, Port: 5173}, "Unix sockets"},
		{"host", dir, vite.Options{SocketDir: t.TempDir(), Host: "0.0.0.0"}, "Unix sockets"},
		{"other project", dir, vite.Options{Sandbox: &sandbox.Config{Project: t.TempDir()}}, "not the project directory"},
		{"config file outside", dir, vite.Options{Sandbox: &sandbox.Config{}, ConfigFile: "/etc/vite.config.js"}, "outside the project"},
		{"long socket dir", dir, vite.Options{SocketDir: "/tmp/" + strings.Repeat("d", 120)}, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Logger = testLogger(t)
			s, err := vite.Start(context.Background(), tc.dir, &o)
			require.Nil(t, s)
			require.ErrorIs(t, err, vite.ErrInvalidOptions)
			assert.Contains(t, err.Error(), tc.mention)
		})
	}
}

// A tenant's project runs with its own config in a sandbox that sees the
// project and the shared dependency install only; the proxy in front of it
// dials the Unix sockets that Targets name.
func ExampleStart_sandbox() {
	public, _ := url.Parse("https://preview-abc.example.com")
	s, err := vite.Start(context.Background(), "/srv/previews/abc", &vite.Options{
		Sandbox: &sandbox.Config{
			Modules: "/srv/deps/3f2a9c/node_modules",
			Limits:  sandbox.Limits{Memory: 1 << 30},
			Name:    "abc",
		},
		PublicURL: public,
		HMRPath:   "/hmr",
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, sandbox.ErrMemoryLimit), vite.ErrStartTimeout, ...
	}
	defer s.Stop(context.Background())
	tg := s.Targets()
	fmt.Println(tg.HTTP.Scheme, filepath.Base(tg.HTTP.Path), filepath.Base(tg.HMR.Path)) // unix http.sock hmr.sock
}

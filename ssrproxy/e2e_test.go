package ssrproxy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
)

// viteRunner starts Vite with the HMR WebSocket on a listener of its own,
// created here on 127.0.0.1 and handed over (server.ws.server; Vite >= 8.1
// calls server.hmr server.ws and warns that the old key is deprecated), and
// tells the client to connect to the proxy's port under /hmr. It prints the
// two URLs as one JSON line once Vite listens, and stops on SIGTERM.
const viteRunner = `
import http from 'node:http';
import { createServer } from 'vite';

const [root, clientPort] = process.argv.slice(2);
const hmr = http.createServer();
await new Promise((resolve, reject) => {
  hmr.once('error', reject);
  hmr.listen(0, '127.0.0.1', resolve);
});
const server = await createServer({
  root,
  clearScreen: false,
  logLevel: 'warn',
  server: {
    host: '127.0.0.1',
    port: 0,
    strictPort: true,
    ws: { server: hmr, clientPort: Number(clientPort), path: 'hmr' },
  },
});
await server.listen();
console.log(JSON.stringify({
  http: 'http://127.0.0.1:' + server.httpServer.address().port,
  hmr: 'http://127.0.0.1:' + hmr.address().port,
}));
const stop = async () => {
  await server.close();
  hmr.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
`

// vite is a dev server started by startVite.
type vite struct {
	HTTP, HMR *url.URL
	cmd       *exec.Cmd
	stderr    *logBuffer
	done      chan struct{} // closed when the process has been waited for
	stopOnce  sync.Once
}

// startVite runs Vite on the project in dir, in a process group of its own
// that the test's cleanup ends.
func startVite(t *testing.T, dir, clientPort string) *vite {
	t.Helper()
	node := testenv.LookPath(t, "node")
	script := filepath.Join(dir, "vitehost-e2e.mjs")
	require.NoError(t, os.WriteFile(script, []byte(viteRunner), 0o644))
	v := &vite{stderr: &logBuffer{}, done: make(chan struct{})}
	first := &firstLine{line: make(chan string, 1)}
	v.cmd = exec.Command(node, script, dir, clientPort)
	v.cmd.Dir = dir
	v.cmd.Stdout = first
	v.cmd.Stderr = v.stderr
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	v.cmd.WaitDelay = 5 * time.Second
	require.NoError(t, v.cmd.Start())
	go func() {
		v.cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(v.stop)

	select {
	case line := <-first.line:
		var urls struct{ HTTP, HMR string }
		require.NoError(t, json.Unmarshal([]byte(line), &urls), line)
		v.HTTP, v.HMR = mustURL(t, urls.HTTP), mustURL(t, urls.HMR)
	case <-v.done:
		t.Fatalf("vite exited before it listened:\n%s", v.stderr)
	case <-time.After(time.Minute):
		t.Fatalf("vite did not listen within a minute:\n%s", v.stderr)
	}
	return v
}

// stop ends the process group: SIGTERM, then SIGKILL after 10 s.
func (v *vite) stop() {
	v.stopOnce.Do(func() {
		pgid := v.cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-v.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-v.done
		}
		// Anything left in the group (a worker) goes too.
		syscall.Kill(-pgid, syscall.SIGKILL)
	})
}

// firstLine passes on the first line written to it.
type firstLine struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
	line chan string
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent {
		return len(p), nil
	}
	f.buf.Write(p)
	if line, _, ok := strings.Cut(f.buf.String(), "\n"); ok {
		f.sent = true
		f.line <- line
	}
	return len(p), nil
}

var wsTokenRE = regexp.MustCompile(`const wsToken = "([^"]+)";`)

// TestViteEndToEnd runs a real Vite 8 React app behind the proxy, with HMR
// on its own port and the client told to connect to the proxy's port.
func TestViteEndToEnd(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	log := testenv.Logger(t)

	hot := filepath.Join(t.TempDir(), "hot")
	w, err := hotfile.Watch(hot, &hotfile.WatchOptions{Debounce: time.Millisecond, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	p := ssrproxy.New(w, &ssrproxy.Options{Logger: log})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { p.Close() })
	proxyURL := mustURL(t, srv.URL)
	client := srv.Client()
	navigation := http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}

	// Before the dev server runs: the boot page.
	res, body := get(t, client, "GET", srv.URL+"/", navigation)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.Contains(t, body, "The dev server is starting")

	v := startVite(t, dir, proxyURL.Port())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vite's stderr:\n%s", v.stderr)
		}
	})
	changes, cancel := w.Subscribe()
	defer cancel()
	require.NoError(t, hotfile.Write(hotfile.HMRPath(hot), v.HMR))
	require.NoError(t, hotfile.Write(hot, v.HTTP))
	for t := w.Targets(); t.HTTP == nil || t.HMR == nil; t = w.Targets() {
		select {
		case <-changes:
		case <-time.After(deadline):
			require.FailNow(nil, "the watcher did not see the hot files")
		}
	}

	// The page and Vite's client, through the proxy.
	res, body = get(t, client, "GET", srv.URL+"/", navigation)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Contains(t, body, `<div id="root"></div>`)
	assert.Contains(t, body, "/@vite/client")
	res, body = get(t, client, "GET", srv.URL+"/@vite/client", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Contains(t, body, fmt.Sprintf("const hmrPort = %s;", proxyURL.Port()), "the client connects to the proxy")
	m := wsTokenRE.FindStringSubmatch(body)
	require.NotNil(t, m, "wsToken in /@vite/client")
	token := m[1]
	// Load the modules, as the page would, so that an edit is an update.
	for _, path := range []string{"/src/main.jsx", "/src/App.jsx"} {
		res, body = get(t, client, "GET", srv.URL+path, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
	}

	hmrURL := "ws://" + proxyURL.Host + "/hmr?token=" + url.QueryEscape(token)
	browserHeader := func(proto string) http.Header {
		h := protocols(proto)
		h.Set("Origin", srv.URL)
		return h
	}

	// Vite refuses a socket with an Origin and a wrong token; the refusal
	// reaches the client as Vite sent it.
	_, res, err = dialWS(t, "ws://"+proxyURL.Host+"/hmr?token=wrong", browserHeader("vite-hmr"))
	require.ErrorIs(t, err, testenv.ErrHandshake)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)

	// The HMR socket through the proxy.
	c, res, err := dialWS(t, hmrURL, browserHeader("vite-hmr"))
	require.NoError(t, err)
	assert.Equal(t, "vite-hmr", res.Header.Get("Sec-WebSocket-Protocol"))
	msg, err := c.ReadMessage()
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"connected"}`, string(msg))

	// An edit reaches the socket as an update. Vite listens before its file
	// watcher has finished its first scan, so an edit made right after the
	// start can go unseen: edit again until an update arrives.
	type received struct {
		msg []byte
		err error
	}
	incoming := make(chan received, 16)
	stopReading := make(chan struct{})
	t.Cleanup(func() { close(stopReading) }) // runs before the socket's Close
	go func() {
		for {
			msg, err := c.ReadMessage()
			select {
			case incoming <- received{msg, err}:
			case <-stopReading:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	app := filepath.Join(dir, "src", "App.jsx")
	src, err := os.ReadFile(app)
	require.NoError(t, err)
	require.Contains(t, string(src), "Hello from the fixture")
	updated := false
	for attempt := 1; !updated; attempt++ {
		require.LessOrEqual(t, attempt, 5, "no update after %d edits", attempt-1)
		edited := strings.Replace(string(src), "Hello from the fixture", fmt.Sprintf("Hello through the proxy (%d)", attempt), 1)
		require.NoError(t, os.WriteFile(app+".tmp", []byte(edited), 0o644))
		require.NoError(t, os.Rename(app+".tmp", app))
		wait := time.After(3 * time.Second)
	waiting:
		for {
			select {
			case r := <-incoming:
				require.NoError(t, r.err, "waiting for the update")
				var m struct {
					Type    string
					Updates []struct{ Path string }
				}
				require.NoError(t, json.Unmarshal(r.msg, &m), string(r.msg))
				require.NotEqual(t, "full-reload", m.Type, "an edit of a loaded React component is an update")
				if m.Type == "update" {
					require.NotEmpty(t, m.Updates)
					assert.Equal(t, "/src/App.jsx", m.Updates[0].Path)
					updated = true
					break waiting
				}
			case <-wait:
				break waiting
			}
		}
	}

	// vite-ping opens while Vite runs (and Vite closes it at once).
	ping, res, err := dialWS(t, hmrURL, browserHeader("vite-ping"))
	require.NoError(t, err)
	assert.Equal(t, "vite-ping", res.Header.Get("Sec-WebSocket-Protocol"))
	_, err = ping.ReadMessage()
	var closed *testenv.CloseError
	require.ErrorAs(t, err, &closed)
	assert.Equal(t, uint16(1000), closed.Code)

	// Vite stops: the HMR socket ends, and a vite-ping is refused with 503,
	// not accepted and closed, so that the page waits instead of reloading.
	v.stop()
	for r := range incoming {
		if r.err != nil {
			break // the HMR socket ended with the dev server
		}
	}
	_, res, err = dialWS(t, hmrURL, browserHeader("vite-ping"))
	require.ErrorIs(t, err, testenv.ErrHandshake)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, body = get(t, client, "GET", srv.URL+"/", navigation)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body, "The dev server is starting")
}

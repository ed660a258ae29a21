package ssrproxy_test

import (
	"bufio"
	"context"
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
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

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

	// The launcher writes the hot files when Vite is ready; the proxy
	// follows them through the watcher.
	changes, cancel := w.Subscribe()
	defer cancel()
	dev, err := vite.Start(t.Context(), dir, &vite.Options{
		PublicURL: proxyURL, HMRPath: "/hmr", HotFile: hot, NoRestart: true, Logger: log,
	})
	require.NoError(t, err)
	t.Cleanup(func() { dev.Stop(context.Background()) })
	for t := w.Targets(); t.HTTP == nil || t.HMR == nil; t = w.Targets() {
		select {
		case <-changes:
		case <-time.After(deadline):
			require.FailNow(nil, "the watcher did not see the hot files")
		}
	}
	assert.Equal(t, dev.Targets(), w.Targets())

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

	// An edit reaches the socket as an update.
	incoming := readMessages(t, c)
	editUntilUpdate(t, dir, incoming)

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
	require.NoError(t, dev.Stop(t.Context()))
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

// unixDevServer is a Node script that serves the project in its directory
// the way a sandboxed preview session does: Vite in middleware mode on an
// http.Server of its own that listens on a Unix socket, and Vite's HMR
// WebSocket on a second server, handed over through server.ws.server, on
// another socket at the path /hmr; the browser's client is told to connect
// to the proxy's port. It prints "ready" once both listen and stops when its
// stdin ends.
const unixDevServer = `
import http from 'node:http'
import { createServer } from 'vite'

const [httpSock, hmrSock, clientPort] = process.argv.slice(2)
const listen = (server, path) => new Promise((resolve, reject) => {
  server.once('error', reject)
  server.listen(path, resolve)
})
const hmrServer = http.createServer()
await listen(hmrServer, hmrSock)
const vite = await createServer({
  root: process.cwd(),
  appType: 'spa',
  server: { middlewareMode: true, ws: { server: hmrServer, path: '/hmr', clientPort: Number(clientPort) } },
})
const app = http.createServer(vite.middlewares)
await listen(app, httpSock)
console.log('ready')
process.stdin.resume()
process.stdin.on('end', async () => {
  await vite.close()
  app.close()
  hmrServer.closeAllConnections()
  hmrServer.close()
  process.exit(0)
})
`

// startUnixVite runs unixDevServer in dir and returns once it listens on
// httpSock and hmrSock. stop ends it and returns when it has exited (its
// sockets are gone then); the test's cleanup calls stop too.
func startUnixVite(t *testing.T, dir, httpSock, hmrSock, clientPort string) (stop func()) {
	t.Helper()
	node := testenv.LookPath(t, "node")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "unix-dev-server.mjs"), []byte(unixDevServer), 0o644))
	cmd := exec.Command(node, "unix-dev-server.mjs", httpSock, hmrSock, clientPort)
	cmd.Dir = dir
	cmd.Stderr = testenv.Writer(t)
	cmd.WaitDelay = deadline
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	ready := make(chan struct{})
	exited := make(chan error, 1)
	go func() {
		out := testenv.Writer(t)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
			out.Write(sc.Bytes())
		}
		exited <- cmd.Wait() // after the last read of stdout, as os/exec wants
	}()
	var waitErr error
	end := sync.OnceFunc(func() {
		stdin.Close() // the script's stop signal
		select {
		case waitErr = <-exited:
		case <-time.After(deadline):
			cmd.Process.Kill()
			waitErr = fmt.Errorf("node did not stop within %s: %w", deadline, <-exited)
		}
	})
	t.Cleanup(end)
	select {
	case <-ready:
	case err := <-exited:
		exited <- err // for end
		require.FailNow(t, "the dev server exited before it listened", "%v", err)
	case <-time.After(deadline):
		end()
		require.FailNow(t, "the dev server did not listen in time", "%v", waitErr)
	}
	return func() {
		end()
		require.NoError(t, waitErr, "the dev server's exit")
	}
}

// A sandboxed dev server has no network: Vite listens on a Unix socket and
// its HMR WebSocket on another. The hot files name the sockets, and the
// proxy serves the page, the modules and HMR over them, keeping the token of
// Vite's WebSocket.
func TestViteOverUnixSockets(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	log := testenv.Logger(t)
	sockets := socketDir(t)
	httpSock, hmrSock := filepath.Join(sockets, "http.sock"), filepath.Join(sockets, "hmr.sock")

	hot := filepath.Join(t.TempDir(), "hot")
	w, err := hotfile.Watch(hot, &hotfile.WatchOptions{Debounce: time.Millisecond, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	p := ssrproxy.New(w, &ssrproxy.Options{Logger: log})
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(p.Close)
	proxyURL := mustURL(t, srv.URL)
	client := srv.Client()
	navigation := http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}

	stop := startUnixVite(t, dir, httpSock, hmrSock, proxyURL.Port())
	changes, cancel := w.Subscribe()
	defer cancel()
	require.NoError(t, hotfile.Write(hotfile.HMRPath(hot), hotfile.UnixURL(hmrSock)))
	require.NoError(t, hotfile.Write(hot, hotfile.UnixURL(httpSock)))
	for t := w.Targets(); t.HTTP == nil || t.HMR == nil; t = w.Targets() {
		select {
		case <-changes:
		case <-time.After(deadline):
			require.FailNow(nil, "the watcher did not see the hot files")
		}
	}

	// The page, Vite's client and the modules, over the HTTP socket.
	res, body := get(t, client, "GET", srv.URL+"/", navigation)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Contains(t, body, `<div id="root"></div>`)
	res, body = get(t, client, "GET", srv.URL+"/@vite/client", nil)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Contains(t, body, fmt.Sprintf("const hmrPort = %s;", proxyURL.Port()), "the client connects to the proxy")
	m := wsTokenRE.FindStringSubmatch(body)
	require.NotNil(t, m, "wsToken in /@vite/client")
	hmrURL := "ws://" + proxyURL.Host + "/hmr?token=" + url.QueryEscape(m[1])
	for _, path := range []string{"/src/main.jsx", "/src/App.jsx"} {
		res, body = get(t, client, "GET", srv.URL+path, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
	}
	browserHeader := func(proto string) http.Header {
		h := protocols(proto)
		h.Set("Origin", srv.URL)
		return h
	}

	// Vite checks the token that the query carries over the HMR socket.
	_, res, err = dialWS(t, "ws://"+proxyURL.Host+"/hmr?token=wrong", browserHeader("vite-hmr"))
	require.ErrorIs(t, err, testenv.ErrHandshake)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)

	c, res, err := dialWS(t, hmrURL, browserHeader("vite-hmr"))
	require.NoError(t, err)
	assert.Equal(t, "vite-hmr", res.Header.Get("Sec-WebSocket-Protocol"))
	msg, err := c.ReadMessage()
	require.NoError(t, err)
	assert.JSONEq(t, `{"type":"connected"}`, string(msg))
	incoming := readMessages(t, c)
	editUntilUpdate(t, dir, incoming)

	ping, res, err := dialWS(t, hmrURL, browserHeader("vite-ping"))
	require.NoError(t, err)
	assert.Equal(t, "vite-ping", res.Header.Get("Sec-WebSocket-Protocol"))
	_, err = ping.ReadMessage()
	var closed *testenv.CloseError
	require.ErrorAs(t, err, &closed)
	assert.Equal(t, uint16(1000), closed.Code)

	// The dev server stops and its sockets go: the HMR socket ends, a
	// vite-ping is refused, and a page gets the page that waits.
	stop()
	for r := range incoming {
		if r.err != nil {
			break
		}
	}
	assert.NoFileExists(t, httpSock)
	_, res, err = dialWS(t, hmrURL, browserHeader("vite-ping"))
	require.ErrorIs(t, err, testenv.ErrHandshake)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	res, body = get(t, client, "GET", srv.URL+"/", navigation)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.Contains(t, body, "The dev server is starting")
}

// received is a message from a WebSocket, or the error that ended it.
type received struct {
	msg []byte
	err error
}

// readMessages reads c's messages into the returned channel until c ends
// (the last value carries the error) or the test does.
func readMessages(t *testing.T, c *testenv.WSConn) <-chan received {
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
	return incoming
}

// editUntilUpdate edits the fixture's src/App.jsx until the HMR socket
// brings an update for it. Vite listens before its file watcher has finished
// its first scan, so an edit made right after the start can go unseen: edit
// again until an update arrives.
func editUntilUpdate(t *testing.T, dir string, incoming <-chan received) {
	t.Helper()
	app := filepath.Join(dir, "src", "App.jsx")
	src, err := os.ReadFile(app)
	require.NoError(t, err)
	require.Contains(t, string(src), "Hello from the fixture")
	for attempt := 1; ; attempt++ {
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
					return
				}
			case <-wait:
				break waiting
			}
		}
	}
}

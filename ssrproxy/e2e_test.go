package ssrproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

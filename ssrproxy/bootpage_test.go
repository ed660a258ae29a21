package ssrproxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
)

// While the dev server is not running, a browser navigation gets the boot
// page, everything else a plain 503, and a WebSocket a refused handshake
// (never a 101 and a close: Vite's client would take an open vite-ping as
// "the server is back" and reload).
func TestDevServerNotRunning(t *testing.T) {
	sources := []struct {
		name string
		src  ssrproxy.TargetSource
	}{
		{"no target", ssrproxy.Static(nil, nil)},
		{"connection refused", ssrproxy.Static(refusedURL(t), refusedURL(t))},
	}
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	requests := []struct {
		name     string
		method   string
		header   http.Header
		ws       string // subprotocol of a WebSocket handshake
		bootPage bool
	}{
		{"navigation", "GET", http.Header{"Accept": {html}}, "", true},
		{"boot page probe", "GET", http.Header{"Accept": {html}, "X-Vitehost-Probe": {"1"}}, "", false},
		{"module", "GET", http.Header{"Accept": {"*/*"}}, "", false},
		{"fetch without Accept", "GET", nil, "", false},
		{"form post", "POST", http.Header{"Accept": {html}}, "", false},
		{"HEAD", "HEAD", http.Header{"Accept": {html}}, "", false},
		{"vite-ping", "", nil, "vite-ping", false},
		{"vite-hmr", "", nil, "vite-hmr", false},
		{"app websocket", "", nil, "-", false},
	}
	for _, s := range sources {
		_, srv := serve(t, s.src, nil)
		for _, r := range requests {
			t.Run(s.name+"/"+r.name, func(t *testing.T) {
				var res *http.Response
				var body string
				if r.ws != "" {
					proto := r.ws
					if proto == "-" {
						proto = ""
					}
					_, wsRes, err := dialWS(t, srv.URL+"/hmr?token=x", protocols(proto))
					require.ErrorIs(t, err, testenv.ErrHandshake)
					res = wsRes
					b, _ := io.ReadAll(res.Body)
					body = string(b)
				} else {
					res, body = get(t, srv.Client(), r.method, srv.URL+"/about", r.header)
				}
				assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
				assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
				assert.Equal(t, "1", res.Header.Get("Retry-After"))
				switch {
				case r.bootPage:
					assert.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
					assert.Contains(t, body, "<title>Starting the dev server")
					assert.Contains(t, body, "'X-Vitehost-Probe': '1'")
				case r.method == "HEAD":
					assert.Empty(t, body)
				default:
					assert.Equal(t, "text/plain; charset=utf-8", res.Header.Get("Content-Type"))
					assert.Equal(t, "dev server is not running (starting or restarting)\n", body)
				}
			})
		}
	}
}

// Once the dev server runs, the boot page's probe reaches it (without the
// probe header) and gets its answer: the status the page decides on.
func TestBootPageProbeReachesTheDevServer(t *testing.T) {
	probe := make(chan string, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe <- r.Header.Get("X-Vitehost-Probe")
		w.Write([]byte("<!doctype html><title>app</title>"))
	}))
	_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), nil)
	res, body := get(t, srv.Client(), "GET", srv.URL+"/about", http.Header{"X-Vitehost-Probe": {"1"}, "Accept": {"text/html"}})
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "<title>app</title>")
	assert.Empty(t, <-probe, "the probe header stays at the proxy")
}

// The boot page's script, run in Node with a scripted fetch: it reloads
// exactly once, only after an answer other than 503, and keeps polling
// through 503s and network errors without ever reloading.
func TestBootPageScript(t *testing.T) {
	node := testenv.LookPath(t, "node")
	_, srv := serve(t, ssrproxy.Static(nil, nil), nil)
	_, page := get(t, srv.Client(), "GET", srv.URL+"/", http.Header{"Accept": {"text/html"}})
	start := strings.Index(page, "<script>")
	end := strings.Index(page, "</script>")
	require.True(t, start >= 0 && end > start, "the page has a script")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "page.js"), []byte(page[start+len("<script>"):end]), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "run.js"), []byte(bootPageHarness), 0o644))

	tests := []struct {
		name        string
		answers     []any // status codes, or "error" for a network error
		wantReloads int
		wantFetches int // one more than the answers when still polling
	}{
		{"back after a while", []any{503, 503, "error", 503, 200}, 1, 5},
		{"back with a redirect", []any{503, 0}, 1, 2},
		{"back with a 404", []any{404}, 1, 1},
		{"up but not ready (nuxi's 503 page)", []any{503, 503, 503, 503, 503, 503, 503, 503, 503, 503}, 0, 11},
		{"proxy itself unreachable", []any{"error", "error", "error"}, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answers, err := json.Marshal(tt.answers)
			require.NoError(t, err)
			out, err := exec.Command(node, filepath.Join(dir, "run.js"), filepath.Join(dir, "page.js"), string(answers)).CombinedOutput()
			require.NoError(t, err, string(out))
			var got struct {
				Reloads, Fetches   int
				FetchAfterReload   bool
				ProbeHeader, Cache string
				URL                string
			}
			require.NoError(t, json.Unmarshal(out, &got), string(out))
			assert.Equal(t, tt.wantReloads, got.Reloads)
			assert.Equal(t, tt.wantFetches, got.Fetches)
			assert.False(t, got.FetchAfterReload)
			assert.Equal(t, "1", got.ProbeHeader)
			assert.Equal(t, "no-store", got.Cache)
			assert.Equal(t, "http://app.test/about?x=1", got.URL)
		})
	}
}

// bootPageHarness runs the boot page's script with fake browser APIs: fetch
// answers from the list given, timers run at once, in order.
const bootPageHarness = `
const fs = require('fs'), vm = require('vm');
const [page, answersJSON] = process.argv.slice(2);
const answers = JSON.parse(answersJSON);
const timers = [];
const got = { Reloads: 0, Fetches: 0, FetchAfterReload: false, ProbeHeader: '', Cache: '', URL: '' };
const ctx = {
  Math,
  document: { getElementById: () => ({ textContent: '' }) },
  location: { href: 'http://app.test/about?x=1', reload() { got.Reloads++; } },
  setTimeout: (f) => { timers.push(f); },
  fetch: (url, opts) => {
    if (got.Reloads > 0) got.FetchAfterReload = true;
    got.URL = url; got.ProbeHeader = opts.headers['X-Vitehost-Probe']; got.Cache = opts.cache;
    const a = answers[got.Fetches++];
    if (a === undefined) return new Promise(() => {});
    if (a === 'error') return Promise.reject(new TypeError('Failed to fetch'));
    return Promise.resolve({ status: a });
  },
};
vm.runInNewContext(fs.readFileSync(page, 'utf8'), ctx);
(async () => {
  for (let i = 0; i < 100 && timers.length > 0; i++) {
    timers.shift()();
    await new Promise((r) => setImmediate(r));
  }
  console.log(JSON.stringify(got));
})();
`

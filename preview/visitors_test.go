package preview_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

// TestSessionWebSocketCap is the attack of issue 19 (finding 2) on one
// preview: anyone with its URL opens WebSockets to it, each a connection
// and a descriptor to its sandboxed dev server. Beyond
// Limits.MaxSessionWebSockets the handshake is refused with 429 before
// the upgrade, the sockets already open still get their HMR messages, a
// place freed is taken again, and /healthz answers on a Server whose
// connection cap the preview's sockets filled all but its headroom.
func TestSessionWebSocketCap(t *testing.T) {
	testenv.LookPath(t, "bwrap")
	const maxSockets = 3
	svc := startService(t, preview.Options{Limits: preview.Limits{MaxSessionWebSockets: maxSockets}})

	// The node behind a Server with room for the preview's sockets, its
	// event stream and two more connections, and timeouts far shorter
	// than the test: the sockets and the stream outlive them.
	const short = 300 * time.Millisecond
	api := http.NewServeMux()
	api.Handle("GET /healthz", svc.m.Healthz())
	api.Handle("/", svc.m.API())
	srv := preview.NewServer(svc.m.Router(api), &preview.ServerOptions{MaxConns: maxSockets + 3,
		ReadHeaderTimeout: short, BodyTimeout: short, WriteTimeout: short, IdleTimeout: short})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: wait}
	dialer := &websocket.Dialer{NetDialContext: dial, Subprotocols: []string{"vite-hmr"}, HandshakeTimeout: wait}

	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("sockets v1")}})
	require.Equal(t, 200, status, "%s", created.Raw)
	res, err := client.Get(created.PreviewURL + "/@vite/client")
	require.NoError(t, err)
	viteClient, _ := io.ReadAll(res.Body)
	res.Body.Close()
	token := wsToken.FindStringSubmatch(string(viteClient))
	require.NotNil(t, token, "no wsToken in /@vite/client")
	hmrURL := created.WSURL + "?token=" + url.QueryEscape(token[1])
	open := func() (*websocket.Conn, *http.Response, error) {
		return dialer.Dial(hmrURL, http.Header{"Origin": {created.PreviewURL}})
	}

	var sockets []*websocket.Conn
	for range maxSockets {
		conn, res, err := open()
		require.NoError(t, err)
		res.Body.Close()
		t.Cleanup(func() { conn.Close() })
		require.Equal(t, "connected", readHMR(t, conn, func(map[string]any) bool { return true })["type"])
		sockets = append(sockets, conn)
	}

	_, res, err = open()
	require.Error(t, err, "one socket too many")
	require.NotNil(t, res, "refused with an answer, before the upgrade")
	refusal, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.Contains(t, string(refusal), "too many WebSockets")

	// The node still answers its probes, though the preview's sockets
	// hold most of the Server's connections.
	res, err = client.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)

	// The session's event stream, through the Server.
	stream, err := (&http.Client{Transport: client.Transport}).Get("http://" + ln.Addr().String() + "/kontext/preview/" + created.SessionID + "/events")
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, 200, stream.StatusCode)
	updated := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if sc.Text() == "event: update" {
				close(updated)
				return
			}
		}
	}()

	// Longer than every timeout of the Server: what they would cut, they
	// have cut by now.
	time.Sleep(4 * short)

	// The open sockets get the next update's HMR message, and the stream
	// its event.
	status, upd := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": []any{appTSX("sockets v2")}})
	require.Equal(t, 200, status, "%s", upd.Raw)
	for _, conn := range sockets {
		readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "update" })
	}
	select {
	case <-updated:
	case <-time.After(wait):
		t.Fatal("no update event on the stream")
	}

	// A socket that closes frees its place.
	sockets[0].Close()
	require.Eventually(t, func() bool {
		conn, res, err := open()
		if err != nil {
			if res != nil {
				res.Body.Close()
			}
			return false
		}
		res.Body.Close()
		conn.Close()
		return true
	}, wait, pollEvery, "a new socket once one closed")
}

// hangingModules is a project's vite.config.js whose plugin's transform
// never resolves for a module that holds the marker HANG_FOREVER, and
// writes a byte to hung.log at the project's root each time it starts to.
const hangingModules = `import fs from 'node:fs'
import path from 'node:path'
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

const hang = {
  name: 'hang',
  transform(code) {
    if (!code.includes('HANG_FOREVER')) return
    fs.appendFileSync(path.join(process.cwd(), 'hung.log'), 'x')
    return new Promise(() => {})
  },
}

export default defineConfig({ plugins: [react(), hang] })
`

// TestHangingModulesHoldNoNode has a project whose modules never transform
// (real Vite, in the sandbox), and anonymous clients that ask for them on
// as many connections as the node's Server holds (ServerOptions.MaxConns).
// The preview's requests in flight are bounded (Limits.MaxSessionRequests):
// those beyond are answered 429 at once, and the node still answers its
// API. Without the bound, every connection waits on the dev server for as
// long as its client likes, and the API's connection is refused.
func TestHangingModulesHoldNoNode(t *testing.T) {
	const conns, perSession = 8, 4
	svc := startService(t, preview.Options{Limits: preview.Limits{MaxSessionRequests: perSession}})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{
		map[string]any{"name": "vite.config.js", "content": hangingModules},
		map[string]any{"name": "src/Hang.ts", "content": "export const x = 'HANG_FOREVER'\n"},
		appTSX("v1"),
	}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID

	// The node as a service runs it: its Server, with a cap on connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := preview.NewServer(svc.m.Router(svc.m.API()), &preview.ServerOptions{MaxConns: conns})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, ln.Addr().String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	page, err := url.Parse(created.PreviewURL)
	require.NoError(t, err)
	statuses := make(chan int, conns)
	for i := range conns {
		// One connection each, no token: anyone who has the preview's URL.
		client := &http.Client{Transport: &http.Transport{DialContext: dial}}
		req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s/src/Hang.ts?n=%d", page.Host, i), nil)
		require.NoError(t, err)
		go func() {
			resp, err := client.Do(req)
			if err != nil {
				return // the test's end
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	for range conns - perSession {
		select {
		case code := <-statuses:
			assert.Equal(t, http.StatusTooManyRequests, code, "a request beyond the bound")
		case <-time.After(wait):
			t.Fatal("the requests beyond the bound were not answered")
		}
	}
	hung := filepath.Join(svc.base, "preview-"+id, "hung.log")
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(hung)
		return len(b) >= perSession
	}, wait, 100*time.Millisecond, "the requests within the bound reached the transform that never resolves")

	api := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	var last string
	answered := assert.Eventually(t, func() bool {
		resp, err := api.Get(svc.public + "/kontext/preview/" + id)
		if err != nil {
			last = err.Error()
			return false
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK
	}, wait, 500*time.Millisecond, "the API answers while anonymous requests wait on modules that never transform")
	if !answered {
		t.Logf("the API's last answer: %s", last)
	}
	b, _ := os.ReadFile(hung)
	assert.Len(t, b, perSession, "only the requests within the bound reached the dev server")
	select {
	case code := <-statuses:
		t.Errorf("a request within the bound was answered %d: it should still wait on the transform", code)
	default:
	}
}

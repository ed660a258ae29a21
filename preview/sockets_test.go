package preview_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
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

package preview_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/ssrproxy"
)

// attackSocket opens a vite-hmr socket the way anyone with the preview URL
// can: through the router, with the token that /@vite/client gives away.
func (s *service) attackSocket(t *testing.T, created apiResponse) *websocket.Conn {
	t.Helper()
	status, client := s.get(t, created.PreviewURL+"/@vite/client")
	require.Equal(t, 200, status)
	m := wsToken.FindStringSubmatch(client)
	require.NotNil(t, m, "no wsToken in /@vite/client")
	conn, resp, err := s.dialer.Dial(created.WSURL+"?token="+url.QueryEscape(m[1]), http.Header{"Origin": {created.PreviewURL}})
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sendHuge writes one masked text frame of n bytes on conn's connection,
// header and payload raw: prefix, spaces, suffix. The mask key is zero, so
// the payload goes out as it is. It returns when the frame is out or the
// connection failed.
func sendHuge(conn *websocket.Conn, prefix, suffix string, n int) {
	c := conn.NetConn()
	c.SetWriteDeadline(time.Now().Add(wait))
	hdr := []byte{0x81, 0x80 | 127}
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	hdr = append(hdr, 0, 0, 0, 0)
	if _, err := c.Write(append(hdr, prefix...)); err != nil {
		return
	}
	chunk := []byte(strings.Repeat(" ", 1<<20))
	for left := n - len(prefix) - len(suffix); left > 0; left -= len(chunk) {
		if _, err := c.Write(chunk[:min(left, len(chunk))]); err != nil {
			return
		}
	}
	c.Write([]byte(suffix))
}

// closeCode reads conn until the close frame and returns its code.
func closeCode(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(wait))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		require.NoError(t, err, "the socket ended without a close frame")
	}
}

// TestHostileHugeFrames is finding 3 of issue 19: ten vite-hmr sockets
// each send one 100 MB frame, and one sends a message just over the bound
// that Vite would act on. Each socket is closed with 1009 (message too
// big); the dev server keeps running (the same process, status active, an
// update still reaches a page's socket), and nothing of the frames reached
// Vite: the message over the bound, a runtime error report, never shows in
// the event stream, while a small one sent after it does.
func TestHostileHugeFrames(t *testing.T) {
	svc := startService(t, preview.Options{})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("Hello frames")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	page := svc.hmrSocket(t, created)
	stream := svc.openEvents(t, created.SessionID, "")
	before := testenv.NodeProcesses()
	require.NotEmpty(t, before)

	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		conn := svc.attackSocket(t, created)
		wg.Add(2)
		go func() {
			defer wg.Done()
			sendHuge(conn, "", "", 100<<20)
		}()
		go func() {
			defer wg.Done()
			conn.SetReadDeadline(time.Now().Add(wait))
			for {
				_, _, err := conn.ReadMessage()
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					codes[i] = ce.Code
				}
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, code := range codes {
		assert.Equal(t, websocket.CloseMessageTooBig, code, "socket %d", i)
	}

	// A report Vite would pass on, one byte over the bound.
	report := func(message string) map[string]any {
		return map[string]any{"type": "custom", "event": "vitehost:error", "data": map[string]any{"kind": "error", "message": message, "page": created.PreviewURL + "/"}}
	}
	b, err := json.Marshal(report("REACHED-VITE"))
	require.NoError(t, err)
	over := svc.attackSocket(t, created)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// JSON whitespace pads the report's last value to the bound and
		// one byte beyond.
		sendHuge(over, strings.TrimSuffix(string(b), "}"), "}", ssrproxy.DefaultMaxViteMessage+1)
	}()
	assert.Equal(t, websocket.CloseMessageTooBig, closeCode(t, over))
	<-done

	require.NoError(t, page.WriteJSON(report("AFTER-THE-FRAMES")))
	e := stream.next(t, func(e sseEvent) bool { return e.Type == "runtime-error" })
	assert.Equal(t, "AFTER-THE-FRAMES", e.Data["message"], "the first report to reach Vite is the one sent after the frames")
	assert.Equal(t, "page", e.Data["source"])

	assert.Equal(t, "active", svc.status(created.SessionID).Status)
	assert.ElementsMatch(t, before, testenv.NodeProcesses(), "the dev server is the same process")
	status, upd := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": []any{appTSX("After the frames")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.Equal(t, preview.HMRUpdate, upd.HMR.Type)
	msg := readHMR(t, page, func(m map[string]any) bool { return m["type"] == "update" })
	assert.Equal(t, "update", msg["type"], "an update still reaches the page's socket")
}

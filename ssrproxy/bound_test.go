package ssrproxy_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
)

// rawFrame is a masked client frame with the given FIN bit, opcode and
// payload, the way a browser sends one.
func rawFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := []byte{0x11, 0x22, 0x33, 0x44}
	b = append(b, key...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// recorder is a stand-in dev server that accepts a WebSocket and sends
// everything it receives after the handshake, raw, on got once the client
// side ends.
func recorder(t *testing.T) (*httptest.Server, <-chan []byte) {
	t.Helper()
	got := make(chan []byte, 1)
	return upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := testenv.AcceptWebSocket(w, r, "vite-hmr", nil)
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.Conn.SetDeadline(time.Now().Add(deadline))
		b, _ := io.ReadAll(c)
		got <- b
	})), got
}

// TestClientMessageBound sends a Vite socket's dev server messages at and
// over the bound, as one frame and as fragments: what fits goes through
// unchanged; the first frame that makes its message too big ends the
// tunnel with a 1009 close to the client, and the dev server gets nothing
// of that frame.
func TestClientMessageBound(t *testing.T) {
	const max = 70000 // beyond a 16-bit length
	small := rawFrame(true, testenv.OpText, []byte(`{"type":"ping"}`))
	tests := []struct {
		name string
		sent [][]byte // frames, in order
		over int      // the index of the first frame over the bound, or -1
	}{
		{"one frame at the bound", [][]byte{small, rawFrame(true, testenv.OpBinary, make([]byte, max)), small}, -1},
		{"one frame a byte over", [][]byte{small, rawFrame(true, testenv.OpBinary, make([]byte, max+1)), small}, 1},
		{"fragments at the bound", [][]byte{
			rawFrame(false, testenv.OpText, make([]byte, max/2)),
			rawFrame(true, testenv.OpPing, []byte("in between")),
			rawFrame(true, 0x0, make([]byte, max-max/2)),
			small,
		}, -1},
		{"fragments a byte over", [][]byte{
			small,
			rawFrame(false, testenv.OpText, make([]byte, max/2)),
			rawFrame(false, 0x0, make([]byte, 10)),
			rawFrame(true, 0x0, make([]byte, max-max/2-9)),
			small,
		}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up, got := recorder(t)
			_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), mustURL(t, up.URL)), &ssrproxy.Options{MaxViteMessage: max})
			c, _, err := dialWS(t, srv.URL+"/hmr", protocols("vite-hmr"))
			require.NoError(t, err)
			var all, want []byte
			for i, f := range tt.sent {
				all = append(all, f...)
				if tt.over < 0 || i < tt.over {
					want = append(want, f...)
				}
			}
			// Small pieces for the start: a header split over reads must not
			// leak either.
			for i := 0; i < len(all); {
				k := min(len(all)-i, 1+i%3)
				if i > 64 {
					k = len(all) - i
				}
				if _, err := c.Conn.Write(all[i : i+k]); err != nil {
					break // the proxy may end the connection once it has said why
				}
				i += k
			}
			if tt.over < 0 {
				require.NoError(t, c.Conn.(*net.TCPConn).CloseWrite())
				assert.Equal(t, want, <-got, "the dev server got every frame unchanged")
				return
			}
			op, p, err := c.ReadFrame()
			require.NoError(t, err)
			code, reason := testenv.ParseClose(p)
			assert.Equal(t, testenv.OpClose, op)
			assert.Equal(t, uint16(1009), code, "reason %q", reason)
			b := <-got
			assert.Equal(t, len(want), len(b), "the dev server got what came before the frame, and nothing of it")
			assert.True(t, bytes.Equal(want, b), "what came before went through unchanged")
		})
	}
}

// TestClientMessageBoundOptions checks which bound applies to which
// socket: Vite's sockets get DefaultMaxViteMessage unless told otherwise,
// other sockets none unless MaxAppMessage is set.
func TestClientMessageBoundOptions(t *testing.T) {
	over := ssrproxy.DefaultMaxViteMessage + 1
	tests := []struct {
		name     string
		opts     *ssrproxy.Options
		protocol string
		size     int
		closed   bool
	}{
		{"vite-hmr, default", nil, "vite-hmr", over, true},
		{"vite-ping, default", nil, "vite-ping", over, true},
		{"vite-hmr at the default", nil, "vite-hmr", ssrproxy.DefaultMaxViteMessage, false},
		{"vite-hmr, no bound", &ssrproxy.Options{MaxViteMessage: -1}, "vite-hmr", over, false},
		{"app socket, default", nil, "chat", over, false},
		{"app socket, bound", &ssrproxy.Options{MaxAppMessage: 1000}, "chat", 1001, true},
		{"vite-hmr ignores the app bound", &ssrproxy.Options{MaxAppMessage: 1000}, "vite-hmr", 1001, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := upstream(t, wsEcho("dev"))
			_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), mustURL(t, up.URL)), tt.opts)
			c, _, err := dialWS(t, srv.URL+"/ws", protocols(tt.protocol))
			require.NoError(t, err)
			hello, err := c.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, "dev /ws", string(hello))
			go c.Conn.Write(rawFrame(true, testenv.OpBinary, make([]byte, tt.size)))
			op, p, err := c.ReadFrame()
			require.NoError(t, err)
			if tt.closed {
				code, _ := testenv.ParseClose(p)
				assert.Equal(t, testenv.OpClose, op)
				assert.Equal(t, uint16(1009), code)
				return
			}
			assert.Equal(t, testenv.OpBinary, op)
			assert.Len(t, p, tt.size, "the echo of the whole message")
		})
	}
}

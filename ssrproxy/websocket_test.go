package ssrproxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
)

// The tunnel passes everything through as the two ends wrote it: the
// request URI with Vite's token, Origin and cookies; the subprotocol and
// extensions the dev server chose; text, binary, ping and pong frames, small
// and large; close codes and reasons, whichever side closes.
func TestWebSocketIsTransparent(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 70000/16) // 16-bit length
	huge := bytes.Repeat([]byte{0xfe, 0x01}, 70000)           // 64-bit length

	script := []step{
		{false, frame{testenv.OpText, []byte(`{"type":"connected"}`)}},
		{true, frame{testenv.OpText, []byte("hello")}},
		{false, frame{testenv.OpBinary, []byte{0, 1, 2, 255}}},
		{true, frame{testenv.OpBinary, []byte{9, 8, 7}}},
		{false, frame{testenv.OpPing, []byte("p1")}},
		{true, frame{testenv.OpPong, []byte("p1")}},
		{true, frame{testenv.OpPing, []byte("p2")}},
		{false, frame{testenv.OpPong, []byte("p2")}},
		{false, frame{testenv.OpText, big}},
		{true, frame{testenv.OpBinary, huge}},
	}
	closers := []struct {
		name       string
		fromClient bool
		code       uint16
		reason     string
	}{
		{"dev server closes", false, 4001, "bye from vite"},
		{"client closes", true, 4002, "tab closed"},
		{"going away", false, 1001, ""},
	}
	for _, cl := range closers {
		t.Run(cl.name, func(t *testing.T) {
			type handshake struct{ uri, origin, cookie, protocol string }
			seen := make(chan handshake, 1)
			upErr := make(chan error, 1)
			up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen <- handshake{r.URL.RequestURI(), r.Header.Get("Origin"), r.Header.Get("Cookie"), r.Header.Get("Sec-WebSocket-Protocol")}
				c, err := testenv.AcceptWebSocket(w, r, "vite-hmr", http.Header{"Sec-Websocket-Extensions": {"x-test; level=3"}})
				if err != nil {
					upErr <- err
					return
				}
				defer c.Close()
				c.Conn.SetDeadline(time.Now().Add(deadline))
				upErr <- play(c, false, script, cl.fromClient, cl.code, cl.reason)
			}))
			// The HMR target has no path; the path the client asked for
			// must reach the dev server as it is.
			_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), mustURL(t, up.URL)), nil)
			h := protocols("vite-hmr")
			h.Set("Origin", "http://app.test")
			h.Set("Cookie", "sid=abc")
			c, res, err := dialWS(t, srv.URL+"/hmr?token=a%2Bb&x=1", h)
			require.NoError(t, err)
			assert.Equal(t, "vite-hmr", res.Header.Get("Sec-WebSocket-Protocol"))
			assert.Equal(t, "x-test; level=3", res.Header.Get("Sec-WebSocket-Extensions"))
			assert.Equal(t, handshake{"/hmr?token=a%2Bb&x=1", "http://app.test", "sid=abc", "vite-hmr"}, <-seen)

			require.NoError(t, play(c, true, script, cl.fromClient, cl.code, cl.reason))
			require.NoError(t, <-upErr)
			_, _, err = c.ReadFrame()
			assert.ErrorIs(t, err, io.EOF, "the tunnel ends when the dev server's connection does")
		})
	}
}

type frame struct {
	op      byte
	payload []byte
}

// step is one frame of a scripted exchange and who sends it.
type step struct {
	fromClient bool
	frame      frame
}

// play runs a scripted exchange from one end: it sends its frames and
// checks that the other end's arrive unchanged, then the closing handshake.
func play(c *testenv.WSConn, client bool, script []step, clientCloses bool, code uint16, reason string) error {
	for _, s := range script {
		if s.fromClient == client {
			if err := c.WriteFrame(s.frame.op, s.frame.payload); err != nil {
				return err
			}
			continue
		}
		op, p, err := c.ReadFrame()
		if err != nil {
			return err
		}
		if op != s.frame.op || !bytes.Equal(p, s.frame.payload) {
			return fmt.Errorf("got frame %#x of %d bytes, want %#x of %d bytes", op, len(p), s.frame.op, len(s.frame.payload))
		}
	}
	if clientCloses == client {
		if err := c.WriteClose(code, reason); err != nil {
			return err
		}
	}
	op, p, err := c.ReadFrame()
	if err != nil {
		return err
	}
	if gotCode, gotReason := testenv.ParseClose(p); op != testenv.OpClose || gotCode != code || gotReason != reason {
		return fmt.Errorf("got frame %#x %d %q, want close %d %q", op, gotCode, gotReason, code, reason)
	}
	if clientCloses != client {
		return c.WriteClose(code, reason) // echo, as RFC 6455 asks
	}
	return nil
}

// A refused handshake reaches the client with the dev server's status and
// body: Vite answers 400 without the right token and 403 for a host it
// does not allow.
func TestHandshakeRefusalIsRelayed(t *testing.T) {
	tests := []struct {
		status int
		body   string
	}{
		{http.StatusBadRequest, "Bad Request"},
		{http.StatusForbidden, "Blocked request. This host is not allowed."},
		{http.StatusNotFound, "not here"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Reason", "test")
				http.Error(w, tt.body, tt.status)
			}))
			_, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), mustURL(t, up.URL)), nil)
			_, res, err := dialWS(t, srv.URL+"/hmr", protocols("vite-hmr"))
			require.ErrorIs(t, err, testenv.ErrHandshake)
			assert.Equal(t, tt.status, res.StatusCode)
			assert.Equal(t, "test", res.Header.Get("X-Reason"))
			b, _ := io.ReadAll(res.Body)
			assert.Equal(t, tt.body+"\n", string(b))
		})
	}
}

// holdWS accepts a WebSocket and keeps it open until the client leaves.
var holdWS = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, err := testenv.AcceptWebSocket(w, r, "", nil)
	if err != nil {
		return
	}
	defer c.Close()
	c.Conn.SetDeadline(time.Now().Add(deadline))
	c.WriteText("open")
	io.Copy(io.Discard, c)
})

// ending is how a connection ended for a client that behaves like a
// browser.
type ending struct {
	code   uint16 // of the close frame it got; 0 for none
	frames int    // frames after that one: a close frame must be the last
	err    error  // how the connection ended after it: io.EOF is a clean end
}

// browser reads c in the background as a browser does: it answers a close
// frame with the same code, then reads on until the connection ends, which
// it then closes.
func browser(c *testenv.WSConn) <-chan ending {
	out := make(chan ending, 1)
	go func() {
		var e ending
		defer func() { c.Close(); out <- e }()
		for {
			op, p, err := c.ReadFrame()
			if err != nil {
				e.err = err
				return
			}
			switch {
			case e.code != 0:
				e.frames++
			case op == testenv.OpClose:
				e.code, _ = testenv.ParseClose(p)
				c.WriteClose(e.code, "")
			}
		}
	}()
	return out
}

func waitEnding(t *testing.T, ch <-chan ending) ending {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(deadline):
		t.Fatal("the connection did not end")
		return ending{}
	}
}

func TestCloseEndsTunnelsWithACloseFrame(t *testing.T) {
	httpUp := upstream(t, holdWS)
	hmrUp := upstream(t, holdWS)
	sse := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: open\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	p, srv := serve(t, ssrproxy.Static(mustURL(t, httpUp.URL), mustURL(t, hmrUp.URL)), nil)

	var endings []<-chan ending
	for _, proto := range []string{"vite-hmr", "", "vite-ping"} {
		c, _, err := dialWS(t, srv.URL+"/hmr", protocols(proto))
		require.NoError(t, err)
		msg, err := c.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, "open", string(msg))
		endings = append(endings, browser(c))
	}
	// A streamed response in flight ends too.
	sseProxy, sseSrv := serve(t, ssrproxy.Static(mustURL(t, sse.URL), nil), nil)
	res, err := sseSrv.Client().Get(sseSrv.URL + "/events")
	require.NoError(t, err)
	defer res.Body.Close()
	line := make([]byte, len("data: open\n\n"))
	_, err = io.ReadFull(res.Body, line)
	require.NoError(t, err)

	p.Close()
	sseProxy.Close()
	// Close has waited: no handler, copy or tunnel of the proxy is left,
	// only, perhaps, a goroutine that has signalled its end and is on its
	// way out.
	for _, g := range proxyGoroutines() {
		if strings.Contains(g, "runtime/panic.go") {
			// ReverseProxy ends a stream that Close cut by panicking with
			// http.ErrAbortHandler; the deferred calls on the way out keep
			// the frames on the stack for a moment (seen under -race).
			continue
		}
		assert.NotRegexp(t, `ssrproxy\.\(\*(Proxy|tunnel)\)\.[A-Za-z]+\(`, g)
	}
	assert.Eventually(t, func() bool { return len(proxyGoroutines()) == 0 }, deadline, time.Millisecond)

	for i, ch := range endings {
		e := waitEnding(t, ch)
		assert.Equal(t, uint16(1001), e.code, "tunnel %d: close frame first", i)
		assert.Zero(t, e.frames, "tunnel %d", i)
		assert.ErrorIs(t, e.err, io.EOF, "tunnel %d", i)
	}
	_, err = io.ReadAll(res.Body)
	assert.Error(t, err, "the event stream was cut")

	p.Close() // Close is idempotent
	r, body := get(t, srv.Client(), "GET", srv.URL+"/", nil)
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
	assert.Equal(t, "proxy is shutting down\n", body)
	_, r, err = dialWS(t, srv.URL+"/hmr", protocols("vite-ping"))
	require.ErrorIs(t, err, testenv.ErrHandshake)
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
}

// closeWhileReading calls p.Close while it reads c to its end, as a client
// that does not speak WebSocket would, and returns what it read.
func closeWhileReading(t *testing.T, p *ssrproxy.Proxy, c *testenv.WSConn) []byte {
	t.Helper()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		p.Close()
	}()
	rest, err := io.ReadAll(c)
	require.NoError(t, err)
	c.Close()
	<-closed
	return rest
}

// A close frame may only go between frames: when Close cuts a frame in the
// middle, the client gets the bytes up to the cut and then the end of the
// connection, never a close frame inside a payload.
func TestCloseInTheMiddleOfAFrame(t *testing.T) {
	partial := []byte{0x81, 126, 0x03, 0xe8} // a text frame of 1000 bytes
	partial = append(partial, "only ten b"...)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := testenv.AcceptWebSocket(w, r, "", nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.Conn.SetDeadline(time.Now().Add(deadline))
		c.Conn.Write(partial)
		io.Copy(io.Discard, c)
	}))
	p, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), nil)
	c, _, err := dialWS(t, srv.URL+"/", nil)
	require.NoError(t, err)
	got := make([]byte, len(partial))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	assert.Empty(t, closeWhileReading(t, p, c), "nothing after the cut frame")
}

// A close frame the dev server already sent is not followed by another.
func TestCloseAfterTheDevServerClosed(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := testenv.AcceptWebSocket(w, r, "", nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.Conn.SetDeadline(time.Now().Add(deadline))
		c.WriteClose(1000, "done")
		io.Copy(io.Discard, c) // waits for the client's answer, which never comes
	}))
	p, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), nil)
	c, _, err := dialWS(t, srv.URL+"/", nil)
	require.NoError(t, err)
	op, payload, err := c.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, testenv.OpClose, op)
	code, _ := testenv.ParseClose(payload)
	require.Equal(t, uint16(1000), code)
	assert.Empty(t, closeWhileReading(t, p, c), "one close frame only")
}

// The tunnel finds the frame boundary after frames of every length
// encoding, or Close could not send its close frame.
func TestCloseAfterFramesOfEveryLength(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 200000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := testenv.AcceptWebSocket(w, r, "", nil)
				if err != nil {
					return
				}
				defer c.Close()
				c.Conn.SetDeadline(time.Now().Add(deadline))
				c.WriteFrame(testenv.OpBinary, make([]byte, n))
				io.Copy(io.Discard, c)
			}))
			p, srv := serve(t, ssrproxy.Static(mustURL(t, up.URL), nil), nil)
			c, _, err := dialWS(t, srv.URL+"/", nil)
			require.NoError(t, err)
			op, payload, err := c.ReadFrame()
			require.NoError(t, err)
			require.Equal(t, testenv.OpBinary, op)
			require.Len(t, payload, n)
			end := browser(c)
			p.Close()
			e := waitEnding(t, end)
			assert.Equal(t, uint16(1001), e.code)
			assert.ErrorIs(t, e.err, io.EOF)
		})
	}
}

// proxyGoroutines lists the goroutines that run code of package ssrproxy
// (not of its tests). A handler whose streamed response was cut ends with
// ReverseProxy's panic(http.ErrAbortHandler); while the server's recover
// runs, the stack still shows the handler's frames, but the handler and its
// deferred calls are done: those goroutines are not listed.
func proxyGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "vitehost/ssrproxy.") && !strings.Contains(g, "net/http.(*conn).serve.func1(") {
			out = append(out, g)
		}
	}
	return out
}

package vite_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

func TestMain(m *testing.M) {
	if runParent() {
		return
	}
	os.Exit(testenv.Main(m))
}

// long is the deadline of everything that waits on a real dev server; the
// tests assert outcomes, never durations.
const long = 90 * time.Second

// testLogger logs to the test's output: shown for failures and under -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start starts the dev server in dir and stops it when the test ends.
func start(t testing.TB, dir string, opts *vite.Options) *vite.Server {
	t.Helper()
	o := vite.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	s, err := vite.Start(context.Background(), dir, &o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), long)
		defer cancel()
		require.NoError(t, s.Stop(ctx))
	})
	return s
}

// get fetches u and returns the status and body.
func get(t testing.TB, u string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "*/*") // as browsers and curl: Vite 4's SPA fallback serves index.html to no other
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// hmrConn is a vite-hmr WebSocket whose messages a goroutine reads into a
// channel, so that waiting for one can time out without breaking the
// connection.
type hmrConn struct {
	conn *websocket.Conn
	msgs chan map[string]any
}

// dialHMR opens a vite-hmr WebSocket on the HMR listener at path, with the
// token, and returns it after Vite's "connected" message.
func dialHMR(t testing.TB, hmr *url.URL, path, token string) *hmrConn {
	t.Helper()
	u := url.URL{Scheme: "ws", Host: hmr.Host, Path: path, RawQuery: url.Values{"token": {token}}.Encode()}
	return openHMR(t, websocket.Dialer{}, u)
}

// openHMR dials the vite-hmr WebSocket u with d and returns it after Vite's
// "connected" message.
func openHMR(t testing.TB, d websocket.Dialer, u url.URL) *hmrConn {
	t.Helper()
	d.Subprotocols, d.HandshakeTimeout = []string{"vite-hmr"}, long
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	// A browser sends an Origin, which makes Vite check the token.
	conn, res, err := d.DialContext(ctx, u.String(), http.Header{"Origin": {"http://localhost:8000"}})
	if res != nil && res.Body != nil {
		res.Body.Close()
	}
	require.NoError(t, err, "dial %s", u.String())
	c := &hmrConn{conn: conn, msgs: make(chan map[string]any, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.msgs)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				c.msgs <- m
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	require.Equal(t, "vite-hmr", conn.Subprotocol())
	m, ok := c.next(long)
	require.True(t, ok, "no message on the HMR socket")
	require.Equal(t, "connected", m["type"])
	return c
}

// next returns the next message, false when none comes within d.
func (c *hmrConn) next(d time.Duration) (map[string]any, bool) {
	select {
	case m, ok := <-c.msgs:
		return m, ok
	case <-time.After(d):
		return nil, false
	}
}

// editUntil writes edit(i) to path, i = 0, 1, ..., until a message of one of
// the types arrives, and returns that message. A write that lands before the
// file watcher is ready gets no answer; a later one does.
func (c *hmrConn) editUntil(t testing.TB, path string, edit func(i int) string, types ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(long)
	for i := 0; time.Now().Before(deadline); i++ {
		require.NoError(t, os.WriteFile(path, []byte(edit(i)), 0o644))
		for {
			m, ok := c.next(5 * time.Second)
			if !ok {
				break // no answer to this write: write again
			}
			for _, typ := range types {
				if m["type"] == typ {
					return m
				}
			}
		}
	}
	t.Fatalf("no %v message after editing %s", types, path)
	return nil
}

// getHost fetches u with the Host header host.
func getHost(t testing.TB, u, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Host = host
	req.Header.Set("Accept", "*/*")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: long}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// listeningPorts returns the TCP listeners ("ip:port") of the processes in
// the process group pgid, from /proc.
func listeningPorts(t testing.TB, pgid int) []string {
	t.Helper()
	pids, err := vite.GroupPIDs(pgid)
	require.NoError(t, err)
	inodes := map[string]bool{}
	for _, pid := range pids {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
			}
		}
	}
	var out []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			out = append(out, procAddr(f[1]))
		}
	}
	return out
}

// procAddr decodes a /proc/net/tcp address ("0100007F:1F90").
func procAddr(s string) string {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	port, _ := strconv.ParseUint(hexPort, 16, 16)
	raw, _ := hex.DecodeString(hexIP)
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is in host (little-endian) order
		for j := 0; j < 4 && i+j < len(raw); j++ {
			ip[i+j] = raw[i+3-j]
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))
}

// readHot reads the hot file and its HMR companion, "" for a missing one.
func readHot(path string) (string, string) {
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(path + ".hmr")
	return strings.TrimSpace(string(a)), strings.TrimSpace(string(b))
}

package ssrproxy_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
)

// moduleSize is about what Vite serves for a transformed source module.
const moduleSize = 24 << 10

// BenchmarkModuleFetch fetches a module of moduleSize bytes from an httptest
// upstream, directly and through a Proxy, from parallel clients that keep
// their connections, as a browser loading a page does; "proxied-unix" is the
// same upstream handler on a Unix socket, as a sandboxed dev server listens.
func BenchmarkModuleFetch(b *testing.B) {
	module := bytes.Repeat([]byte("export const x = 1;\n"), moduleSize/20)
	serveModule := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Set("Content-Length", strconv.Itoa(len(module)))
		w.Write(module)
	})
	up := httptest.NewServer(serveModule)
	defer up.Close()
	p := ssrproxy.New(ssrproxy.Static(mustURL(b, up.URL), nil), nil)
	defer p.Close()
	proxy := httptest.NewServer(p)
	defer proxy.Close()

	dir, err := os.MkdirTemp("", "ssrproxy-sock-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "http.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	unixUp := &http.Server{Handler: serveModule}
	go unixUp.Serve(ln)
	defer unixUp.Close()
	unixP := ssrproxy.New(ssrproxy.Static(hotfile.UnixURL(sock), nil), nil)
	defer unixP.Close()
	unixProxy := httptest.NewServer(unixP)
	defer unixProxy.Close()

	for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"proxied", proxy.URL}, {"proxied-unix", unixProxy.URL}} {
		b.Run(target.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			b.SetBytes(int64(len(module)))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Get(target.url + "/src/App.jsx")
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK || n != int64(len(module)) {
						b.Errorf("status %d, %d bytes", res.StatusCode, n)
						return
					}
				}
			})
		})
	}
}

// BenchmarkWebSocketRoundTrip sends a small HMR-sized message to an echoing
// upstream and waits for it to come back, directly and through the tunnel:
// the difference per op is twice what the tunnel adds to one message.
func BenchmarkWebSocketRoundTrip(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := testenv.AcceptWebSocket(w, r, "vite-hmr", nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			op, p, err := c.ReadFrame()
			if err != nil || c.WriteFrame(op, p) != nil {
				return
			}
		}
	}))
	defer up.Close()
	p := ssrproxy.New(ssrproxy.Static(mustURL(b, up.URL), mustURL(b, up.URL)), nil)
	defer p.Close()
	proxy := httptest.NewServer(p)
	defer proxy.Close()
	msg := []byte(`{"type":"update","updates":[{"type":"js-update","path":"/src/App.jsx","acceptedPath":"/src/App.jsx","timestamp":1700000000000}]}`)

	for _, target := range []struct{ name, url string }{{"direct", up.URL}, {"proxied", proxy.URL}} {
		b.Run(target.name, func(b *testing.B) {
			c, _, err := testenv.DialWebSocket(context.Background(), target.url+"/hmr", protocols("vite-hmr"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.ResetTimer()
			for range b.N {
				if err := c.WriteText(string(msg)); err != nil {
					b.Fatal(err)
				}
				if _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

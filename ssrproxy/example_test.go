package ssrproxy_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/ssrproxy"
)

// A Go app serves its API itself and sends everything else, HMR included,
// to the dev server named by the hot file.
func Example() {
	// A stand-in for the dev server, and the hot file it writes once it
	// listens.
	devServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "dev server: %s", r.URL.Path)
	}))
	defer devServer.Close()
	dir, _ := os.MkdirTemp("", "ssrproxy-example")
	defer os.RemoveAll(dir)
	hot := filepath.Join(dir, "public", "hot")
	devURL, _ := url.Parse(devServer.URL)
	if err := hotfile.Write(hot, devURL); err != nil {
		log.Fatal(err)
	}

	// The app: its own routes first, the proxy as the catch-all.
	w, err := hotfile.Watch(hot, nil) // follows hot and hot.hmr as the dev server restarts
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	proxy := ssrproxy.New(w, nil)
	defer proxy.Close() // ends the HMR sockets; call it before the server's Close

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "go: %s", r.URL.Path)
	})
	mux.Handle("/", proxy)
	app := httptest.NewServer(mux) // http.ListenAndServe(":8000", mux) in a real app
	defer app.Close()

	for _, path := range []string{"/api/users", "/src/main.tsx"} {
		res, err := http.Get(app.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(string(body))
	}
	// Output:
	// go: /api/users
	// dev server: /src/main.tsx
}

// A preview platform knows where each session's dev server listens: it
// gives each session a proxy with fixed targets (HMR on a port of its own),
// and all the proxies one transport.
func ExampleStatic() {
	transport := ssrproxy.NewTransport() // once per process
	for _, session := range []string{"a", "b"} {
		devServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "session %s: %s", session, r.URL.Path)
		}))
		defer devServer.Close()
		httpURL, _ := url.Parse(devServer.URL)
		hmrURL, _ := url.Parse("http://127.0.0.1:24678") // where vite-hmr and vite-ping go
		proxy := ssrproxy.New(ssrproxy.Static(httpURL, hmrURL), &ssrproxy.Options{Transport: transport})
		defer proxy.Close()

		w := httptest.NewRecorder()
		proxy.ServeHTTP(w, httptest.NewRequest("GET", "/src/App.tsx", nil))
		fmt.Println(w.Code, w.Body)
	}
	// Output:
	// 200 session a: /src/App.tsx
	// 200 session b: /src/App.tsx
}

// A dev server in a sandbox without a network listens on a Unix socket; a
// unix URL names it, and the proxy, and NewRequest for code beside it, speak
// HTTP over the socket.
func Example_unixSocket() {
	dir, _ := os.MkdirTemp("", "ssrproxy-example")
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "http.sock")
	ln, err := net.Listen("unix", sock) // the dev server's side
	if err != nil {
		log.Fatal(err)
	}
	devServer := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "dev server: %s %s", r.Host, r.URL.RequestURI())
	})}
	go devServer.Serve(ln)
	defer devServer.Close()

	target := hotfile.UnixURL(sock) // unix:///.../http.sock, what a hot file would hold
	transport := ssrproxy.NewTransport()
	defer transport.CloseIdleConnections()
	proxy := ssrproxy.New(ssrproxy.Static(target, nil), &ssrproxy.Options{Transport: transport})
	defer proxy.Close()
	w := httptest.NewRecorder()
	proxy.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example/src/App.tsx?t=1", nil))
	fmt.Println(w.Code, w.Body)

	// A warm-up request from Go, the way the proxy would send it.
	req, err := ssrproxy.NewRequest(context.Background(), "GET", target, "/src/main.tsx", nil)
	if err != nil {
		log.Fatal(err)
	}
	res, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.StatusCode, string(body))
	// Output:
	// 200 dev server: localhost /src/App.tsx?t=1
	// 200 dev server: localhost /src/main.tsx
}

// While the dev server starts, a browser gets a page that reloads itself
// once the dev server answers; other requests get a plain 503.
func ExampleProxy_ServeHTTP_devServerNotRunning() {
	proxy := ssrproxy.New(ssrproxy.Static(nil, nil), nil)
	defer proxy.Close()

	page := httptest.NewRequest("GET", "/", nil)
	page.Header.Set("Accept", "text/html")
	module := httptest.NewRequest("GET", "/src/main.tsx", nil)
	for _, r := range []*http.Request{page, module} {
		w := httptest.NewRecorder()
		proxy.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// 503 text/html; charset=utf-8
	// 503 text/plain; charset=utf-8
}

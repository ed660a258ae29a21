// Command hostapp is a Go web app with a Vite, Nuxt or Astro front end, in the
// litestar-vite style: it serves its own /api routes and sends everything
// else through ssrproxy to the front end's dev server, which it launches
// itself with the vite package. The browser only ever talks to the Go port,
// and HMR works through it.
//
//	go run ./examples/hostapp                      # the Nuxt 4 app in ./frontend
//	go run ./examples/hostapp -dir ~/my-vite-app   # any Vite, Nuxt or Astro project
//	go run ./examples/hostapp -prod -dir ~/my-vite-app  # its build, in production
//
// Then open http://localhost:8000 and edit the front end's files.
// /server-rendered is a page that Go renders with html/template, whose
// script and stylesheet tags come from the dev server in development and
// from the build's manifest in production (vite.Assets).
//
// With -prod the same app serves the built front end of -dir: a Vite build
// (dist, with dist/.vite/manifest.json) by Go itself, with no Node process
// at all; the server build of Nuxt, SvelteKit (adapter-node), Astro (node
// adapter, standalone) or React Router through ssrproxy, its server started
// and supervised by vite.StartBuilt.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "hostapp:", err)
		os.Exit(1)
	}
}

// defaultDir is the Nuxt app shipped beside this file: found from the
// working directory (go run ./examples/hostapp from the module root) or from
// the path this file was compiled from.
func defaultDir() string {
	if st, err := os.Stat(filepath.Join("examples", "hostapp", "frontend")); err == nil && st.IsDir() {
		return filepath.Join("examples", "hostapp", "frontend")
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "frontend")
}

type config struct {
	addr, dir, hot, entry string
	prod                  bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("hostapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8000", "address the Go app listens on")
	fs.StringVar(&c.dir, "dir", defaultDir(), "the front end: a Vite, Nuxt or Astro project (detected from its package.json)")
	fs.StringVar(&c.hot, "hot", "", "the hot file the dev server's URLs are written to (default <dir>/.vitehost/hot)")
	fs.StringVar(&c.entry, "entry", "src/server-rendered.jsx", "the front end's entry that the Go-rendered page /server-rendered loads")
	fs.BoolVar(&c.prod, "prod", false, "serve the front end's build (vite build --manifest, nuxi build, ...) instead of its dev server")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return c, err
	}
	c.dir = dir
	if c.hot == "" {
		c.hot = filepath.Join(c.dir, ".vitehost", "hot")
	}
	return c, nil
}

// run serves until ctx ends and stops the dev server before it returns.
// ready, when not nil, receives the Go app's address once it serves.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if cfg.prod {
		return runProd(ctx, cfg, log, ready)
	}
	if _, err := os.Stat(filepath.Join(cfg.dir, "package.json")); err != nil {
		return fmt.Errorf("-dir %s: no package.json: is it a Vite, Nuxt or Astro project?", cfg.dir)
	}
	if err := installIfMissing(ctx, cfg.dir, stderr, log); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	// The proxy follows the hot files: when the dev server restarts on new
	// ports, the next request goes to them.
	watcher, err := hotfile.Watch(cfg.hot, &hotfile.WatchOptions{Logger: log})
	if err != nil {
		return err
	}
	defer watcher.Close()
	proxy := ssrproxy.New(watcher, &ssrproxy.Options{Logger: log})
	defer proxy.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hello", apiHello)
	// While the dev server runs (the hot file holds its URL), the page's
	// tags load the entry from it, through the proxy below; while it does
	// not, from the last build's manifest, if there is one.
	manifest, err := readManifest(cfg.dir)
	if err != nil {
		log.Warn("hostapp: the build's manifest is unreadable; /server-rendered needs the dev server", "err", err)
	}
	assets := vite.NewAssets(&vite.AssetsOptions{Dev: watcher, Manifest: manifest, React: usesReact(cfg.dir)})
	mux.Handle("GET /server-rendered", serverRendered(assets, cfg.entry, log))
	mux.Handle("/", proxy)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("hostapp: listening; the page shows once the dev server is up", "open", fmt.Sprintf("http://localhost:%d", port))

	// The browser reaches the dev server through this port, under whatever
	// host name it used: a public URL without a host name keeps the page's.
	public := &url.URL{Scheme: "http", Host: fmt.Sprintf(":%d", port)}
	dev, err := vite.Start(ctx, cfg.dir, &vite.Options{PublicURL: public, HotFile: cfg.hot, Logger: log})
	if err != nil {
		srv.Close()
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := dev.Stop(stopCtx); err != nil {
			log.Error("hostapp: stop the dev server", "err", err)
		}
		log.Info("hostapp: stopped")
	}()
	waitForTargets(ctx, watcher, dev)
	log.Info("hostapp: dev server ready", "framework", dev.Framework(), "vite", dev.Version(), "hot", cfg.hot)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	case <-dev.Done():
		return fmt.Errorf("dev server stopped: %w", dev.Err())
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	proxy.Close() // ends HMR tunnels, which Shutdown does not wait for
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// apiHello is the Go app's own API, the same in development and production.
func apiHello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{
		"message": "Hello from the Go API",
		"time":    time.Now().Format(time.RFC3339),
	})
}

// waitForTargets returns once the watcher has read the hot files the dev
// server wrote (a debounce after Start returned), so that "ready" means the
// proxy serves the page.
func waitForTargets(ctx context.Context, w *hotfile.Watcher, dev *vite.Server) {
	changes, cancel := w.Subscribe()
	defer cancel()
	timeout := time.After(5 * time.Second)
	for w.Targets().HTTP == nil || !w.Targets().Equal(dev.Targets()) {
		select {
		case <-changes:
		case <-timeout:
			return
		case <-ctx.Done():
			return
		}
	}
}

// installIfMissing runs npm install in dir when it has no node_modules.
func installIfMissing(ctx context.Context, dir string, out io.Writer, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
		return nil
	}
	log.Info("hostapp: the front end has no node_modules; running npm install (a minute or two for Nuxt)", "dir", dir)
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm install in %s: %w", dir, err)
	}
	return nil
}

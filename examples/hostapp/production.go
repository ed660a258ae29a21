package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

// runProd serves the build of cfg.dir until ctx ends: a framework's server
// build through its own server, else a Vite build (dist) by Go alone.
func runProd(ctx context.Context, cfg config, log *slog.Logger, ready chan<- string) error {
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hello", apiHello)

	var (
		manifest *vite.Manifest
		built    *vite.Server
		proxy    *ssrproxy.Proxy
	)
	if fw, err := vite.DetectBuild(cfg.dir); err == nil {
		built, err = vite.StartBuilt(ctx, cfg.dir, &vite.BuiltOptions{Framework: fw, Logger: log})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if err := built.Stop(stopCtx); err != nil {
				log.Error("hostapp: stop the built server", "err", err)
			}
		}()
		proxy = ssrproxy.New(built, &ssrproxy.Options{Logger: log})
		defer proxy.Close()
		// The build's hashed files from Go's memory, pages from Node.
		mux.Handle("/", built.HashedFiles(proxy))
		log.Info("hostapp: serving the server build", "framework", fw)
	} else {
		dist := filepath.Join(cfg.dir, "dist")
		if _, err := os.Stat(filepath.Join(dist, "index.html")); err != nil {
			return fmt.Errorf("-prod -dir %s: no build (neither dist/index.html nor a server build): build the front end first, see examples/hostapp/README.md", cfg.dir)
		}
		// An os.Root: no symbolic link in dist leads the handler out of it.
		root, err := os.OpenRoot(dist)
		if err != nil {
			return err
		}
		defer root.Close()
		if manifest, err = vite.ReadManifest(root.FS(), nil); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		} // no manifest: the SPA still serves, /server-rendered has no tags
		mux.Handle("/", vite.NewSPA(root.FS(), nil))
		log.Info("hostapp: serving the Vite build by Go", "dist", dist, "manifest", manifest != nil)
	}
	// No dev server in production: the tags come from the manifest, when
	// the build has one.
	mux.Handle("GET /server-rendered", serverRendered(vite.NewAssets(&vite.AssetsOptions{Manifest: manifest}), cfg.entry, log))

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("hostapp: listening (production)", "open", fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port))
	if ready != nil {
		ready <- ln.Addr().String()
	}
	var done <-chan struct{}
	if built != nil {
		done = built.Done()
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	case <-done:
		return fmt.Errorf("built server stopped: %w", built.Err())
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if proxy != nil {
		proxy.Close()
	}
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

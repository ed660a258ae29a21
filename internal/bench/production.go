package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

func init() { Register("production", 15, runProduction) }

// runProduction measures the production side: a built Nuxt app's page load
// (the page and the assets it names) through the Go port (the server's
// hashed files answered by Go, Server.HashedFiles, everything else through
// ssrproxy to vite.StartBuilt's server) against its server directly, with
// ssrproxy alone relaying every request measured beside them; and the
// hashed assets of a Vite build served by vite.SPA against nginx serving the
// same dist.
func runProduction(ctx context.Context, env *Env) ([]Row, error) {
	rows, err := measureBuiltNuxt(ctx, env)
	if err != nil {
		return rows, err
	}
	r, err := measureSPA(ctx, env)
	return append(rows, r...), err
}

// serveGo serves h on a loopback port until the returned stop is called.
func serveGo(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() {
		srv.Close()
		<-served
	}, nil
}

// retarget rewrites the target note that measureFetches gives the proxied
// side, for the targets of this section.
func retarget(rows []Row, target string) []Row {
	for i := range rows {
		rows[i].Note = strings.ReplaceAll(rows[i].Note, "; target >= 0.80x", "")
		if rows[i].Ratio != "" {
			rows[i].Note += "; target >= " + target
		}
	}
	return rows
}

func measureBuiltNuxt(ctx context.Context, env *Env) ([]Row, error) {
	env.Log.Info("building the Nuxt fixture (nuxi build), or taking the cached build")
	dir, err := testenv.CachedBuild("nuxt4", "nuxi", "build")
	if err != nil {
		return nil, err
	}
	s, err := vite.StartBuilt(ctx, dir, &vite.BuiltOptions{NoRestart: true, Logger: env.Log})
	if err != nil {
		return nil, err
	}
	defer s.Stop(context.WithoutCancel(ctx))
	proxy := ssrproxy.New(s, &ssrproxy.Options{Logger: env.Log})
	defer proxy.Close()
	base, stop, err := serveGo(s.HashedFiles(proxy))
	if err != nil {
		return nil, err
	}
	defer stop()
	// The relay alone, for comparison: every request through ssrproxy.
	relay, stopRelay, err := serveGo(proxy)
	if err != nil {
		return nil, err
	}
	defer stopRelay()
	paths, err := crawl(ctx, base)
	if err != nil {
		return nil, err
	}
	env.Log.Info("built Nuxt page", "requests", len(paths))
	rows, err := measureFetches(ctx, env, []side{
		{name: "direct", base: s.Targets().HTTP.String()},
		{name: "via the Go port", base: base},
		{name: "via ssrproxy alone", base: relay},
	}, paths)
	rows = retarget(rows, "0.95x")
	for i := range rows {
		rows[i].What = "built Nuxt " + rows[i].What
		if strings.HasSuffix(rows[i].What, "alone") {
			rows[i].Note = strings.Replace(rows[i].Note, "; target >= 0.95x", "; hashed files relayed to Node too, no target", 1)
		}
	}
	return rows, err
}

// nginxStaticConf serves a dist the way a production nginx would: the
// hashed assets with the same Cache-Control as vite.SPA, open_file_cache
// and sendfile on.
var nginxStaticConf = nginxConfig(`
  include /etc/nginx/mime.types;
  sendfile on;
  open_file_cache max=1000;
  server {
    listen {{.Listen}};
    root {{.Root}};
    location /assets/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
    location / { try_files $uri /index.html; add_header Cache-Control "no-cache"; }
  }
`)

// startNginxStatic runs nginx serving the directory root.
func startNginxStatic(ctx context.Context, env *Env, root string) (*nginx, error) {
	return runNginx(ctx, env, "nginx-static", nginxStaticConf, map[string]string{"Root": root})
}

func measureSPA(ctx context.Context, env *Env) ([]Row, error) {
	dir, err := testenv.CachedBuild("vite8-prod", "vite", "build", "--manifest")
	if err != nil {
		return nil, err
	}
	// nginx's workers run as www-data, which may not enter the build
	// cache (under root's home): Go and nginx serve one copy of the dist
	// in the bench's own directory.
	dist := filepath.Join(env.Dir, "spa-dist")
	if err := os.CopyFS(dist, os.DirFS(filepath.Join(dir, "dist"))); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dist)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// vite.SPA runs in a process of its own, as nginx does: in this one it
	// would share the load generator's GOMAXPROCS and garbage collector,
	// which nginx's workers do not.
	spa, err := startSPAProcess(ctx, dist)
	if err != nil {
		return nil, err
	}
	defer spa.stop()
	base := spa.base
	var paths []string
	err = fs.WalkDir(root.FS(), "assets", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, "/"+p)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	ngx, err := startNginxStatic(ctx, env, dist)
	if err != nil {
		env.Log.Warn("nginx not measured", "err", err)
		return []Row{{What: "SPA assets via nginx", Value: "not measured", Note: err.Error()}}, nil
	}
	defer ngx.stop()
	rows, err := measureFetches(ctx, env, []side{
		{name: "nginx", base: ngx.base},
		{name: "vite.SPA", base: base},
	}, paths)
	for i := range rows {
		rows[i].What = "SPA hashed assets: " + strings.Replace(rows[i].What, "page load", "all", 1)
		rows[i].Ratio = strings.Replace(rows[i].Ratio, " direct", " nginx", 1)
	}
	return retarget(rows, "0.9x nginx"), err
}

// ServeSPA serves the dist directory with vite.SPA on a free loopback port
// until ctx ends, and writes the port's base URL and a newline to ready
// once it listens. It is the process that startSPAProcess starts (the bench
// command with -serve-spa).
func ServeSPA(ctx context.Context, dist string, ready io.Writer) error {
	root, err := os.OpenRoot(dist)
	if err != nil {
		return err
	}
	defer root.Close()
	base, stop, err := serveGo(vite.NewSPA(root.FS(), nil))
	if err != nil {
		return err
	}
	defer stop()
	if _, err := fmt.Fprintln(ready, base); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// spaProcess is a bench command serving a dist with vite.SPA (ServeSPA).
type spaProcess struct {
	base string
	cmd  *exec.Cmd
}

// startSPAProcess runs this executable with -serve-spa dist and returns
// once it listens. The child dies with this process (Pdeathsig).
func startSPAProcess(ctx context.Context, dist string) (*spaProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-serve-spa", dist)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	// A pipe of our own, not StdoutPipe: Wait must not close it under the
	// reader, which ends at the child's exit.
	out, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		out.Close()
		return nil, err
	}
	p := &spaProcess{cmd: cmd}
	line := make(chan string, 1)
	go func() {
		defer out.Close()
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(s)
		io.Copy(io.Discard, out)
	}()
	select {
	case p.base = <-line:
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
	}
	if !strings.HasPrefix(p.base, "http://") {
		p.stop()
		return nil, fmt.Errorf("bench: the vite.SPA process did not start (%q)", p.base)
	}
	return p, nil
}

func (p *spaProcess) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

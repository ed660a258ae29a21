package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"
)

// nginxMain is what every configuration of the bench's nginx holds: it
// runs in the foreground, with its pid, log and temporary files in
// {{.Dir}}; the template "http" (nginxConfig) adds the directives of the
// http block that one use needs.
const nginxMain = `
daemon off;
worker_processes auto;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
{{template "http" .}}
}
`

// nginxConfig returns nginxMain with http as the rest of its http block.
func nginxConfig(http string) *template.Template {
	t := template.Must(template.New("nginx").Parse(nginxMain))
	template.Must(t.New("http").Parse(http))
	return t
}

// nginxConf puts nginx in front of Vite the way a user would for HMR: HTTP
// with upstream keep-alive and no buffering, WebSocket upgrades, and the
// vite-hmr and vite-ping subprotocols routed to the HMR listener.
var nginxConf = nginxConfig(`
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  map $http_sec_websocket_protocol $backend { default vite; vite-hmr vitehmr; vite-ping vitehmr; }
  upstream vite { server {{.HTTP}}; keepalive 64; }
  upstream vitehmr { server {{.HMR}}; keepalive 16; }
  server {
    listen {{.Listen}};
    location / {
      proxy_pass http://$backend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host localhost;
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
`)

type nginx struct {
	base string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNginx runs Debian's nginx in front of the dev server, installing it
// with apt-get when it is missing and this process is root.
func startNginx(ctx context.Context, env *Env, httpURL, hmrURL *url.URL) (*nginx, error) {
	return runNginx(ctx, env, "nginx", nginxConf, map[string]string{"HTTP": httpURL.Host, "HMR": hmrURL.Host})
}

// runNginx runs nginx with the configuration conf renders from data plus Dir
// (its working directory env.Dir/name) and Listen (a free loopback address),
// and returns once it answers GET / with 200.
func runNginx(ctx context.Context, env *Env, name string, conf *template.Template, data map[string]string) (*nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin, err = installNginx(ctx, env)
		if err != nil {
			return nil, err
		}
	}
	dir := filepath.Join(env.Dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	listen := ln.Addr().String()
	ln.Close()
	vars := map[string]string{"Dir": dir, "Listen": listen}
	for k, v := range data {
		vars[k] = v
	}
	var text bytes.Buffer
	if err := conf.Execute(&text, vars); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, text.Bytes(), 0o644); err != nil {
		return nil, err
	}
	n := &nginx{base: "http://" + listen, done: make(chan struct{})}
	n.cmd = exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	n.cmd.Stdout, n.cmd.Stderr = &out, &out
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		n.cmd.Wait()
		close(n.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(n.base + "/"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return n, nil
			}
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited: %s %s", out.String(), log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	n.stop()
	return nil, errors.New("nginx did not answer within 10 s")
}

func installNginx(ctx context.Context, env *Env) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("nginx is not installed (apt-get install nginx)")
	}
	env.Log.Info("installing nginx with apt-get")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "nginx"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %v: %v\n%s", args, err, out)
		}
	}
	return exec.LookPath("nginx")
}

func (n *nginx) stop() {
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	}
}

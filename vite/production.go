package vite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vitehost/vitehost/hotfile"
)

// The frameworks whose built server StartBuilt runs, beside Nuxt and Astro.
const (
	SvelteKit   Framework = "sveltekit"    // SvelteKit with @sveltejs/adapter-node
	ReactRouter Framework = "react-router" // React Router's framework mode, through react-router-serve
)

// DefaultBuiltStartTimeout bounds the start of a built server, which
// answers within a second or two.
const DefaultBuiltStartTimeout = 30 * time.Second

// builtPoll is how often a starting built server is asked for its page.
const builtPoll = 50 * time.Millisecond

// builtSocket is the name of the Unix socket of a built server in
// BuiltOptions.SocketDir.
const builtSocket = "http.sock"

// ErrNoBuildOutput: the project directory holds no build output that
// StartBuilt knows.
var ErrNoBuildOutput = errors.New("vitehost/vite: no server build")

// BuiltOptions configures StartBuilt. A nil *BuiltOptions means the
// defaults; StartBuilt never modifies the BuiltOptions it is given.
type BuiltOptions struct {
	// Framework says which server build to run; Auto means DetectBuild.
	Framework Framework

	// Host is the loopback address the server binds; "" means 127.0.0.1.
	// Other addresses are refused: the Go app is the server's only client.
	Host string
	// Port is the server's port; 0 means a free port picked at each start.
	Port int
	// SocketDir makes the server listen on the Unix socket http.sock in
	// this directory instead of a port (SvelteKit's SOCKET_PATH, Nitro's
	// NITRO_UNIX_SOCKET); Targets then holds a unix URL. "" means a port.
	SocketDir string

	// Env is added to the server's environment: the app's runtime
	// configuration (NUXT_*, ORIGIN for SvelteKit, ...). SvelteKit gets
	// PROTOCOL_HEADER and HOST_HEADER set to the X-Forwarded-* headers of
	// ssrproxy unless Env sets them.
	Env []string
	// Node is the node binary; "" means "node" on PATH.
	Node string
	// Stdout and Stderr receive the server's output, line by line; nil
	// means the lines go to Logger at debug level.
	Stdout, Stderr io.Writer
	// Logger receives the server's own events; nil means slog.Default().
	Logger *slog.Logger

	// StartTimeout bounds each start, from the process start to the first
	// answer; 0 means DefaultBuiltStartTimeout.
	StartTimeout time.Duration
	// StopTimeout is the grace between SIGTERM and SIGKILL; 0 means
	// DefaultStopTimeout.
	StopTimeout time.Duration
	// NoRestart leaves a crashed server down: Done is closed and Err says
	// why.
	NoRestart bool
}

// builtServer is how one framework's server build runs.
type builtServer struct {
	// args are node's arguments, the server's script first.
	args []string
	// defaults is environment that BuiltOptions.Env may override.
	defaults []string
	// env returns the environment that sets the address: host and port, or
	// socket when it is not "".
	env func(host string, port int, socket string) []string
	// sockets says whether the server can listen on a Unix socket.
	sockets bool
	// client is the directory of the client build, which the server serves
	// at /, and hashed the directory in it of the files whose names change
	// with their content (HashedFiles), except those under unhashed.
	client, hashed, unhashed string
}

// DetectBuild tells which framework's server build the project in dir
// holds, from the files the builds write: .output/server/index.mjs (Nuxt,
// nuxi build), build/index.js and build/handler.js (SvelteKit with
// adapter-node), dist/server/entry.mjs (Astro with @astrojs/node in
// standalone mode), build/server/index.js (React Router). Without any it
// returns an error wrapping ErrNoBuildOutput.
func DetectBuild(dir string) (Framework, error) {
	for _, c := range []struct {
		fw    Framework
		files []string
	}{
		{Nuxt, []string{".output/server/index.mjs"}},
		{SvelteKit, []string{"build/index.js", "build/handler.js"}},
		{Astro, []string{"dist/server/entry.mjs"}},
		{ReactRouter, []string{"build/server/index.js"}},
	} {
		found := true
		for _, f := range c.files {
			if st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f))); err != nil || !st.Mode().IsRegular() {
				found = false
				break
			}
		}
		if found {
			return c.fw, nil
		}
	}
	return Auto, fmt.Errorf("%w in %s (no .output/server/index.mjs, build/index.js, dist/server/entry.mjs or build/server/index.js: run the framework's build)", ErrNoBuildOutput, dir)
}

// builtServerOf returns how the server build of fw in dir runs.
func builtServerOf(dir string, fw Framework) (*builtServer, error) {
	hostPort := func(host string, port int, _ string) []string {
		return []string{"HOST=" + host, "PORT=" + strconv.Itoa(port)}
	}
	var b *builtServer
	switch fw {
	case Nuxt:
		// Nitro's node-server preset reads NITRO_* before HOST and PORT,
		// and listens on NITRO_UNIX_SOCKET when it is set.
		b = &builtServer{
			args:   []string{".output/server/index.mjs"},
			client: ".output/public",
			hashed: "_nuxt", // app.buildAssetsDir
			// The app manifest's builds/latest.json changes with each build:
			// Nuxt serves it with a max-age of 1 s.
			unhashed: "_nuxt/builds/",
			env: func(host string, port int, socket string) []string {
				if socket != "" {
					return []string{"NITRO_UNIX_SOCKET=" + socket}
				}
				p := strconv.Itoa(port)
				return []string{"NITRO_HOST=" + host, "NITRO_PORT=" + p, "HOST=" + host, "PORT=" + p}
			},
			sockets: true,
		}
	case SvelteKit:
		// adapter-node binds 0.0.0.0 unless HOST says otherwise. Behind
		// ssrproxy it must take the page's origin from the X-Forwarded-*
		// headers the proxy sets: its origin is otherwise the loopback
		// address, and its CSRF check refuses every form POST of the page
		// (403 "Cross-site POST form submissions are forbidden"). Only the
		// Go app reaches the server, so the headers are the proxy's.
		b = &builtServer{
			args:     []string{"build/index.js"},
			client:   "build/client",
			hashed:   "_app/immutable", // kit.appDir
			defaults: []string{"PROTOCOL_HEADER=x-forwarded-proto", "HOST_HEADER=x-forwarded-host"},
			env: func(host string, port int, socket string) []string {
				if socket != "" {
					return []string{"SOCKET_PATH=" + socket}
				}
				return hostPort(host, port, "")
			},
			sockets: true,
		}
	case Astro:
		b = &builtServer{args: []string{"dist/server/entry.mjs"}, env: hostPort, client: "dist/client", hashed: "_astro"} // build.assets
	case ReactRouter:
		serve, ok := findPackage(dir, "@react-router/serve")
		if !ok {
			return nil, fmt.Errorf("%w: @react-router/serve is not installed in %s (npm install @react-router/serve)", ErrNotInstalled, dir)
		}
		b = &builtServer{args: []string{filepath.Join(serve, "bin.js"), "build/server/index.js"}, env: hostPort, client: "build/client", hashed: "assets"}
	default:
		return nil, fmt.Errorf("%w: StartBuilt does not know the framework %q", ErrInvalidOptions, fw)
	}
	for _, f := range b.args {
		if !filepath.IsAbs(f) {
			f = filepath.Join(dir, f)
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoBuildOutput, err)
		}
	}
	return b, nil
}

// StartBuilt starts the built server of the project in dir (the output of
// nuxi build, of vite build with SvelteKit's adapter-node, of astro build
// with @astrojs/node standalone, of react-router build) and returns when it
// answers HTTP. It is supervised like a dev server (see Start): restarted
// after a crash, stopped with its whole process group by Stop, killed by
// the kernel when this process dies. It writes no hot file. Put it behind
// ssrproxy.New, which takes the returned *Server as its TargetSource. ctx
// bounds the start and stays the server's lifetime. A failed start returns a
// *StartError and leaves no process running.
func StartBuilt(ctx context.Context, dir string, opts *BuiltOptions) (*Server, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	o, fw, b, err := builtDefaults(abs, opts)
	if err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	l := &launcher{
		dir:   abs,
		fw:    fw,
		opts:  o,
		built: b,
		log:   o.Logger.With("framework", string(fw), "dir", abs, "build", true),
	}
	s := &Server{launcher: l, done: make(chan struct{})}
	s.out = newOutput(o.Stdout, o.Stderr, s.log)
	if _, err := exec.LookPath(o.Node); err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: fmt.Errorf("%w: %v", ErrNoNode, err)}
	}
	if o.SocketDir != "" {
		if err := os.MkdirAll(o.SocketDir, 0o700); err != nil {
			return nil, &StartError{Dir: abs, Framework: fw, Err: fmt.Errorf("vitehost/vite: socket directory: %w", err)}
		}
		s.sockDir = o.SocketDir
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	c, st, err := s.launch(s.ctx)
	if err == nil {
		err = s.publish(st) // no hot file: only Targets and the subscribers
	}
	if err != nil {
		if c != nil {
			c.stop(context.WithoutCancel(ctx), s.opts.StopTimeout)
		}
		s.cancel()
		return nil, &StartError{Dir: abs, Framework: fw, Err: err, Output: s.out.tail()}
	}
	s.log.Info("vitehost/vite: built server ready", "url", st.targets.HTTP.String())
	go s.supervise(c)
	return s, nil
}

// HashedFiles returns an http.Handler that answers the GET and HEAD requests
// for the hashed files of a built server's client build (Nuxt's /_nuxt/,
// SvelteKit's /_app/immutable/, Astro's /_astro/, React Router's /assets/)
// itself, from memory, as SPA answers for its AssetsDir, and passes every
// other request to next, the ssrproxy.Proxy of s: the Node server then
// renders pages and no longer serves the files a page load fetches most,
// nor does the proxy relay them. The files are read when HashedFiles is
// called, up to DefaultSPAMemory; a file added later, a file over 2 MiB,
// and every file of an app that moves them (a base URL, Nuxt's
// app.buildAssetsDir, ...) go to next, whose server serves them as before.
// For a dev server it returns next.
func (s *Server) HashedFiles(next http.Handler) http.Handler {
	if s.built == nil || s.built.client == "" {
		return next
	}
	root, err := os.OpenRoot(filepath.Join(s.dir, filepath.FromSlash(s.built.client)))
	if err != nil {
		s.log.Debug("vitehost/vite: no client build to serve", "err", err)
		return next
	}
	defer root.Close() // readAssets has read the files it holds
	cached := readAssets(root.FS(), s.built.hashed, DefaultSPAMemory)
	for name := range cached {
		if s.built.unhashed != "" && strings.HasPrefix(name, s.built.unhashed) {
			delete(cached, name)
		}
	}
	return &hashedFiles{cached: cached, next: next}
}

// hashedFiles is the handler of Server.HashedFiles.
type hashedFiles struct {
	cached map[string]*cachedFile
	next   http.Handler
}

func (h *hashedFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// Only the exact, clean names of the files read are served: any
		// other spelling is the Node server's to answer.
		name := strings.TrimPrefix(r.URL.Path, "/")
		if c := h.cached[name]; c != nil {
			c.serve(w, r, name)
			return
		}
	}
	h.next.ServeHTTP(w, r)
}

// builtDefaults copies opts into the Options of a Server, fills in the
// zero values, and finds how the build runs.
func builtDefaults(dir string, opts *BuiltOptions) (Options, Framework, *builtServer, error) {
	var bo BuiltOptions
	if opts != nil {
		bo = *opts
	}
	fw := bo.Framework
	if fw == Auto {
		var err error
		if fw, err = DetectBuild(dir); err != nil {
			return Options{}, fw, nil, err
		}
	}
	b, err := builtServerOf(dir, fw)
	if err != nil {
		return Options{}, fw, nil, err
	}
	o := Options{
		Framework:    fw,
		Host:         bo.Host,
		Port:         bo.Port,
		Env:          append([]string(nil), bo.Env...),
		Node:         bo.Node,
		Stdout:       bo.Stdout,
		Stderr:       bo.Stderr,
		Logger:       bo.Logger,
		StartTimeout: bo.StartTimeout,
		StopTimeout:  bo.StopTimeout,
		NoRestart:    bo.NoRestart,
	}
	if bo.SocketDir != "" {
		if !b.sockets {
			return o, fw, nil, fmt.Errorf("%w: the %s server cannot listen on a Unix socket", ErrInvalidOptions, fw)
		}
		if bo.Host != "" || bo.Port != 0 {
			return o, fw, nil, fmt.Errorf("%w: Host and Port apply to TCP; with SocketDir the server listens on a Unix socket", ErrInvalidOptions)
		}
		if o.SocketDir, err = filepath.Abs(bo.SocketDir); err != nil {
			return o, fw, nil, err
		}
	}
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if !isLoopback(o.Host) {
		return o, fw, nil, fmt.Errorf("%w: Host %q is not a loopback address: the built server is reached through the Go app only", ErrInvalidOptions, o.Host)
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fw, nil, fmt.Errorf("%w: port out of range", ErrInvalidOptions)
	}
	if o.Node == "" {
		o.Node = "node"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultBuiltStartTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	return o, fw, b, nil
}

// isLoopback reports whether host is localhost or a loopback IP address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// startBuilt starts the built server on the port p.http (or the socket of
// sockDir) and waits until it answers.
func (s *launcher) startBuilt(ctx context.Context, p ports) (*child, *state, error) {
	var socket string
	if s.sockDir != "" {
		socket = filepath.Join(s.sockDir, builtSocket)
		// A socket file left by a crashed run makes the server's bind fail.
		if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("vitehost/vite: remove stale socket: %w", err)
		}
	}
	env := append(os.Environ(), "NODE_ENV=production")
	env = append(env, s.built.defaults...)
	env = append(env, s.opts.Env...)
	env = append(env, s.built.env(s.opts.Host, p.http, socket)...) // the address is ours to set
	c, err := startChild(s.opts.Node, s.built.args, s.dir, env, s.out, nil, s.opts.StopTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	st, err := s.awaitBuilt(ctx, c, p, socket)
	if err != nil {
		c.stop(context.WithoutCancel(ctx), s.opts.StopTimeout)
		return nil, nil, err
	}
	return c, st, nil
}

// awaitBuilt waits until the server answers a GET of / with any status:
// the app's own answer, a 404 or a redirect, means that it serves.
func (s *launcher) awaitBuilt(ctx context.Context, c *child, p ports, socket string) (*state, error) {
	timeout := time.NewTimer(s.opts.StartTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(builtPoll)
	defer tick.Stop()
	target := listenURL(s.opts.Host, p.http)
	tr := &http.Transport{DisableKeepAlives: true}
	if socket != "" {
		target = hotfile.UnixURL(socket)
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
	}
	client := &http.Client{
		Transport: tr,
		Timeout:   10 * time.Second,
		// A redirect is an answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	probe := listenURL(s.opts.Host, p.http).String() + "/"
	if socket != "" {
		probe = "http://localhost/"
	}
	for {
		select {
		case <-c.exited:
			if s.outputSays("EADDRINUSE") && socket == "" {
				return nil, &errPortRace{port: p.http}
			}
			return nil, exitError(c)
		case <-timeout.C:
			return nil, fmt.Errorf("%w after %v", ErrStartTimeout, s.opts.StartTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if pageStatus(ctx, client, probe) != 0 {
			return &state{targets: hotfile.Targets{HTTP: target}, pid: c.pid()}, nil
		}
	}
}

// outputSays reports whether one of the last output lines contains s.
func (s *launcher) outputSays(text string) bool {
	for _, l := range s.out.tail() {
		if strings.Contains(l, text) {
			return true
		}
	}
	return false
}

// Command previewserver is the JSBundler preview service in one binary: the
// JSON API (create, update, status, delete under /kontext/preview), the
// preview hosts (preview-{id}.<domain>, each a Vite dev server), and
// /healthz, /readyz and /metrics on one listener.
//
//	go run ./examples/previewserver
//	go run ./examples/previewserver -addr 0.0.0.0:8080 -public https://jsbundler.example.com -token s3cret
//
// With the defaults, previews live at http://preview-{id}.localhost:8080,
// which browsers resolve to loopback. It refuses to listen on an address
// other than loopback without -token, unless -insecure-no-token says so:
// whoever reaches the API can run code in the previews. See README.md beside
// this file for a curl session.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/ssrproxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "previewserver:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	addr, public, dir, token, redis string
	nodeID, nodeAddr                string
	ttl, idle                       time.Duration
	spares                          int
	noSandbox                       bool
	sandboxEnv                      []string
	sandboxMemory                   int64
	sandboxPids                     int
	viteFloor                       string
	sandboxDisk, sandboxInodes      int64
	sandboxUIDs                     *sandbox.UIDs
	insecureNoToken                 bool
	server                          preview.ServerOptions
	limits                          preview.Limits
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("previewserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.public, "public", "http://localhost:8080", "public base URL: previews live at preview-{id}.<its host>")
	fs.StringVar(&c.dir, "dir", filepath.Join(os.TempDir(), "vitehost-previewserver"), "directory for sessions and the dependency cache")
	fs.DurationVar(&c.ttl, "ttl", 24*time.Hour, "how long a session lives after its creation")
	fs.DurationVar(&c.idle, "idle", preview.DefaultIdleTimeout, "how long a session goes unused before its dev server hibernates (negative: never); the next request wakes it")
	fs.IntVar(&c.spares, "spares", preview.DefaultSpares, "sandboxed runners kept started ahead at least, warmed up on the template, for fast starts and wakes; more follow demand within Options.SpareMemory (negative: none)")
	fs.StringVar(&c.token, "token", "", "API bearer token (empty: no authentication)")
	fs.StringVar(&c.redis, "redis", "", "Redis URL for the session store, redis://[:password@]host:port/db (empty: in memory)")
	fs.StringVar(&c.nodeAddr, "node-addr", "", "with -redis: host:port where the other nodes reach this one (empty: a single node)")
	fs.StringVar(&c.nodeID, "node-id", "", "with -redis: this node's id (default: random)")
	fs.BoolVar(&c.noSandbox, "no-sandbox", false, "run the dev servers without the bubblewrap sandbox: for trusted input only (they can then read host files and run code as this user)")
	fs.Func("sandbox-env", "KEY=value added to every sandbox's clean environment (repeatable)", func(kv string) error {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%q is not KEY=value", kv)
		}
		c.sandboxEnv = append(c.sandboxEnv, kv)
		return nil
	})
	c.sandboxMemory = preview.DefaultSessionMemory
	fs.Func("sandbox-memory", "memory limit of each session's sandbox, such as 2GiB or 1536MiB (-1: none); a dev server killed at it is restarted twice, then the session fails with memory_limit", func(s string) error {
		n, err := parseBytes(s)
		c.sandboxMemory = n
		return err
	})
	fs.IntVar(&c.sandboxPids, "sandbox-pids", sandbox.DefaultPids, "processes and threads each session's sandbox may run at a time (-1: no limit)")
	fs.StringVar(&c.viteFloor, "vite-floor", "", "oldest Vite a session may run, such as 6.4.3 or 7 (empty: 4.5.0; older lines with published file-read advisories then run with a warning)")
	fs.Int64Var(&c.sandboxDisk, "sandbox-disk", sandbox.DefaultDisk, "bytes of each session's disk, which holds its files and caches: what the API and the session's code write together (-1: no disk, nothing bounds what a session writes)")
	fs.Int64Var(&c.sandboxInodes, "sandbox-inodes", sandbox.DefaultInodes, "files and directories each session's disk holds")
	fs.Func("sandbox-uids", fmt.Sprintf("FIRST-LAST: the host user IDs the sandboxes run as, one each at a time, so that none shares the kernel's per-user budgets such as inotify (default %d-%d)", sandbox.DefaultUIDFirst, sandbox.DefaultUIDFirst+sandbox.DefaultUIDCount-1), func(v string) error {
		a, b, ok := strings.Cut(v, "-")
		first, err1 := strconv.Atoi(a)
		last, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || last < first {
			return fmt.Errorf("%q is not FIRST-LAST", v)
		}
		u, err := sandbox.NewUIDs(first, last-first+1)
		c.sandboxUIDs = u
		return err
	})
	fs.BoolVar(&c.insecureNoToken, "insecure-no-token", false, "listen on an address other than loopback without -token: anyone who reaches it may create previews")
	fs.DurationVar(&c.server.ReadHeaderTimeout, "read-header-timeout", preview.DefaultReadHeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&c.server.BodyTimeout, "body-timeout", preview.DefaultBodyTimeout, "how long a client may take to send a request's body")
	fs.DurationVar(&c.server.WriteTimeout, "write-timeout", preview.DefaultWriteTimeout, "how long each write of a response may wait for a client that does not read")
	fs.DurationVar(&c.server.IdleTimeout, "conn-idle-timeout", preview.DefaultConnIdleTimeout, "how long a keep-alive connection may wait for its next request")
	fs.IntVar(&c.server.MaxConns, "max-conns", 0, fmt.Sprintf("connections held at once, WebSockets included; a new one takes the place of the longest idle one (0: %d, or half the open-file limit when lower)", preview.DefaultMaxConns))
	fs.IntVar(&c.limits.MaxSessionWebSockets, "max-session-websockets", preview.DefaultMaxSessionWebSockets, "WebSockets open at once to one preview; more are refused with 429")
	fs.IntVar(&c.limits.MaxSessionRequests, "max-session-requests", preview.DefaultMaxSessionRequests, "HTTP/1 requests in flight at once to one preview, each holding a connection until the dev server answers; more are refused with 429")
	fs.Int64Var(&c.limits.MaxBytesInFlight, "max-bytes-in-flight", preview.DefaultMaxBytesInFlight, "bytes of API request bodies held at once by this node; requests beyond wait, then get 503")
	fs.Int64Var(&c.limits.MaxWebSocketMessage, "max-websocket-message", ssrproxy.DefaultMaxViteMessage, "bytes of a WebSocket message a client may send to a preview (Vite's sockets and the project's own); one over it closes the socket with 1009")
	err := fs.Parse(args)
	return c, err
}

// run serves until ctx ends, then stops every Vite process before it
// returns. ready, when not nil, receives the listener's address once the
// service accepts requests.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.nodeAddr != "" && cfg.redis == "" {
		return fmt.Errorf("-node-addr needs -redis: the nodes share their sessions through it")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if soft, hard, err := raiseFileLimit(); err != nil {
		log.Warn("previewserver: cannot raise the open-file limit", "soft", soft, "hard", hard, "err", err)
	} else if soft != 0 {
		log.Info("previewserver: open-file limit", "limit", soft)
	}

	store, closeStore, err := openStore(cfg.redis, log)
	if err != nil {
		return err
	}
	defer closeStore()

	m, err := preview.New(&preview.Options{
		PublicURL:   cfg.public,
		BaseDir:     cfg.dir,
		TTL:         cfg.ttl,
		IdleTimeout: cfg.idle,
		Spares:      cfg.spares,
		Token:       cfg.token,
		Store:       store,
		NodeID:      cfg.nodeID,
		NodeAddr:    cfg.nodeAddr,
		NoSandbox:   cfg.noSandbox,
		ViteFloor:   cfg.viteFloor,
		Sandbox: sandbox.Config{
			Env:  cfg.sandboxEnv,
			UIDs: cfg.sandboxUIDs,
			Limits: sandbox.Limits{
				Memory: cfg.sandboxMemory, Pids: cfg.sandboxPids,
				Disk: cfg.sandboxDisk, Inodes: cfg.sandboxInodes,
			},
		},
		Limits: cfg.limits,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer func() {
		log.Info("previewserver: stopping every session")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			log.Error("previewserver: stop", "err", err)
		}
		log.Info("previewserver: stopped")
	}()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	if err := checkExposure(ln.Addr(), cfg); err != nil {
		ln.Close()
		return err
	}
	// The API host: the API, the probes, and the metrics (behind the token
	// when there is one, as the API is).
	api := http.NewServeMux()
	api.Handle("GET /healthz", m.Healthz())
	api.Handle("GET /readyz", m.Readyz())
	api.Handle("GET /metrics", m.Metrics())
	api.Handle("/", m.API())
	// The timeouts and the connection cap keep anonymous clients from
	// holding the process's file descriptors (preview.NewServer).
	srv := preview.NewServer(m.Router(api), &cfg.server)
	// Requests end when the server is told to stop: Shutdown would wait
	// for the event streams, which go on until their client leaves.
	srv.HTTP.BaseContext = func(net.Listener) context.Context { return ctx }
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("previewserver: listening", "addr", ln.Addr().String(), "api", cfg.public+preview.DefaultAPIPrefix,
		"previews", strings.Replace(m.PreviewURL("x"), "preview-x.", "preview-{id}.", 1), "dir", cfg.dir, "auth", cfg.token != "")

	// The React template's packages install in the background, so that the
	// first create does not wait for npm.
	prepared := make(chan struct{})
	go func() {
		defer close(prepared)
		start := time.Now()
		if err := m.Prepare(ctx); err != nil && ctx.Err() == nil {
			log.Error("previewserver: installing the template's packages", "err", err)
			return
		}
		log.Info("previewserver: template packages ready", "took", time.Since(start).Round(time.Millisecond))
	}()
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	<-prepared
	return nil
}

// checkExposure refuses to serve without a token on an address that other
// machines may reach: the API would let anyone who reaches it run code in
// the previews. addr is the address the listener bound, so that "", ":8080"
// and host names are judged by what they became.
func checkExposure(addr net.Addr, cfg config) error {
	tcp, ok := addr.(*net.TCPAddr)
	if cfg.token != "" || cfg.insecureNoToken || ok && tcp.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without -token: anyone who reaches this address could create previews and run code in them; "+
		"set -token, listen on loopback (-addr 127.0.0.1:8080), or pass -insecure-no-token", addr)
}

// parseBytes reads a size: a number of bytes with an optional unit, K, M,
// G (or KiB, MiB, GiB; all powers of 1024), or -1 for no limit.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "-1" {
		return -1, nil
	}
	num := strings.TrimRight(s, "KMGBIkmgbi")
	unit := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s[len(num):]), "B"), "I")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 2GiB or 1536MiB", s)
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30}
	sh, ok := shift[unit]
	if !ok || n > math.MaxInt64>>sh {
		return 0, fmt.Errorf("%q is not a size such as 2GiB or 1536MiB", s)
	}
	return n << sh, nil
}

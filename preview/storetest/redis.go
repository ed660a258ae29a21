package storetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vitehost/vitehost/internal/testenv"
)

// ErrNoRedis is returned by StartRedis when redis-server is not on PATH.
var ErrNoRedis = errors.New("vitehost/storetest: redis-server not found on PATH")

// RedisServer is a redis-server of its own: on 127.0.0.1 and a free port,
// its working directory a given one, with no persistence (--save "",
// --appendonly no), so that a restart starts empty, as a lost Redis would.
type RedisServer struct {
	// Addr is host:port of the server.
	Addr string

	dir  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// Redis starts a RedisServer for t in a temporary directory and stops it
// when t ends. extra are more redis-server arguments ("--requirepass",
// "secret"). A missing redis-server ends the test through testenv.Missing: a
// skip outside CI, a failure under CI.
func Redis(t testing.TB, extra ...string) *RedisServer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := StartRedis(ctx, t.TempDir(), extra...)
	if errors.Is(err, ErrNoRedis) {
		testenv.Missing(t, "redis-server not found on PATH (apt-get install redis-server)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// StartRedis starts a redis-server in dir with the extra arguments and
// returns once it answers PING.
func StartRedis(ctx context.Context, dir string, extra ...string) (*RedisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoRedis
	}
	var lastErr error
	// The free port can be taken before redis-server binds it: try again.
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		r := &RedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, args: extra}
		if lastErr = r.Start(ctx); lastErr == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL returns the redis:// URL of database db, with password when it is
// not empty.
func (r *RedisServer) URL(password string, db int) string {
	auth := ""
	if password != "" {
		auth = ":" + password + "@"
	}
	return fmt.Sprintf("redis://%s%s/%d", auth, r.Addr, db)
}

// Start starts the server (again) on its address and returns once it
// answers PING. It does nothing when the server runs.
func (r *RedisServer) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(r.Addr)
	args := append([]string{
		"--port", port, "--bind", host, "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--loglevel", "warning", "--logfile", "",
	}, r.args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = r.dir
	r.out.Reset()
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vitehost/storetest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	for {
		if ping(r.Addr) == nil {
			return nil
		}
		select {
		case <-done:
			r.cmd = nil
			return fmt.Errorf("vitehost/storetest: redis-server on %s exited: %s", r.Addr, bytes.TrimSpace(r.out.Bytes()))
		case <-ctx.Done():
			r.stopLocked()
			return fmt.Errorf("vitehost/storetest: redis-server on %s not ready: %w", r.Addr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ping sends an inline PING and expects PONG or an authentication error
// (a server with a password answers NOAUTH: it is up all the same).
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line == "+PONG\r\n" || bytes.HasPrefix([]byte(line), []byte("-NOAUTH")) {
		return nil
	}
	return fmt.Errorf("PING answered %q", line)
}

// Stop kills the server, as a crash would, and returns once it has exited.
// Its data is lost. Start brings it back, empty.
func (r *RedisServer) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopLocked()
}

func (r *RedisServer) stopLocked() {
	if r.cmd == nil {
		return
	}
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	<-r.done
	r.cmd = nil
}

// Close stops the server. It is safe to call more than once.
func (r *RedisServer) Close() error {
	r.Stop()
	return nil
}

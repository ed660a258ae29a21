package preview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/internal/flock"
)

// DefaultInstallCommand installs a dependency set. Lifecycle scripts of
// dependencies never run; the registry is the only source (the specs were
// checked by ParsePackageJSON).
var DefaultInstallCommand = []string{"npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"}

// ErrInstall is returned, wrapped with npm's last output lines, when a
// dependency set fails to install.
var ErrInstall = errors.New("vitehost/preview: dependency install failed")

// depCache installs each dependency set once into Dir/<key>/node_modules.
// Concurrent requests for one set wait for the one install, in this process
// (a map of calls) and across processes that share Dir (a file lock). A
// failed install leaves nothing behind, so the next request tries again.
type depCache struct {
	dir     string
	command []string
	timeout time.Duration
	log     *slog.Logger

	// ctx ends every install when the Manager closes; wg waits for them.
	ctx context.Context
	wg  sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*installCall
}

type installCall struct {
	done chan struct{}
	path string
	err  error
}

// ensure returns the node_modules directory of deps, installing it first
// when needed. ctx bounds the wait, not the install: an install that other
// sessions wait for is not cut short because one of them gave up.
func (c *depCache) ensure(ctx context.Context, deps Deps) (string, error) {
	key := deps.Key()
	final := filepath.Join(c.dir, key)
	modules := filepath.Join(final, "node_modules")
	if _, err := os.Stat(modules); err == nil {
		return modules, nil
	}
	c.mu.Lock()
	call, ok := c.calls[key]
	if !ok {
		call = &installCall{done: make(chan struct{})}
		c.calls[key] = call
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			call.path, call.err = c.install(deps, key)
			c.mu.Lock()
			delete(c.calls, key)
			c.mu.Unlock()
			close(call.done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.path, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// install runs the install command in a staging directory and renames it
// into place, so that a half-finished install is never used.
func (c *depCache) install(deps Deps, key string) (string, error) {
	final := filepath.Join(c.dir, key)
	modules := filepath.Join(final, "node_modules")
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return "", err
	}
	unlock, err := flock.Lock(filepath.Join(c.dir, key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(modules); err == nil {
		return modules, nil // another process installed it while we waited
	}
	stage, err := os.MkdirTemp(c.dir, key+".stage-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	if err := os.WriteFile(filepath.Join(stage, "package.json"), deps.packageJSON(), 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	defer cancel()
	start := time.Now()
	c.log.Info("vitehost/preview: installing dependencies", "key", key, "packages", len(deps))
	cmd := exec.CommandContext(ctx, c.command[0], c.command[1:]...)
	cmd.Dir = stage
	// Belt and braces: npm also reads the setting from the environment.
	cmd.Env = append(os.Environ(), "npm_config_ignore_scripts=true", "npm_config_update_notifier=false")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		switch {
		case c.ctx.Err() != nil:
			err = errors.New("the service is shutting down")
		case ctx.Err() != nil:
			err = fmt.Errorf("timed out after %s", c.timeout)
		}
		return "", fmt.Errorf("%w: %s: %v\n%s", ErrInstall, strings.Join(c.command, " "), err, lastLines(out.String(), 15))
	}
	if _, err := os.Stat(filepath.Join(stage, "node_modules")); err != nil {
		return "", fmt.Errorf("%w: %s made no node_modules", ErrInstall, c.command[0])
	}
	// MkdirTemp made stage private; a sandbox's user reads the install.
	if err := os.Chmod(stage, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(stage, final); err != nil {
		return "", err
	}
	c.log.Info("vitehost/preview: installed dependencies", "key", key, "took", time.Since(start).Round(time.Millisecond))
	return modules, nil
}

// lastLines returns the last n non-empty lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

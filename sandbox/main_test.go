//go:build linux

package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/sandbox"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperParent())
	}
	os.Exit(testenv.Main(m))
}

// long bounds what waits on a sandbox; the tests assert outcomes, never
// durations.
const long = 60 * time.Second

// requireSandbox ends the test through testenv.Missing when bubblewrap or
// node is missing or cannot create a sandbox here.
func requireSandbox(t *testing.T) {
	t.Helper()
	testenv.LookPath(t, "bwrap")
	testenv.LookPath(t, "node")
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	if err := sandbox.Check(ctx, ""); err != nil {
		testenv.Missing(t, err.Error())
	}
}

// requireCgroups ends the test through testenv.Missing when the host
// offers no cgroups for the limits.
func requireCgroups(t *testing.T) {
	t.Helper()
	if cg, err := sandbox.CgroupSupport(); err != nil {
		testenv.Missing(t, "cgroups for the sandbox's limits: "+err.Error())
	} else {
		t.Log(cg)
	}
}

// reachable returns a fresh directory that every user may enter and read,
// as the sandbox's user must (t.TempDir's are root's alone).
func reachable(t *testing.T) string {
	d := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(d), 0o711))
	require.NoError(t, os.Chmod(d, 0o755))
	return d
}

// config returns a sandbox with a fresh project directory whose processes
// the leak check sees.
func config(t *testing.T) *sandbox.Config {
	return &sandbox.Config{
		Project: reachable(t),
		Env:     []string{testenv.OwnerEnv()},
		Name:    "test",
		Logger:  testenv.Logger(t),
	}
}

// result is what a sandboxed command did.
type result struct {
	stdout string
	err    error // Wait's
	limit  error // LimitErr's after Close
}

// run runs argv in the sandbox c, with files as descriptors 3, 4, ..., and
// returns its output after Close; stderr goes to the test's log.
func run(t *testing.T, c *sandbox.Config, argv []string, files ...*os.File) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	cmd, err := c.Command(ctx, argv, files...)
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	require.NoError(t, cmd.Close())
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("stderr of %s:\n%s", argv[0], s)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %v: %v", argv, err)
	}
	return result{stdout: stdout.String(), err: err, limit: cmd.LimitErr()}
}

// node runs a Node script with args (process.argv[1:]) in the sandbox c and
// returns its stdout, failing the test when it exits with an error.
func node(t *testing.T, c *sandbox.Config, script string, args ...string) string {
	t.Helper()
	r := run(t, c, append([]string{"node", "-e", script}, args...))
	require.NoError(t, r.err, "node -e %s\nstdout: %s", script, r.stdout)
	return r.stdout
}

package vite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

// parentEnv makes the test binary a parent process that starts the dev
// server of the project directory its value names (the built server, for a
// value "built:<dir>") and waits to be killed.
const parentEnv = "VITEHOST_VITE_PARENT"

// runParent is the test binary run as such a parent; it reports whether it
// was one, so that TestMain exits instead of running the tests.
func runParent() bool {
	dir := os.Getenv(parentEnv)
	if dir == "" {
		return false
	}
	var s *vite.Server
	var err error
	if built, ok := strings.CutPrefix(dir, "built:"); ok {
		s, err = vite.StartBuilt(context.Background(), built, nil)
	} else {
		s, err = vite.Start(context.Background(), dir, nil)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("ready", s.PID())
	select {} // until SIGKILL
}

// TestParentKilled kills, with SIGKILL, a process that runs a dev server,
// so that no Stop ever runs: no process of the dev server survives it.
func TestParentKilled(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	for _, fixture := range []string{"vite8-react", "nuxt4", "astro5"} {
		t.Run(fixture, func(t *testing.T) { killParent(t, testenv.Fixture(t, fixture)) })
	}
}

// killParent starts a parent with parentEnv set to value, kills it with
// SIGKILL once its server is ready, and checks that no process is left.
func killParent(t *testing.T, value string) {
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), parentEnv+"="+value)
	stdout, err := parent.StdoutPipe()
	require.NoError(t, err)
	parent.Stderr = testenv.Writer(t)
	require.NoError(t, parent.Start())
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "the parent did not start the dev server")
	require.True(t, strings.HasPrefix(lines.Text(), "ready "), lines.Text())
	require.NotEmpty(t, testenv.NodeProcesses(), "the dev server runs")

	require.NoError(t, parent.Process.Kill())
	parent.Wait()
	require.Eventually(t, func() bool { return len(testenv.Processes()) == 0 }, long, 20*time.Millisecond,
		"every process of the dev server ends with its parent: %v", testenv.Processes())
}

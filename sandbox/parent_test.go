//go:build linux

package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/sandbox"
)

// helperEnv makes the test binary a helper parent: its value is the
// project directory of the sandbox the helper starts, helperEnv_NAME the
// sandbox's Name.
const helperEnv = "VITEHOST_SANDBOX_HELPER"

// helperParent is the test binary run as the parent of a sandbox: it starts
// node in a sandbox, passes node's output on, and waits to be killed.
func helperParent() int {
	c := sandbox.Config{
		Project: os.Getenv(helperEnv),
		Name:    os.Getenv(helperEnv + "_NAME"),
		Env:     []string{testenv.OwnerEnv()},
	}
	cmd, err := c.Command(context.Background(), []string{"node", "-e", `console.log('up'); setInterval(() => {}, 1000)`})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestParentKilled kills the parent of a running sandbox with SIGKILL, so
// that no Close ever runs: nothing of the sandbox survives it.
func TestParentKilled(t *testing.T) {
	requireSandbox(t)
	label := "parent-" + marker(t)[len("vitehost-marker-"):][:8]
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"="+reachable(t), helperEnv+"_NAME="+label)
	stdout, err := helper.StdoutPipe()
	require.NoError(t, err)
	helper.Stderr = testenv.Writer(t)
	require.NoError(t, helper.Start())
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "no output from the sandbox")
	require.Equal(t, "up", lines.Text())
	before := testenv.Processes()
	t.Log("running:", before)
	require.GreaterOrEqual(t, len(before), 4, "the helper, bwrap, bwrap's init, node")
	assert.True(t, strings.Contains(strings.Join(before, "\n"), " node"), "node runs")

	require.NoError(t, helper.Process.Kill())
	helper.Wait()
	// Gone: no live process, nor one still listed in the sandbox's cgroups
	// (which also list the dead until they are reaped).
	require.Eventually(t, func() bool {
		if len(testenv.Processes()) > 0 {
			return false
		}
		for _, dir := range cgroupDirs(t, label) {
			if b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs")); len(strings.TrimSpace(string(b))) > 0 {
				return false
			}
		}
		return true
	}, long, 20*time.Millisecond, "processes of the sandbox outlived its parent: %v", testenv.Processes())

	// With no Close, the empty cgroups stay behind.
	for _, dir := range cgroupDirs(t, label) {
		require.NoError(t, os.Remove(dir))
	}
}

//go:build linux

package sandbox_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/sandbox"
)

// started is a sandboxed command that runs in the background and has
// printed its first line.
type started struct {
	cmd   *sandbox.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
	first string
}

// start starts argv in the sandbox c and returns once it printed a line;
// the test's cleanup closes it.
func start(t *testing.T, c *sandbox.Config, argv ...string) *started {
	t.Helper()
	cmd, err := c.Command(context.Background(), argv)
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = testenv.Writer(t)
	require.NoError(t, cmd.Start())
	waited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		assert.NoError(t, cmd.Close())
		<-waited
	})
	s := &started{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	require.True(t, s.lines.Scan(), "no output from %v", argv)
	s.first = s.lines.Text()
	return s
}

// TestForkBomb: a command that forks until it cannot is stopped at the
// process limit, the limit is reported, and neither the host nor another
// sandbox notices.
func TestForkBomb(t *testing.T) {
	requireSandbox(t)
	requireCgroups(t)
	c := config(t)
	c.Limits.Pids = 64
	bomb := start(t, c, "node", "-e", `
const { spawn } = require('child_process')
require('fs').readFile('/etc/hosts', () => {}) // starts libuv's thread pool before the limit bites
let n = 0
const more = () => {
  let p
  try { p = spawn('sleep', ['1000'], { stdio: 'ignore' }) } catch (e) { return console.log('refused ' + e.code + ' after ' + n) }
  p.on('error', (e) => console.log('refused ' + e.code + ' after ' + n))
  p.on('spawn', () => { n++; more() })
}
more()
setInterval(() => {}, 1000)`)
	t.Log(bomb.first)
	assert.True(t, strings.HasPrefix(bomb.first, "refused EAGAIN"), bomb.first)
	require.ErrorIs(t, bomb.cmd.LimitErr(), sandbox.ErrPidsLimit)
	t.Log(bomb.cmd.LimitErr())

	// Meanwhile, with the bomb's processes still there: the host forks,
	// and another sandbox runs.
	require.NoError(t, exec.Command("true").Run())
	assert.Equal(t, "neighbour\n", node(t, config(t), `console.log('neighbour')`))
}

// TestMemoryHog: a command that allocates without end is killed at the
// memory limit, alone, and LimitErr says so.
func TestMemoryHog(t *testing.T) {
	requireSandbox(t)
	requireCgroups(t)
	c := config(t)
	c.Limits.Memory = 128 << 20
	r := run(t, c, []string{"node", "-e", `
const keep = []
console.log('allocating')
for (;;) keep.push(Buffer.alloc(8 << 20, 1))`})
	require.Error(t, r.err, "the hog ended by itself")
	t.Log(r.err, r.limit)
	assert.ErrorIs(t, r.limit, sandbox.ErrMemoryLimit)
	assert.Equal(t, "neighbour\n", node(t, config(t), `console.log('neighbour')`))
}

// TestFileLimits: a file larger than FileSize is cut at the limit, and /tmp
// holds no more than Tmp; neither needs cgroups.
func TestFileLimits(t *testing.T) {
	requireSandbox(t)
	c := config(t)
	c.Limits = sandbox.Limits{FileSize: 1 << 20, Tmp: 1 << 20, Memory: -1, Pids: -1}
	out := node(t, c, `
const fs = require('fs')
process.on('SIGXFSZ', () => {}) // else the signal ends node: the write fails with EFBIG instead
const code = (f) => { try { f(); return 'ok' } catch (e) { return e.code } }
console.log(JSON.stringify({
  project: code(() => fs.writeFileSync('/project/big', Buffer.alloc(2 << 20, 1))),
  tmp: code(() => fs.writeFileSync('/tmp/small', Buffer.alloc(512 << 10, 1)) || fs.writeFileSync('/tmp/big', Buffer.alloc(1 << 20, 1))),
}))`)
	var got map[string]string
	decode(t, out, &got)
	assert.Equal(t, "EFBIG", got["project"])
	assert.Equal(t, "ENOSPC", got["tmp"])
	info, err := os.Stat(filepath.Join(c.Project, "big"))
	require.NoError(t, err)
	assert.LessOrEqual(t, info.Size(), int64(1<<20))
}

// TestCloseKillsEverything: Close, while the command and the processes it
// started in the background run, leaves nothing alive and no cgroup.
func TestCloseKillsEverything(t *testing.T) {
	requireSandbox(t)
	c := config(t)
	c.Name = "close-" + marker(t)[len("vitehost-marker-"):][:8]
	cmd, err := c.Command(context.Background(), []string{"node", "-e", `
const { spawn } = require('child_process')
for (let i = 0; i < 3; i++) spawn('sleep', ['1000'], { detached: true, stdio: 'ignore' }).unref()
spawn('sh', ['-c', 'sleep 1000 & sleep 1000 &'], { stdio: 'ignore' })
console.log('up')
setInterval(() => {}, 1000)`})
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan())
	require.Equal(t, "up", lines.Text())
	assert.GreaterOrEqual(t, len(testenv.Processes()), 4, "bwrap, its init, node, sleeps")
	if _, err := sandbox.CgroupSupport(); err == nil {
		assert.NotEmpty(t, cgroupDirs(t, c.Name), "the sandbox's cgroup")
	}

	require.NoError(t, cmd.Close())
	assert.Error(t, cmd.Wait(), "bwrap was killed")
	assert.Empty(t, testenv.Processes())
	assert.Empty(t, cgroupDirs(t, c.Name))
	require.NoError(t, cmd.Close(), "a second Close")
}

// cgroupDirs returns the cgroup directories whose name carries label.
func cgroupDirs(t *testing.T, label string) []string {
	var out []string
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), "vitehost-"+label+"-") {
			out = append(out, p)
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// TestCheck: Check passes with this host's bwrap, and names a missing one.
func TestCheck(t *testing.T) {
	requireSandbox(t)
	require.NoError(t, sandbox.Check(context.Background(), ""))
	err := sandbox.Check(context.Background(), "/nonexistent/bwrap")
	require.ErrorIs(t, err, sandbox.ErrUnavailable)
	assert.Contains(t, err.Error(), "/nonexistent/bwrap")
}

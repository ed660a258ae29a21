//go:build unix

package vite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/sandbox"
)

// groupPoll is how often a stopping child's process group is checked.
const groupPoll = 20 * time.Millisecond

// stdinGrace bounds the wait for a child that stops when its stdin closes,
// before the group gets SIGTERM.
const stdinGrace = 3 * time.Second

// killWait bounds the wait for a process group after SIGKILL; only a process
// stuck in the kernel outlives it.
const killWait = 10 * time.Second

// child is one run of the dev server: its main process, which leads a
// process group of its own, and whatever that process starts (esbuild,
// Nuxt's workers), which stays in the group.
type child struct {
	cmd     *exec.Cmd
	pgid    int
	started time.Time
	cancel  context.CancelFunc // ends cmd's context; cmd.Cancel closes stdin and sends SIGTERM
	stdin   io.WriteCloser
	// stdinStop says that the main process exits by itself when its stdin
	// closes (the runner script), which stop then waits for before SIGTERM.
	stdinStop bool

	// events receives the protocol lines of stdout but the batches'
	// answers. One goroutine reads it at a time: the launch until ready,
	// the supervisor afterwards.
	events chan message
	// batches are the holds of this run that wait for the runner's
	// answers, which go to them straight from stdout.
	batches batches

	// inMu serializes the lines written to stdin: the config line, then
	// the batches' messages.
	inMu sync.Mutex

	exited chan struct{} // closed when the main process has exited and its output is drained
	err    error         // cmd.Wait's result, set before exited is closed

	// box is the sandbox the dev server runs in, nil for none: its
	// processes are outside the group, and Close ends them.
	box *sandbox.Cmd
	// cleanup, when not nil, runs once the processes are gone (it removes
	// the run's sockets).
	cleanup func()

	stopOnce sync.Once
	stopErr  error
}

// startChild starts name with args in dir in a new process group, writes
// input to its stdin (which stays open until stop), and routes its output
// through out. waitDelay bounds how long Wait waits for the pipes after the
// main process has exited, which grandchildren may hold open.
func startChild(name string, args []string, dir string, env []string, out *output, input []byte, waitDelay time.Duration) (*child, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	return startCmd(cmd, cancel, out, input, waitDelay)
}

// startCmd is startChild for a command made by the caller (a sandboxed one)
// with the context that cancel ends.
func startCmd(cmd *exec.Cmd, cancel context.CancelFunc, out *output, input []byte, waitDelay time.Duration) (*child, error) {
	c := &child{
		cancel:    cancel,
		stdinStop: input != nil,
		events:    make(chan message, eventBuffer),
		exited:    make(chan struct{}),
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	dieWithParent(cmd.SysProcAttr)
	stdout := out.writer("stdout", c.deliver)
	stderr := out.writer("stderr", nil)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Cancel = func() error {
		// Closing stdin is the runner's signal to close the server; SIGTERM
		// reaches every process of the group, nuxi and esbuild included
		// (in a sandbox: bwrap, whose death ends the sandbox).
		stdin.Close()
		return signalGroup(cmd.Process.Pid, syscall.SIGTERM)
	}
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	c.cmd = cmd
	c.stdin = stdin
	c.pgid = cmd.Process.Pid
	c.started = time.Now()

	var writing sync.WaitGroup
	if input != nil {
		writing.Add(1)
		c.inMu.Lock() // before the first send, which comes after ready
		go func() {
			defer writing.Done()
			defer c.inMu.Unlock()
			// Fails with EPIPE when the child is gone; Wait then reports why.
			stdin.Write(input)
		}()
	}
	go func() {
		c.err = cmd.Wait() // closes stdin, which ends a pending write
		stdout.flush()
		stderr.flush()
		writing.Wait()
		close(c.exited)
	}()
	return c, nil
}

// eventBuffer is how many protocol lines wait for the reader: a batch's
// outcome must not be lost behind a burst of events.
const eventBuffer = 256

// sendTimeout bounds a write to the child's stdin, which a child whose event
// loop is stuck stops reading.
const sendTimeout = 5 * time.Second

// send writes one protocol line to the child's stdin.
func (c *child) send(line []byte) error {
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if d, ok := c.stdin.(interface{ SetWriteDeadline(time.Time) error }); ok {
		d.SetWriteDeadline(time.Now().Add(sendTimeout))
	}
	_, err := c.stdin.Write(line)
	return err
}

// deliver hands a protocol message from stdout to the hold that waits for
// it, or queues it for the reader of events.
func (c *child) deliver(m message) {
	if m.Kind == msgHeld || m.Kind == msgBatch {
		c.batches.answer(m)
		return
	}
	select {
	case c.events <- m:
	default: // nobody reads: a runaway child; the output still flows
	}
}

// pid returns the main process's id, which is the process group's id.
func (c *child) pid() int { return c.pgid }

// stop ends the child: stdin closed and SIGTERM to the group, SIGKILL to the
// group when any process of it is alive after grace. It returns when every
// process of the group is gone. It is safe to call more than once; later
// calls wait for the first.
func (c *child) stop(ctx context.Context, grace time.Duration) error {
	c.stopOnce.Do(func() {
		c.stopErr = c.doStop(ctx, grace)
		if c.box != nil {
			// The sandbox's processes are not in the group: bwrap's death
			// ends them, and Close waits until they are gone.
			c.stopErr = errors.Join(c.stopErr, c.box.Close())
		}
		if c.cleanup != nil {
			c.cleanup()
		}
	})
	return c.stopErr
}

// limitErr says which sandbox limit the child hit, if any.
func (c *child) limitErr() error {
	if c.box == nil {
		return nil
	}
	return c.box.LimitErr()
}

func (c *child) doStop(ctx context.Context, grace time.Duration) error {
	if c.stdinStop {
		// The runner closes the Vite server and exits when stdin closes.
		// SIGTERM at once would also reach esbuild, whose death in the middle
		// of a dependency optimization makes Vite 6 and 7 hang in close.
		c.stdin.Close()
		t := time.NewTimer(min(grace, stdinGrace))
		select {
		case <-c.exited:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	c.cancel()
	// The main process may have exited already (a crash), in which case
	// Cancel is not called: the rest of its group gets SIGTERM here.
	if groupAlive(c.pgid) {
		signalGroup(c.pgid, syscall.SIGTERM)
	}
	if c.waitGone(ctx, grace) {
		return nil
	}
	signalGroup(c.pgid, syscall.SIGKILL)
	if c.waitGone(ctx, killWait) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("vitehost/vite: process group %d still alive after SIGKILL", c.pgid)
}

// waitGone waits up to d until the main process has been reaped and no
// process of its group is alive.
func (c *child) waitGone(ctx context.Context, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	for {
		select {
		case <-c.exited:
			if !groupAlive(c.pgid) {
				return true
			}
		default:
		}
		select {
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		case <-tick.C:
		case <-c.exited:
		}
	}
}

// signalGroup sends sig to every process of the group pgid.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 0 {
		return errors.New("vitehost/vite: no process group")
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// groupAlive reports whether a process of the group pgid is alive. kill(2)
// counts zombies, which hold nothing but wait for their parent (or init) to
// reap them, so on Linux a live member is looked for in /proc.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); err != nil {
		return !errors.Is(err, syscall.ESRCH) && !errors.Is(err, syscall.EPERM)
	}
	pids, err := groupPIDs(pgid)
	if err != nil {
		return true // no /proc: trust kill(2)
	}
	return len(pids) > 0
}

// groupPIDs lists the live (not zombie) processes of the group pgid from
// /proc.
func groupPIDs(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgrp, ok := procStat(filepath.Join("/proc", e.Name(), "stat"))
		if ok && pgrp == pgid && state != 'Z' && state != 'X' {
			out = append(out, pid)
		}
	}
	return out, nil
}

// procStat reads the state and the process group from /proc/<pid>/stat.
func procStat(path string) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(string(f[2]))
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], pgrp, true
}

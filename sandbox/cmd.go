//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// How Close waits: the bound for bwrap's report of its init process (which
// it writes right after the clone), the poll interval while processes die,
// and the bound for them to die after SIGKILL, which only a process stuck in
// the kernel outlives.
const (
	infoWait  = 2 * time.Second
	closePoll = 10 * time.Millisecond
	killWait  = 10 * time.Second
)

// Cmd is a command prepared by Config.Command to run in a sandbox. The
// embedded exec.Cmd is started and waited for as usual; the caller may set
// Stdin, Stdout, Stderr, Cancel and WaitDelay, and add to SysProcAttr (such
// as Setpgid), but must leave Path, Args, Env, Dir and ExtraFiles alone.
//
// The process that exec.Cmd starts is bwrap, outside the namespaces; the
// command runs under bwrap's init process in a session of its own, so a
// signal to bwrap's process group does not reach it. Killing bwrap kills the
// sandbox (--die-with-parent), and Close makes sure of it.
type Cmd struct {
	*exec.Cmd

	log         *slog.Logger
	cg          *cgroup    // nil when the sandbox runs without one
	parentFiles []*os.File // this process's copies of the files only bwrap reads
	info        *os.File   // read end of bwrap's --info-fd
	infoW       *os.File
	uids        *UIDs // where uid goes back at Close; nil when it was not taken from a range
	uid         int

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	removed  bool  // the cgroup is gone; limitErr holds its last word
	limitErr error // what LimitErr returns once the cgroup is gone
}

// Close ends every process of the sandbox that is still alive (SIGKILL to
// the sandbox's init process, which takes the whole PID namespace with it,
// and to every member of its cgroup), waits until they are gone, and removes
// the cgroup. Call it once the command has exited, or to kill it; it does
// not wait for the bwrap process itself, which is the caller's to Wait for.
// It is safe to call more than once; later calls return the first's result.
func (c *Cmd) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Cmd) close() error {
	for _, f := range c.parentFiles {
		f.Close()
	}
	var init nsInit
	if c.info != nil {
		init = readInfo(c.info)
		c.info.Close()
	}
	if c.Cmd != nil && c.Process != nil {
		c.Process.Kill() // bwrap itself; done already when the caller waited for it
	}
	var err error
	deadline := time.Now().Add(killWait)
	for {
		init.kill()
		if c.cg != nil {
			c.cg.kill()
		}
		if !init.alive() && (c.cg == nil || c.cg.empty()) {
			break
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("vitehost/sandbox: processes of the sandbox (init %d, cgroup %s) still alive %v after SIGKILL", init.pid, c.cg, killWait)
			break
		}
		time.Sleep(closePoll)
	}
	if c.uids != nil && err == nil {
		// No process of the user is left: its budgets are free for the
		// next sandbox. (One still alive keeps the ID out of the range.)
		c.uids.put(c.uid)
	}
	if c.cg != nil {
		last := c.cg.limitErr()
		c.mu.Lock()
		c.limitErr, c.removed = last, true
		c.mu.Unlock()
		if rerr := c.cg.remove(); rerr != nil {
			c.log.Warn("vitehost/sandbox: remove cgroup", "cgroup", c.cg.String(), "err", rerr)
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// LimitErr says which limits the sandbox has hit so far: nil, or an error
// wrapping ErrMemoryLimit (a process was killed at the memory limit) and/or
// ErrPidsLimit (a fork or thread was refused at the process limit). It is
// always nil for a sandbox without a cgroup. After Close it reports what
// the cgroup had seen when Close removed it.
func (c *Cmd) LimitErr() error {
	if c.cg == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return c.limitErr
	}
	return c.cg.limitErr()
}

// SetCPUWeight sets the sandbox's share of a contended CPU while it runs
// (Limits.CPUWeight; 0 for the default). It does nothing for a sandbox
// without a cgroup or the cpu controller.
func (c *Cmd) SetCPUWeight(w int) error {
	if c.cg == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed {
		return nil
	}
	return c.cg.setCPUWeight(w)
}

// nsInit is the init process of a sandbox's PID namespace, as bwrap
// reported it: its host PID and the namespace's inode number, which tells it
// apart from an unrelated process that got the same PID later.
type nsInit struct {
	pid int
	ns  uint64
}

// readInfo reads bwrap's --info-fd report ({"child-pid": N, "pid-namespace":
// N, ...}). bwrap writes it right after creating the namespaces; when bwrap
// never got there, the pipe reaches EOF (every write end closed) or the wait
// ends, and the result is zero.
func readInfo(r *os.File) nsInit {
	r.SetReadDeadline(time.Now().Add(infoWait))
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	var v struct {
		Pid int    `json:"child-pid"`
		NS  uint64 `json:"pid-namespace"`
	}
	if json.Unmarshal(b, &v) != nil || v.Pid <= 0 || v.NS == 0 {
		return nsInit{}
	}
	return nsInit{pid: v.Pid, ns: v.NS}
}

// current reports whether the process with i's PID is still i and has not
// exited: its PID namespace is i's, and it is not a zombie.
func (i nsInit) current() bool {
	if i.pid <= 0 {
		return false
	}
	var st syscall.Stat_t
	if syscall.Stat("/proc/"+strconv.Itoa(i.pid)+"/ns/pid", &st) != nil || st.Ino != i.ns {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(i.pid) + "/stat")
	return err == nil && procState(b) != 'Z'
}

// kill sends SIGKILL to the init process, which makes the kernel kill every
// process of its PID namespace.
func (i nsInit) kill() {
	if i.current() {
		syscall.Kill(i.pid, syscall.SIGKILL)
	}
}

// alive reports whether the namespace still has processes: the kernel keeps
// init until every other process of the namespace is gone.
func (i nsInit) alive() bool { return i.current() }

// procState returns the state letter of a /proc/<pid>/stat line.
func procState(stat []byte) byte {
	// "pid (comm) state ...": comm may hold spaces and parentheses.
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' {
			if i+2 < len(stat) {
				return stat[i+2]
			}
			break
		}
	}
	return 0
}

package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ownerEnv marks every process started by a test binary: children inherit the
// environment, and so do their children (npm -> node -> esbuild), even after
// they are re-parented to init. A process that still carries the mark after
// the tests is a leak.
const ownerEnv = "VITEHOST_TEST_OWNER"

// Main runs the package's tests with the leak checks: it marks the
// environment that child processes inherit, runs m, and then fails the run
// when a marked process or a goroutine of this module is still alive.
// Call it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	os.Setenv(ownerEnv, strconv.Itoa(os.Getpid()))
	code := m.Run()
	if code != 0 {
		return code // a failing run already says why; the leak report would only bury it
	}
	if procs := waitGone(5*time.Second, Processes); len(procs) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: child processes outlived the tests:\n%s\n", strings.Join(procs, "\n"))
		for _, p := range procs {
			if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		return 1
	}
	if gs := waitGone(5*time.Second, Goroutines); len(gs) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: goroutines outlived the tests:\n%s\n", strings.Join(gs, "\n\n"))
		return 1
	}
	return 0
}

// OwnerEnv returns the environment entry that marks a process as started by
// this test binary. A sandbox gets an environment built from nothing, not
// inherited: its Env must carry this entry for the leak check to see what
// runs inside.
func OwnerEnv() string {
	if v := os.Getenv(ownerEnv); v != "" {
		return ownerEnv + "=" + v // a helper process re-executed by a test
	}
	return ownerEnv + "=" + strconv.Itoa(os.Getpid())
}

func waitGone(d time.Duration, f func() []string) []string {
	deadline := time.Now().Add(d)
	for {
		left := f()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Processes lists the live processes, other than this one, that this test
// binary started directly or indirectly, as "pid comm" lines.
func Processes() []string {
	mark := []byte(ownerEnv + "=" + strconv.Itoa(os.Getpid()) + "\x00")
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, mark...)) {
			continue
		}
		if state(pid) == 'Z' {
			continue // a zombie holds no resources; its parent has not reaped it yet
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.TrimSpace(string(comm))))
	}
	return out
}

// NodeProcesses lists the live node processes that Processes reports.
func NodeProcesses() []string {
	var out []string
	for _, p := range Processes() {
		if strings.HasSuffix(p, " node") || strings.Contains(p, " node-") {
			out = append(out, p)
		}
	}
	return out
}

func state(pid int) byte {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The state follows the parenthesised comm, which may itself hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// Goroutines lists the stacks of live goroutines that run code of this
// module, other than the test framework's and this package's own.
func Goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "github.com/vitehost/vitehost/") {
			continue
		}
		if strings.Contains(g, "vitehost/internal/testenv.") || strings.Contains(g, "testing.(*M).") {
			continue
		}
		out = append(out, g)
	}
	return out
}

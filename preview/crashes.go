package preview

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// This file is what a session says when its dev server crashes: at its
// sandbox's memory limit (a project that needs more than the limit needs it
// at every start, so the vite package gives up after a few runs, see
// vite.Options.MaxLimitCrashes) or for another reason (it is restarted).

// maxLimitCrashes is how many kills at a limit in a row a session's dev
// server is restarted after: the first may be a spike (a large
// dependency optimization), the third is the project.
const maxLimitCrashes = 2

// crash is a crash of a session's dev server, as its status says it.
type crash struct {
	code, message string
}

// onCrash is the session's vite.Options.OnCrash: it hands the crash to
// the run's watch, which records the status (a store write, not to be made
// on the vite package's goroutine). The final crash needs nothing here:
// the watch sees Done.
func (s *session) onCrash(err error, restarting bool) {
	if !restarting {
		return
	}
	c := crash{message: "the dev server crashed; restarting it"}
	if errors.Is(err, sandbox.ErrMemoryLimit) || errors.Is(err, sandbox.ErrPidsLimit) {
		c.code, c.message = s.limitMessage(err)
		c.message += "; restarting it"
	}
	select {
	case s.crashes <- c:
	default: // the watch has not read the last one: crashes are seconds apart
	}
}

// limitMessage says which limit of the sandbox err is about, in the
// client's terms, with its value.
func (s *session) limitMessage(err error) (code, msg string) {
	var lim sandbox.Limits
	if s.opts != nil && s.opts.Sandbox != nil {
		lim = s.opts.Sandbox.Limits
	}
	switch {
	case errors.Is(err, sandbox.ErrDiskLimit), errors.Is(err, sandbox.ErrInodeLimit):
		return CodeDiskLimit, "the session reached a limit of its sandbox: " + limitText(err)
	case errors.Is(err, vite.ErrWatcherLimit):
		return CodeWatcherLimit, "the session reached a limit of its sandbox: " + limitText(err)
	}
	if errors.Is(err, sandbox.ErrPidsLimit) {
		n := lim.Pids
		if n == 0 {
			n = sandbox.DefaultPids
		}
		return CodeProcessLimit, fmt.Sprintf("the dev server reached the session's process limit (%d processes and threads)", n)
	}
	mem := lim.Memory
	if mem == 0 {
		mem = sandbox.DefaultMemory
	}
	return CodeMemoryLimit, fmt.Sprintf("the dev server was killed at the session's memory limit (%s): the project needs more memory than the preview service gives a session", byteSize(mem))
}

// byteSize writes n bytes in MiB or GiB.
func byteSize(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// limitText is a limit's error as the client reads it: without the
// packages' prefixes (and so without host paths, which these errors do
// not carry).
func limitText(err error) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), "vitehost/sandbox: "), "vitehost/vite: ")
}

package vite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Spare is a sandboxed runner started before the project it will serve is
// known: Node with Vite imported, and Vite's code compiled and its caches
// filled by one page load of what the spare's project directory held then.
// Spare.Start runs a project's dev server in it: the start skips Node's
// start and Vite's import, and the first page load costs what a reload
// does instead of several times that. A Spare serves one Start; Close ends
// one that no Start took.
type Spare struct {
	l     *launcher // what launched the runner: the warm-up's options, the sockets, the output
	c     *child
	info  os.FileInfo // the project directory's, which stays the runner's whatever its name
	taken atomic.Bool // by a Start, or by Close
}

// StartSpare starts a spare runner in the sandbox opts.Sandbox (required)
// on the project directory dir, which must hold a plain Vite project that
// opts can start (the warm-up's), and returns once it has loaded that
// project's page and every module it imports and waits for its real
// project. The runner holds dir itself, not its name: the caller may then
// replace what dir holds and rename it, or mount the real project over dir
// (sandbox.Share before, sandbox.Attach then), and start the real project
// there with Spare.Start. ctx bounds the warm-up only.
func StartSpare(ctx context.Context, dir string, opts *Options) (*Spare, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if opts == nil || opts.Sandbox == nil || opts.SocketDir != "" {
		return nil, &StartError{Dir: abs, Framework: Vite, Err: fmt.Errorf("%w: StartSpare needs Options.Sandbox, and no SocketDir", ErrInvalidOptions)}
	}
	l, err := newLauncher(abs, opts, "spare", true)
	if err != nil {
		return nil, err
	}
	if l.fw != Vite {
		return nil, l.startError(fmt.Errorf("%w: a spare runs plain Vite", ErrInvalidOptions))
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, l.startError(err)
	}
	if err := l.makeSocketDir(); err != nil {
		return nil, l.startError(err)
	}
	c, err := l.warm(ctx)
	if err != nil {
		l.removeSocketDir()
		return nil, l.startError(err)
	}
	return &Spare{l: l, c: c, info: info}, nil
}

// warm starts the runner with the warm-up config and waits for its warmed
// line.
func (l *launcher) warm(ctx context.Context) (*child, error) {
	cfg, err := l.runnerConfig(ports{})
	if err != nil {
		return nil, err
	}
	input, err := encodeLine(runnerConfig{Warm: &cfg})
	if err != nil {
		return nil, err
	}
	c, err := l.startOnSockets(input)
	if err != nil {
		return nil, err
	}
	timeout := time.NewTimer(l.opts.StartTimeout)
	defer timeout.Stop()
	for {
		select {
		case m := <-c.events:
			switch m.Kind {
			case msgWarmed:
				l.setVersion(m.Version)
				return c, nil
			case msgError:
				err = messageError(m)
			case msgReady:
				err = fmt.Errorf("%w: a spare reported ready before its project", ErrStartFailed)
			default:
				continue
			}
		case <-c.exited:
			err = exitError(c)
		case <-timeout.C:
			err = fmt.Errorf("%w: the spare's warm-up took longer than %v", ErrStartTimeout, l.opts.StartTimeout)
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.stop(context.WithoutCancel(ctx), l.opts.StopTimeout)
		return nil, err
	}
}

// Start starts the dev server of the project in dir in the spare's runner,
// as Start does with a runner of its own, and returns when it is ready.
// opts must have Sandbox, and no SocketDir; dir must be the spare's project
// directory, whatever its name now, or a directory mounted over it
// (sandbox.Attach), which the runner then sees. The spare's sandbox is the
// one it was started with, but for its share of the CPU, which becomes
// opts.Sandbox's; opts.Sandbox serves restarts after a crash. A
// spare whose runner is gone (closed, taken, exited) is not used: the
// Server starts a runner of its own. A Start that fails before it takes
// the spare (invalid options, a failed check of the project) leaves it
// running; the caller closes it.
func (sp *Spare) Start(ctx context.Context, dir string, opts *Options) (*Server, error) {
	if opts == nil || opts.Sandbox == nil || opts.SocketDir != "" {
		return nil, &StartError{Dir: dir, Framework: Vite, Err: fmt.Errorf("%w: Spare.Start needs Options.Sandbox, and no SocketDir", ErrInvalidOptions)}
	}
	l, err := newLauncher(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := sp.check(l.dir); err != nil {
		return nil, l.startError(err)
	}
	if !sp.take(l) {
		if err := l.makeSocketDir(); err != nil {
			return nil, l.startError(err)
		}
		return run(ctx, l, l.launch)
	}
	return run(ctx, l, func(ctx context.Context) (*child, *state, error) { return l.adopt(ctx, sp.c) })
}

// Dir returns the project directory the spare was started on, as it was
// named then.
func (sp *Spare) Dir() string { return sp.l.dir }

// Alive reports whether the spare's runner still waits for its project.
func (sp *Spare) Alive() bool {
	select {
	case <-sp.c.exited:
		return false
	default:
		return !sp.taken.Load()
	}
}

// Close ends the spare's runner and its sandbox, unless a Start took it,
// and returns when they are gone. It is safe to call more than once.
func (sp *Spare) Close() error {
	if sp.taken.Swap(true) {
		return nil
	}
	err := sp.c.stop(context.Background(), sp.l.opts.StopTimeout)
	sp.l.removeSocketDir()
	return err
}

// check reports whether the project directory dir is the spare's, whatever
// its name now, or a directory mounted over the spare's (sandbox.Attach).
func (sp *Spare) check(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: Spare: %v", ErrInvalidOptions, err)
	}
	if over, err := os.Stat(sp.l.dir); !os.SameFile(info, sp.info) && (err != nil || !os.SameFile(info, over)) {
		return fmt.Errorf("%w: the spare runs on %s, not on %s", ErrInvalidOptions, sp.l.dir, dir)
	}
	return nil
}

// take hands the spare's runner to the launcher l: its socket directory
// becomes l's, and so does its output. It reports false when the spare is
// gone (closed, taken, or its runner exited).
func (sp *Spare) take(l *launcher) bool {
	if !sp.Alive() || sp.taken.Swap(true) {
		return false
	}
	l.sockDir, l.ownSockDir = sp.l.sockDir, true
	sp.l.out.retarget(l.opts.Stdout, l.opts.Stderr, l.log)
	l.out = sp.l.out
	l.setVersion(sp.l.reportedVersion())
	return true
}

// adopt sends the project's config line to c, a spare's runner that l
// took, and waits for it to be ready.
func (l *launcher) adopt(ctx context.Context, c *child) (*child, *state, error) {
	c.cleanup = l.unlinkSockets
	// A spare may have waited with a smaller share of the CPU
	// (sandbox.Limits.CPUWeight): it serves now.
	if c.box != nil {
		if err := c.box.SetCPUWeight(l.opts.Sandbox.Limits.CPUWeight); err != nil {
			l.log.Warn("vitehost/vite: the spare keeps its share of the CPU", "err", err)
		}
	}
	input, err := l.runnerInput(ports{})
	if err == nil {
		if err = c.send(input); err != nil {
			err = fmt.Errorf("%w: the spare's runner does not read its config: %v", ErrStartFailed, err)
		}
	}
	if err != nil {
		c.stop(context.WithoutCancel(ctx), l.opts.StopTimeout)
		return nil, nil, err
	}
	st, err := l.awaitVite(ctx, c)
	if err != nil {
		c.stop(context.WithoutCancel(ctx), l.opts.StopTimeout)
		return nil, nil, err
	}
	return c, st, nil
}

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
// Start with Options.Spare runs a project's dev server in it: the start
// skips Node's start and Vite's import, and the first page load costs what
// a reload does instead of several times that. A Spare serves one Start;
// Close ends one that no Start took.
type Spare struct {
	s     *Server // what the runner started with: options, sockets, output
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
// (sandbox.Share before, sandbox.Attach then), and Start the real project
// there with Options.Spare. ctx bounds the warm-up only.
func StartSpare(ctx context.Context, dir string, opts *Options) (*Spare, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if opts == nil || opts.Sandbox == nil || opts.Spare != nil || opts.SocketDir != "" {
		return nil, &StartError{Dir: abs, Framework: Vite, Err: fmt.Errorf("%w: StartSpare needs Options.Sandbox, and neither Spare nor SocketDir", ErrInvalidOptions)}
	}
	o, fw, err := withDefaults(abs, opts)
	if err == nil && fw != Vite {
		err = fmt.Errorf("%w: a spare runs plain Vite", ErrInvalidOptions)
	}
	if err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	info, err := os.Stat(abs)
	if err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	s := &Server{dir: abs, fw: fw, opts: o, log: o.Logger.With("framework", string(fw), "dir", abs, "spare", true)}
	s.out = newOutput(o.Stdout, o.Stderr, s.log)
	if err := s.preflight(); err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	if err := s.makeSocketDir(); err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	c, err := s.startSpare(ctx)
	if err != nil {
		s.removeSocketDir()
		return nil, &StartError{Dir: abs, Framework: fw, Err: err, Output: s.out.tail()}
	}
	return &Spare{s: s, c: c, info: info}, nil
}

// startSpare starts the runner with the warm-up config and waits for its
// warmed line.
func (s *Server) startSpare(ctx context.Context) (*child, error) {
	cfg, err := s.runnerConfig(ports{})
	if err != nil {
		return nil, err
	}
	input, err := encodeLine(runnerConfig{Warm: &cfg})
	if err != nil {
		return nil, err
	}
	c, err := s.startOnSockets(input)
	if err != nil {
		return nil, err
	}
	timeout := time.NewTimer(s.opts.StartTimeout)
	defer timeout.Stop()
	for {
		select {
		case m := <-c.events:
			switch m.Kind {
			case msgWarmed:
				s.setVersion(m.Version)
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
			err = fmt.Errorf("%w: the spare's warm-up took longer than %v", ErrStartTimeout, s.opts.StartTimeout)
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.stop(context.WithoutCancel(ctx), s.opts.StopTimeout)
		return nil, err
	}
}

// Dir returns the project directory the spare was started on, as it was
// named then.
func (sp *Spare) Dir() string { return sp.s.dir }

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
	err := sp.c.stop(context.Background(), sp.s.opts.StopTimeout)
	sp.s.removeSocketDir()
	return err
}

// checkSpare validates Options.Spare for Start in dir, which must be the
// spare's project directory, whatever its name now, or a directory mounted
// over the spare's (sandbox.Attach), which its runner then sees.
func checkSpare(dir string, o *Options) error {
	sp := o.Spare
	if o.Sandbox == nil || o.SocketDir != "" {
		return fmt.Errorf("%w: Spare needs Sandbox, and no SocketDir", ErrInvalidOptions)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: Spare: %v", ErrInvalidOptions, err)
	}
	if over, err := os.Stat(sp.s.dir); !os.SameFile(info, sp.info) && (err != nil || !os.SameFile(info, over)) {
		return fmt.Errorf("%w: the spare runs on %s, not on %s", ErrInvalidOptions, sp.s.dir, dir)
	}
	return nil
}

// take hands the spare to the Server s: its socket directory becomes s's,
// and so does its output. It reports false when the spare is gone (closed,
// taken, or its runner exited), and s then starts a runner of its own.
func (sp *Spare) take(s *Server) bool {
	if !sp.Alive() || sp.taken.Swap(true) {
		return false
	}
	s.sockDir, s.ownSockDir = sp.s.sockDir, true
	sp.s.out.retarget(s.opts.Stdout, s.opts.Stderr, s.log)
	s.out = sp.s.out
	s.setVersion(sp.s.Version())
	return true
}

// adopt sends the project's config line to the spare's runner, which s
// took, and returns its child.
func (sp *Spare) adopt(s *Server, input []byte) (*child, error) {
	sp.c.cleanup = s.unlinkSockets
	if err := sp.c.send(input); err != nil {
		sp.c.stop(context.Background(), s.opts.StopTimeout)
		return nil, fmt.Errorf("%w: the spare's runner does not read its config: %v", ErrStartFailed, err)
	}
	return sp.c, nil
}

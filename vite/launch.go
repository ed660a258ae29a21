package vite

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/vitehost/vitehost/hotfile"
)

// launcher starts runs of one dev server (or of one built server): it
// holds the options with their defaults, the output that the runs share,
// and the directory of their sockets. A Server supervises the runs that its
// launcher starts; a Spare is a run that a launcher started before its
// project was known.
type launcher struct {
	dir  string
	fw   Framework
	opts Options // a copy, with defaults applied
	log  *slog.Logger
	out  *output

	sockDir    string       // where the Unix sockets are; "" for TCP ports
	ownSockDir bool         // sockDir was made by the launcher and goes with it
	built      *builtServer // how a server build runs (StartBuilt); nil for a dev server

	// What the runs reported: the Vite version, and why the dev server has
	// no file watcher, once the runner said so (EventWatcherError); nil
	// while it has one.
	version atomic.Pointer[string]
	watcher atomic.Pointer[WatcherError]
}

// newLauncher returns the launcher of the dev server of the project in
// dir, once the checks that need no process (preflight) pass; logAttrs are
// added to its logger. Its errors are *StartError.
func newLauncher(dir string, opts *Options, logAttrs ...any) (*launcher, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	o, fw, err := withDefaults(abs, opts)
	if err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	l := &launcher{dir: abs, fw: fw, opts: o, log: o.Logger.With(append([]any{"framework", string(fw), "dir", abs}, logAttrs...)...)}
	l.out = newOutput(o.Stdout, o.Stderr, l.log)
	if err := l.preflight(); err != nil {
		return nil, &StartError{Dir: abs, Framework: fw, Err: err}
	}
	return l, nil
}

// startError returns err as the error of a failed start, with the output's
// last lines.
func (l *launcher) startError(err error) *StartError {
	return &StartError{Dir: l.dir, Framework: l.fw, Err: err, Output: l.out.tail()}
}

// preflight checks what can be checked before a process starts, so that the
// common mistakes fail fast with a clear cause.
func (l *launcher) preflight() error {
	if _, err := readPackageJSON(l.dir); err != nil {
		return err
	}
	if _, err := exec.LookPath(l.opts.Node); err != nil {
		return fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	switch l.fw {
	case Nuxt:
		if _, err := nuxiScript(l.dir); err != nil {
			return err
		}
	case Astro:
		if _, ok := findPackage(l.dir, "astro"); !ok {
			return fmt.Errorf("%w: astro is not installed in %s (run npm install)", ErrNotInstalled, l.dir)
		}
	default:
		if l.opts.Sandbox != nil {
			if !l.sandboxHasVite() {
				return fmt.Errorf("%w: vite is installed neither in %s nor in Sandbox.Modules", ErrNotInstalled, l.dir)
			}
		} else if _, ok := findPackage(l.dir, "vite"); !ok {
			return fmt.Errorf("%w: vite is not installed in %s (run npm install)", ErrNotInstalled, l.dir)
		}
		if _, err := l.runnerInput(ports{}); err != nil {
			return err
		}
	}
	return nil
}

// launch starts the dev server and waits until it is ready. When another
// process takes a picked port before the dev server binds it, it picks new
// ports and starts again, at most maxPortAttempts times.
func (l *launcher) launch(ctx context.Context) (*child, *state, error) {
	if l.sockDir != "" {
		if l.built != nil {
			return l.startBuilt(ctx, ports{})
		}
		return l.startVite(ctx, ports{}) // no ports to pick, no race to lose
	}
	var lost error
	for range maxPortAttempts {
		p, err := pick(l.opts.Port, l.opts.HMRPort)
		if err != nil {
			return nil, nil, err
		}
		var c *child
		var st *state
		switch {
		case l.built != nil:
			c, st, err = l.startBuilt(ctx, p)
		case l.fw == Nuxt:
			c, st, err = l.startNuxt(ctx, p)
		case l.fw == Astro:
			c, st, err = l.startAstro(ctx, p)
		default:
			c, st, err = l.startVite(ctx, p)
		}
		if err == nil {
			return c, st, nil
		}
		port, race := portRace(err)
		if !race {
			return nil, nil, err
		}
		if p.isFixed(port) {
			return nil, nil, fmt.Errorf("%w: port %d, set in Options, is taken", ErrPortInUse, port)
		}
		l.log.Info("vitehost/vite: a picked port was taken before the dev server bound it; picking again", "port", port)
		lost = err
	}
	return nil, nil, fmt.Errorf("%w: lost the race for free ports %d times (last: %v)", ErrPortInUse, maxPortAttempts, lost)
}

// setVersion records the Vite version reported by a start.
func (l *launcher) setVersion(v string) {
	if v != "" {
		l.version.Store(&v)
	}
}

// reportedVersion returns the Vite version that the last run reported.
func (l *launcher) reportedVersion() string {
	if v := l.version.Load(); v != nil {
		return *v
	}
	return ""
}

// noteWatcher keeps the first refusal of a file watcher that e reports,
// for LimitErr.
func (l *launcher) noteWatcher(e Event) {
	if e.Watcher != nil {
		l.watcher.CompareAndSwap(nil, e.Watcher)
	}
}

// targetsOf returns the URLs of listeners bound to host.
func targetsOf(host string, httpPort, hmrPort int) hotfile.Targets {
	return hotfile.Targets{HTTP: listenURL(host, httpPort), HMR: listenURL(host, hmrPort)}
}

// messageError turns an error line of the runner or the layer into an error.
func messageError(m message) error {
	switch m.Code {
	case "EADDRINUSE":
		return &errPortRace{port: m.Port}
	case "VITE_NOT_FOUND", "ASTRO_NOT_FOUND":
		return fmt.Errorf("%w: %s", ErrNotInstalled, strings.TrimSpace(plainText(m.Message)))
	}
	return fmt.Errorf("%w: %s", ErrStartFailed, strings.TrimSpace(plainText(m.Message)))
}

// exitError explains why c exited before it was ready, preferring the
// error line it printed on the way out, and names the sandbox limit it hit.
func exitError(c *child) error {
	for {
		select {
		case m := <-c.events:
			if m.Kind == msgError {
				return withLimit(messageError(m), c.limitErr())
			}
		default:
			return withLimit(fmt.Errorf("%w: %w before it was ready (%v)", ErrStartFailed, ErrExited, c.err), c.limitErr())
		}
	}
}

// withLimit adds the sandbox limit that a dev server hit, if any, to the
// error of its exit: errors.Is finds sandbox.ErrMemoryLimit and
// sandbox.ErrPidsLimit in it.
func withLimit(err, limit error) error {
	if limit == nil {
		return err
	}
	return fmt.Errorf("%w: %w", err, limit)
}

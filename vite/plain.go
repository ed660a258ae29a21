package vite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/vitehost/vitehost/internal/runner"
	"github.com/vitehost/vitehost/sandbox"
)

// runnerConfig is the JSON line the runner script reads from stdin; see
// internal/runner/runner.mjs.
type runnerConfig struct {
	ConfigFile   any            `json:"configFile"` // nil: Vite's lookup; false: none; a path
	Config       map[string]any `json:"config,omitempty"`
	Plugins      []runnerPlugin `json:"plugins,omitempty"`
	Host         string         `json:"host,omitempty"`
	Port         int            `json:"port,omitempty"`
	HMRHost      string         `json:"hmrHost,omitempty"`
	HMRPort      int            `json:"hmrPort,omitempty"`
	Listen       *runnerListen  `json:"listen,omitempty"` // instead of the hosts and ports
	Modules      string         `json:"modules,omitempty"`
	Client       hmrClient      `json:"client"`
	AllowedHosts []string       `json:"allowedHosts,omitempty"`
	ClientErrors bool           `json:"clientErrors,omitempty"`
	// Warm, in a spare's first line, is the config of the warm-up run
	// (StartSpare); the next line is then the project's.
	Warm *runnerConfig `json:"warm,omitempty"`
}

// runnerListen names the inherited descriptors of the listening Unix
// sockets: the runner serves Vite's middlewares on HTTP and hands HMR to
// Vite.
type runnerListen struct {
	HTTP int `json:"http"`
	HMR  int `json:"hmr"`
}

// The descriptors of the sockets in the runner: the first two of the files
// it inherits.
const (
	httpSocketFD = 3
	hmrSocketFD  = 4
)

type runnerPlugin struct {
	Module     string `json:"module"`
	Export     string `json:"export,omitempty"`
	Options    any    `json:"options,omitempty"`
	HasOptions bool   `json:"hasOptions"`
}

// runnerInput encodes the runner's config line for the ports p.
func (l *launcher) runnerInput(p ports) ([]byte, error) {
	cfg, err := l.runnerConfig(p)
	if err != nil {
		return nil, err
	}
	return encodeLine(cfg)
}

func encodeLine(cfg runnerConfig) ([]byte, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: Config or Plugins: %v", ErrInvalidOptions, err)
	}
	return append(b, '\n'), nil
}

// runnerConfig returns the runner's config for the ports p.
func (l *launcher) runnerConfig(p ports) (runnerConfig, error) {
	o := &l.opts
	cfg := runnerConfig{
		Config:       o.Config,
		Client:       browserHMR(o.PublicURL, p.hmr, o.HMRPath),
		AllowedHosts: allowedHosts(o.PublicURL),
		ClientErrors: o.ClientErrors,
	}
	if o.Sandbox != nil || o.SocketDir != "" {
		cfg.Listen = &runnerListen{HTTP: httpSocketFD, HMR: hmrSocketFD}
		if o.PublicURL == nil {
			// No HMR port for the browser to reach: the page's own origin,
			// a proxy in front of the sockets.
			cfg.Client = hmrClient{Path: o.HMRPath}
		}
	} else {
		cfg.Host, cfg.Port = o.Host, p.http
		cfg.HMRHost, cfg.HMRPort = o.Host, p.hmr
	}
	if o.Sandbox != nil && o.Sandbox.Modules != "" {
		cfg.Modules = sandbox.ModulesDir
	}
	switch {
	case o.NoConfigFile:
		cfg.ConfigFile = false
	case o.ConfigFile != "":
		cfg.ConfigFile = o.ConfigFile
	}
	for _, pl := range o.Plugins {
		if pl.Module == "" {
			return cfg, fmt.Errorf("%w: a plugin without Module", ErrInvalidOptions)
		}
		cfg.Plugins = append(cfg.Plugins, runnerPlugin{Module: pl.Module, Export: pl.Export, Options: pl.Options, HasOptions: pl.Options != nil})
	}
	return cfg, nil
}

// startVite starts the runner script with the ports p, or on fresh Unix
// sockets, and waits for its ready line.
func (l *launcher) startVite(ctx context.Context, p ports) (*child, *state, error) {
	input, err := l.runnerInput(p)
	if err != nil {
		return nil, nil, err
	}
	var c *child
	if l.sockDir == "" {
		script, err := runner.ScriptPath()
		if err != nil {
			return nil, nil, err
		}
		env := append(os.Environ(), l.opts.Env...)
		c, err = startChild(l.opts.Node, []string{script, l.dir}, l.dir, env, l.out, input, l.opts.StopTimeout)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrNoNode, err)
		}
	} else if c, err = l.startOnSockets(input); err != nil {
		return nil, nil, err
	}
	st, err := l.awaitVite(ctx, c)
	if err != nil {
		c.stop(context.WithoutCancel(ctx), l.opts.StopTimeout)
		return nil, nil, err
	}
	return c, st, nil
}

// startOnSockets starts the runner on fresh Unix sockets in the socket
// directory, in the sandbox when there is one.
func (l *launcher) startOnSockets(input []byte) (*child, error) {
	files, closeFiles, err := l.listenSockets()
	if err != nil {
		return nil, err
	}
	defer closeFiles() // the runner has its own copies once started
	ctx, cancel := context.WithCancel(context.Background())
	var cmd *exec.Cmd
	var box *sandbox.Cmd
	if l.opts.Sandbox != nil {
		if box, err = l.sandboxCommand(ctx, files); err != nil {
			cancel()
			l.unlinkSockets()
			return nil, err
		}
		cmd = box.Cmd
	} else {
		script, err := runner.ScriptPath()
		if err != nil {
			cancel()
			l.unlinkSockets()
			return nil, err
		}
		cmd = exec.CommandContext(ctx, l.opts.Node, script, l.dir)
		cmd.Dir = l.dir
		cmd.Env = append(os.Environ(), l.opts.Env...)
		cmd.ExtraFiles = files
	}
	c, err := startCmd(cmd, cancel, l.out, input, l.opts.StopTimeout)
	if err != nil {
		if box != nil {
			box.Close()
		}
		l.unlinkSockets()
		return nil, fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	c.box = box
	c.cleanup = l.unlinkSockets
	return c, nil
}

func (l *launcher) awaitVite(ctx context.Context, c *child) (*state, error) {
	timeout := time.NewTimer(l.opts.StartTimeout)
	defer timeout.Stop()
	for {
		select {
		case m := <-c.events:
			switch m.Kind {
			case msgLoaded:
				l.setVersion(m.Version)
			case msgReady:
				l.setVersion(m.Version)
				// The project's code runs in the runner's process and may
				// print protocol lines too: on sockets, the targets are
				// this process's sockets, whatever a line says.
				if m.Unix != (l.sockDir != "") {
					return nil, fmt.Errorf("%w: the runner's ready line does not match how it was told to listen", ErrStartFailed)
				}
				targets := socketTargets(l.sockDir)
				if !m.Unix {
					targets = targetsOf(l.opts.Host, m.Port, m.HMRPort)
				}
				return &state{
					targets: targets,
					token:   m.Token,
					version: m.Version,
					pid:     c.pid(),
					child:   c,
				}, nil
			case msgError:
				return nil, messageError(m)
			case msgEvent:
				// Before ready, only the watcher's refusal matters: the
				// watcher starts before the server listens.
				l.noteWatcher(m.event)
			}
		case <-c.exited:
			return nil, exitError(c)
		case <-timeout.C:
			return nil, fmt.Errorf("%w after %v", ErrStartTimeout, l.opts.StartTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

package vite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/vitehost/vitehost/internal/runner"
)

// runnerConfig is the JSON line the runner script reads from stdin; see
// internal/runner/runner.mjs.
type runnerConfig struct {
	ConfigFile   any            `json:"configFile"` // nil: Vite's lookup; false: none; a path
	Config       map[string]any `json:"config,omitempty"`
	Plugins      []runnerPlugin `json:"plugins,omitempty"`
	Host         string         `json:"host"`
	Port         int            `json:"port"`
	HMRHost      string         `json:"hmrHost"`
	HMRPort      int            `json:"hmrPort"`
	Client       hmrClient      `json:"client"`
	AllowedHosts []string       `json:"allowedHosts,omitempty"`
}

type runnerPlugin struct {
	Module     string `json:"module"`
	Export     string `json:"export,omitempty"`
	Options    any    `json:"options,omitempty"`
	HasOptions bool   `json:"hasOptions"`
}

// runnerInput encodes the runner's config line for the ports p.
func (s *Server) runnerInput(p ports) ([]byte, error) {
	o := &s.opts
	cfg := runnerConfig{
		Config:       o.Config,
		Host:         o.Host,
		Port:         p.http,
		HMRHost:      o.Host,
		HMRPort:      p.hmr,
		Client:       browserHMR(o.PublicURL, p.hmr, o.HMRPath),
		AllowedHosts: allowedHosts(o.PublicURL),
	}
	switch {
	case o.NoConfigFile:
		cfg.ConfigFile = false
	case o.ConfigFile != "":
		cfg.ConfigFile = o.ConfigFile
	}
	for _, pl := range o.Plugins {
		if pl.Module == "" {
			return nil, fmt.Errorf("%w: a plugin without Module", ErrInvalidOptions)
		}
		cfg.Plugins = append(cfg.Plugins, runnerPlugin{Module: pl.Module, Export: pl.Export, Options: pl.Options, HasOptions: pl.Options != nil})
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: Config or Plugins: %v", ErrInvalidOptions, err)
	}
	return append(b, '\n'), nil
}

// startVite starts the runner script with the ports p and waits for its
// ready line.
func (s *Server) startVite(ctx context.Context, p ports) (*child, *state, error) {
	script, err := runner.ScriptPath()
	if err != nil {
		return nil, nil, err
	}
	input, err := s.runnerInput(p)
	if err != nil {
		return nil, nil, err
	}
	env := append(os.Environ(), s.opts.Env...)
	c, err := startChild(s.opts.Node, []string{script, s.dir}, s.dir, env, s.out, input, s.opts.StopTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	st, err := s.awaitVite(ctx, c)
	if err != nil {
		c.stop(context.WithoutCancel(ctx), s.opts.StopTimeout)
		return nil, nil, err
	}
	return c, st, nil
}

func (s *Server) awaitVite(ctx context.Context, c *child) (*state, error) {
	timeout := time.NewTimer(s.opts.StartTimeout)
	defer timeout.Stop()
	for {
		select {
		case m := <-c.events:
			switch m.Kind {
			case msgLoaded:
				s.setVersion(m.Version)
			case msgReady:
				s.setVersion(m.Version)
				return &state{
					targets: targetsOf(s.opts.Host, m.Port, m.HMRPort),
					token:   m.Token,
					version: m.Version,
					pid:     c.pid(),
				}, nil
			case msgError:
				return nil, messageError(m)
			}
		case <-c.exited:
			return nil, exitError(c)
		case <-timeout.C:
			return nil, fmt.Errorf("%w after %v", ErrStartTimeout, s.opts.StartTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

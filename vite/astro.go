package vite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/vitehost/vitehost/internal/runner"
)

// astroConfig is the JSON line the Astro runner reads from stdin; see
// internal/runner/astro.mjs.
type astroConfig struct {
	Host         string    `json:"host"`
	Port         int       `json:"port"`
	HMRHost      string    `json:"hmrHost"`
	HMRPort      int       `json:"hmrPort"`
	Client       hmrClient `json:"client"`
	AllowedHosts []string  `json:"allowedHosts,omitempty"`
}

// astroEnv keeps Astro's dev server off the network and out of the user's
// global preferences: without them it sends telemetry and, every few days,
// asks the npm registry for a newer Astro and records when it did.
var astroEnv = []string{
	"ASTRO_TELEMETRY_DISABLED=1",
	"ASTRO_DISABLE_UPDATE_CHECK=true",
}

// startAstro starts the Astro runner with the ports p and waits for its
// ready line. Astro builds its Vite server itself, with its integrations
// (which is why the plain runner cannot serve an Astro project); the runner
// hands that server the HMR listener through Astro's inline vite config.
func (s *Server) startAstro(ctx context.Context, p ports) (*child, *state, error) {
	script, err := runner.AstroScriptPath()
	if err != nil {
		return nil, nil, err
	}
	input, err := json.Marshal(astroConfig{
		Host:         s.opts.Host,
		Port:         p.http,
		HMRHost:      s.opts.Host,
		HMRPort:      p.hmr,
		Client:       browserHMR(s.opts.PublicURL, p.hmr, s.opts.HMRPath),
		AllowedHosts: allowedHosts(s.opts.PublicURL),
	})
	if err != nil {
		return nil, nil, err
	}
	env := append(append(os.Environ(), astroEnv...), s.opts.Env...)
	c, err := startChild(s.opts.Node, []string{script, s.dir}, s.dir, env, s.out, append(input, '\n'), s.opts.StopTimeout)
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

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
func (l *launcher) startAstro(ctx context.Context, p ports) (*child, *state, error) {
	script, err := runner.AstroScriptPath()
	if err != nil {
		return nil, nil, err
	}
	input, err := json.Marshal(astroConfig{
		Host:         l.opts.Host,
		Port:         p.http,
		HMRHost:      l.opts.Host,
		HMRPort:      p.hmr,
		Client:       browserHMR(l.opts.PublicURL, p.hmr, l.opts.HMRPath),
		AllowedHosts: allowedHosts(l.opts.PublicURL),
	})
	if err != nil {
		return nil, nil, err
	}
	env := append(append(os.Environ(), astroEnv...), l.opts.Env...)
	c, err := startChild(l.opts.Node, []string{script, l.dir}, l.dir, env, l.out, append(input, '\n'), l.opts.StopTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	st, err := l.awaitVite(ctx, c)
	if err != nil {
		c.stop(context.WithoutCancel(ctx), l.opts.StopTimeout)
		return nil, nil, err
	}
	return c, st, nil
}

package vite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/vitehost/vitehost/internal/runner"
)

// nuxtPoll is how often a starting Nuxt app is asked for its page.
const nuxtPoll = 50 * time.Millisecond

// nuxtLoadGrace is how long a page answer other than 503 may precede the
// layer's report that Nuxt's Vite server exists. nuxi answers 503 while Nuxt
// loads and an error page (500) when loading failed; without the report the
// answer is that error page.
const nuxtLoadGrace = 3 * time.Second

// nuxtLayerConfig is the JSON the generated layer reads from its environment;
// see internal/runner/nuxtlayer/nuxt.config.mjs.
type nuxtLayerConfig struct {
	HMRHost      string    `json:"hmrHost"`
	HMRPort      int       `json:"hmrPort"`
	Client       hmrClient `json:"client"`
	AllowedHosts []string  `json:"allowedHosts,omitempty"`
}

// nuxiScript returns the script of the project's nuxi command. It is run
// with Options.Node rather than through its #!/usr/bin/env node line.
func nuxiScript(dir string) (string, error) {
	for _, name := range []string{"nuxi", "nuxt"} {
		bin := filepath.Join(dir, "node_modules", ".bin", name)
		if real, err := filepath.EvalSymlinks(bin); err == nil {
			return real, nil
		}
	}
	return "", fmt.Errorf("%w: no node_modules/.bin/nuxi in %s", ErrNotInstalled, dir)
}

// startNuxt starts nuxi dev with the ports p: HTTP on --port, and the client
// Vite server's HMR listener on p.hmr through the generated layer
// (NUXI_DISABLE_VITE_HMR=1 keeps nuxi from attaching HMR to its own port).
func (l *launcher) startNuxt(ctx context.Context, p ports) (*child, *state, error) {
	nuxi, err := nuxiScript(l.dir)
	if err != nil {
		return nil, nil, err
	}
	layer, err := runner.NuxtLayerDir()
	if err != nil {
		return nil, nil, err
	}
	lc, err := json.Marshal(nuxtLayerConfig{
		HMRHost:      l.opts.Host,
		HMRPort:      p.hmr,
		Client:       browserHMR(l.opts.PublicURL, p.hmr, l.opts.HMRPath),
		AllowedHosts: allowedHosts(l.opts.PublicURL),
	})
	if err != nil {
		return nil, nil, err
	}
	env := append(os.Environ(),
		"NUXI_DISABLE_VITE_HMR=1",
		"NUXT_TELEMETRY_DISABLED=1",
		runner.Env+"="+string(lc),
	)
	env = append(env, l.opts.Env...)
	args := []string{nuxi, "dev", l.dir,
		"--port", strconv.Itoa(p.http),
		"--host", l.opts.Host,
		"--extends", layer,
		// Forked mode keeps two spare Nuxt processes warm for restarts
		// after .env edits (about 140 MB); the supervisor restarts instead.
		"--no-fork",
	}
	c, err := startChild(l.opts.Node, args, l.dir, env, l.out, nil, l.opts.StopTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNoNode, err)
	}
	st, err := l.awaitNuxt(ctx, c, p)
	if err != nil {
		c.stop(context.WithoutCancel(ctx), l.opts.StopTimeout)
		return nil, nil, err
	}
	return c, st, nil
}

// awaitNuxt waits until nuxi listens on p.http, Nuxt's client Vite server
// exists, and the page answers with a status other than 503.
func (l *launcher) awaitNuxt(ctx context.Context, c *child, p ports) (*state, error) {
	timeout := time.NewTimer(l.opts.StartTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(nuxtPoll)
	defer tick.Stop()
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   10 * time.Second,
	}
	pageURL := listenURL(l.opts.Host, p.http).String() + "/"
	version := installedVersion(l.dir, "nuxt", "@nuxt/vite-builder", "vite")
	l.setVersion(version)
	var (
		listening bool
		token     string
		answered  time.Time // first answer other than 503
		status    int
	)
	for {
		select {
		case m := <-c.events:
			switch m.Kind {
			case msgListen:
				if m.Port != p.http {
					// Ours was taken, and listhen (get-port-please) moved to
					// an alternative port instead of failing; nuxi has no
					// strict port option (only nuxi _dev has since
					// https://github.com/nuxt/cli/pull/1456).
					return nil, &errPortRace{port: p.http}
				}
				listening = true
			case msgVite:
				token = m.Token
			case msgError:
				return nil, messageError(m)
			}
			continue
		case <-c.exited:
			return nil, exitError(c)
		case <-timeout.C:
			return nil, fmt.Errorf("%w after %v (last page status %d)", ErrStartTimeout, l.opts.StartTimeout, status)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		if !listening {
			continue
		}
		if answered.IsZero() {
			status = pageStatus(ctx, client, pageURL)
			if status == 0 || status == http.StatusServiceUnavailable {
				continue
			}
			answered = time.Now()
		}
		if token != "" {
			return &state{
				targets: targetsOf(l.opts.Host, p.http, p.hmr),
				token:   token,
				version: version,
				pid:     c.pid(),
			}, nil
		}
		if time.Since(answered) > nuxtLoadGrace {
			return nil, fmt.Errorf("%w: nuxi answered %d but Nuxt did not load", ErrStartFailed, status)
		}
	}
}

// pageStatus returns the status of a GET of url, 0 when there is no answer.
func pageStatus(ctx context.Context, client *http.Client, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

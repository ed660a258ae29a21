package preview

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/vitehost/vitehost/sandbox"
)

// This file is what a load balancer and an orchestrator ask: is the
// process serving (Healthz), and can it serve a create now (Readyz).

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// readyCheck is one condition of readiness. Its error's message is
// answered to anyone who asks /readyz, so it says what is wrong in words
// of the service, never with addresses or paths (log those).
type readyCheck struct {
	name  string
	check func(ctx context.Context) error
}

// readyChecks are the conditions Readyz checks. Another condition (the
// sandbox's) is one more entry.
func (m *Manager) readyChecks() []readyCheck {
	checks := []readyCheck{
		{"store", m.storeReady},
		{"template", m.templateReady},
	}
	if !m.opts.NoSandbox {
		checks = append(checks, readyCheck{"sandbox", m.sandboxReady})
	}
	return checks
}

// Healthz returns the handler of a liveness probe: 200 "ok" while the
// Manager serves, 503 once Close has begun.
func (m *Manager) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if m.isClosed() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("closing\n"))
			return
		}
		w.Write([]byte("ok\n"))
	})
}

// Readyz returns the handler of a readiness probe: 200 when this node can
// serve a create now, 503 otherwise, with
// {"ready": bool, "checks": {name: "ok" or what is wrong}, "sandbox": how
// sessions are isolated and limited}. The checks: "store", the session
// store answers (Redis is reachable); "template", the React template's
// dependencies are installed (Prepare installs them); "sandbox", bubblewrap
// starts a sandbox (unless Options.NoSandbox). "sandbox" also says when the
// host offers no cgroups for the memory and process limits: the sessions
// are then isolated but not limited, which does not make the node
// unready. It needs no token: it says nothing about sessions. The checks
// run at most once every readyEvery, one run at a time, whatever the
// number of callers (readiness.go): an answer may be that old.
func (m *Manager) Readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		probe, err := m.ready.get(r.Context(), m.probeReadiness)
		if err != nil {
			return // the client went away
		}
		results := maps.Clone(probe.checks)
		ready := !m.isClosed()
		if !ready {
			results["manager"] = "closing"
		}
		for _, res := range results {
			ready = ready && res == "ok"
		}
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, struct {
			Ready   bool              `json:"ready"`
			Checks  map[string]string `json:"checks"`
			Sandbox string            `json:"sandbox"`
		}{ready, results, probe.sandbox})
	})
}

// probeReadiness runs every readiness check, each within readyTimeout.
func (m *Manager) probeReadiness(ctx context.Context) readyProbe {
	checks := m.readyChecks()
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, readyTimeout)
			defer cancel()
			res := "ok"
			if err := c.check(ctx); err != nil {
				res = err.Error()
			}
			mu.Lock()
			results[c.name] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	return readyProbe{checks: results, sandbox: m.sandboxInfo()}
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// pinger is a Store that can check its connection (redisstore.Store).
type pinger interface {
	Ping(ctx context.Context) error
}

// storeReady checks that the store answers: its Ping, or a read of a
// record that does not exist.
func (m *Manager) storeReady(ctx context.Context) error {
	var err error
	if p, ok := m.store.(pinger); ok {
		err = p.Ping(ctx)
	} else if _, err = m.store.Get(ctx, "readyz"); errors.Is(err, ErrNotFound) {
		err = nil
	}
	if err != nil {
		m.log.Warn("vitehost/preview: readiness: the session store does not answer", "err", err)
		return errors.New("unreachable")
	}
	return nil
}

// templateReady checks that the template's dependency set is installed,
// without installing it.
func (m *Manager) templateReady(context.Context) error {
	deps, err := templateDeps()
	if err != nil {
		return err
	}
	if !m.deps.Installed(deps) {
		return errors.New("the template's dependencies are not installed yet")
	}
	return nil
}

// sandboxReady checks that a sandbox starts.
func (m *Manager) sandboxReady(ctx context.Context) error {
	if err := sandbox.Check(ctx, m.opts.Sandbox.Bwrap); err != nil {
		m.log.Warn("vitehost/preview: readiness: the sandbox does not start", "err", err)
		return errors.New("bubblewrap cannot start a sandbox here")
	}
	return nil
}

// sandboxInfo says how the sessions are isolated and limited.
func (m *Manager) sandboxInfo() string {
	if m.opts.NoSandbox {
		return "off (Options.NoSandbox): sessions run as this process's user"
	}
	cg, err := sandbox.CgroupSupport()
	if err != nil {
		return "bubblewrap; memory and process limits unavailable: no usable cgroup"
	}
	return "bubblewrap; limits through " + cg.String()
}

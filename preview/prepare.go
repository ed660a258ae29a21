package preview

import (
	"context"
	"fmt"
	"time"
)

// Prepare installs the dependency set of the React template, the one a
// create without a package.json uses, so that the first such create does not
// wait for npm, and keeps it in the dependency cache for the Manager's life.
// It returns when the install is done or ctx ends; an install that is
// already cached returns at once. Readyz reports not ready until the
// template's set is installed.
func (m *Manager) Prepare(ctx context.Context) error {
	if err := m.begin(); err != nil {
		return err
	}
	defer m.running.Done()
	deps, err := templateDeps()
	if err != nil {
		return err
	}
	if _, err = m.deps.Ensure(ctx, m.ctx, deps); err != nil || m.opts.NoSandbox {
		return requestError(err)
	}
	// Sharing optimized dependencies only saves time: its failure is not
	// Prepare's.
	if err := m.prepareOptimized(ctx, deps); err != nil && ctx.Err() == nil {
		m.log.Warn("vitehost/preview: the template's optimized dependencies are not shared", "err", err)
	}
	return ctx.Err()
}

// prepareOptimized runs the template once in a sandbox of the service's
// own, with no tenant's code, so that its optimized dependencies can be
// shared with the sessions that have the same dependencies and config
// (internal/launch/optimized.go). A tenant's session never shares what
// its optimizer wrote: the tenant's code runs in the same sandbox (a CSS
// plugin, its vite.config) and could have changed it, and the next tenant
// would run that code in its browser.
func (m *Manager) prepareOptimized(ctx context.Context, deps Deps) error {
	files, err := readTemplate()
	if err != nil {
		return err
	}
	now := time.Now()
	s := m.newSession(Record{ID: NewID(), Status: StatusInstalling, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	s.trusted = true
	defer s.stop(context.WithoutCancel(ctx), "prepared")
	if err := s.run(ctx, deps, files); err != nil {
		return fmt.Errorf("vitehost/preview: prepare the template's optimized dependencies: %w", err)
	}
	select {
	case <-s.current().warmed: // the warm-up shares the optimizer's output when it is done
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

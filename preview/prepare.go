package preview

import "context"

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
	pkg, err := templateFS.ReadFile("template/package.json")
	if err != nil {
		return err
	}
	deps, err := ParsePackageJSON(pkg)
	if err != nil {
		return err
	}
	_, err = m.deps.ensure(ctx, m.ctx, deps.withDefaults())
	return err
}

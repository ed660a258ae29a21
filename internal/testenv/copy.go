package testenv

import "path/filepath"

// CopyFixture is Fixture for programs that are not tests (the benchmarks):
// it installs the named fixture when needed, copies its sources to dst and
// hard-links its installed node_modules there.
func CopyFixture(name, dst string) error {
	src := filepath.Join(FixturesDir(), name)
	modules, err := InstallDir(src)
	if err != nil {
		return err
	}
	if err := copyTree(src, dst, false); err != nil {
		return err
	}
	return copyTree(modules, filepath.Join(dst, "node_modules"), true)
}

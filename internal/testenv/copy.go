package testenv

import "path/filepath"

// CopyFixture is Fixture for programs that are not tests (the benchmarks):
// it installs the named fixture when needed, copies its sources to dst and
// hard-links its installed node_modules there.
func CopyFixture(name, dst string) error {
	return copyFixture(filepath.Join(FixturesDir(), name), dst)
}

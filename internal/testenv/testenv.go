// Package testenv gives the module's tests what they share: the rule for
// missing tools (skip outside CI, fail under CI), the npm fixtures installed
// once into a cache outside the clone, and the check that no child process
// outlives a test.
package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// InCI reports whether the tests run under CI (CI set to anything but "" or
// "false"), where a missing tool is a failure instead of a skip.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// Missing ends the test because what is names is not available: a skip
// outside CI, a failure under CI so that CI never passes by skipping.
func Missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required under CI: %s", what)
	}
	t.Skipf("skipped: %s (run make test, or .ci/run, to install it)", what)
}

// LookPath returns the path of the named program, or ends the test through
// Missing when it is not on PATH.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" not found on PATH")
	}
	return p
}

// Short ends the test with a skip under -short: the end-to-end suites start
// real dev servers and browsers. Under CI -short is not allowed to hide them.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() {
		if InCI() {
			t.Fatal("-short must not be used under CI: it would skip the end-to-end suite")
		}
		t.Skip("skipped under -short: starts real processes")
	}
}

// TempDir returns a new directory that is removed when t ends, like
// t.TempDir, but which other users may enter: a sandbox runs as an
// unprivileged user that must reach the directories it mounts, and
// t.TempDir's parent is private to this user.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vitehost-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

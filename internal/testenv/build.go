package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// builds holds the production builds of this test binary: one per fixture
// and command, made by the first test that asks and shared by the others
// (a Nuxt build takes most of a minute).
var builds struct {
	mu   sync.Mutex
	dirs map[string]*build
}

type build struct {
	once sync.Once
	dir  string
	err  error
}

// Built returns a copy of the named fixture in which the command name args
// (a program of its node_modules/.bin, such as "vite" "build" "--manifest"
// or "nuxi" "build") has run, built once per test binary. Tests share the
// directory and must not change it. Main removes it after the tests.
func Built(t testing.TB, fixture, name string, args ...string) string {
	t.Helper()
	LookPath(t, "node")
	LookPath(t, "npm")
	key := fixture + "\x00" + name + "\x00" + strings.Join(args, "\x00")
	builds.mu.Lock()
	if builds.dirs == nil {
		builds.dirs = map[string]*build{}
	}
	b, ok := builds.dirs[key]
	if !ok {
		b = &build{}
		builds.dirs[key] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.dir, b.err = runBuild(fixture, name, args) })
	if b.err != nil {
		t.Fatalf("testenv: build %s: %v", fixture, b.err)
	}
	return b.dir
}

// runBuild copies the fixture into a new directory and runs the build
// there. It holds no lock: each build waits on its own once.
func runBuild(fixture, name string, args []string) (string, error) {
	parent, err := os.MkdirTemp("", "vitehost-build-")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(parent, fixture)
	if err := BuildFixture(fixture, dir, name, args...); err != nil {
		os.RemoveAll(parent)
		return "", err
	}
	return dir, nil
}

// BuildFixture is Built for programs that are not tests (the benchmarks):
// it copies the named fixture to dst (see CopyFixture) and runs the build
// command name args there.
func BuildFixture(fixture, dst, name string, args ...string) error {
	if err := CopyFixture(fixture, dst); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(dst, "node_modules", ".bin", name), args...)
	cmd.Dir = dst
	cmd.Env = append(os.Environ(), "NUXT_TELEMETRY_DISABLED=1", "ASTRO_TELEMETRY_DISABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 4000))
	}
	return nil
}

// removeBuilds removes the directories of Built.
func removeBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	for _, b := range builds.dirs {
		if b.dir != "" {
			os.RemoveAll(filepath.Dir(b.dir))
		}
	}
}

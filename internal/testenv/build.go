package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// builds holds the production builds this test binary has asked for: one
// per fixture and command, looked up (or made) by the first test that asks
// and shared by the others.
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
// or "nuxi" "build") has run. Builds are kept in CacheDir, keyed by the
// fixture's files and the command, like the installs: a Nuxt build takes a
// minute, and each test package, and each later run, reuses it. Tests
// share the directory and must not change it.
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
	b.once.Do(func() { b.dir, b.err = CachedBuild(fixture, name, args...) })
	if b.err != nil {
		t.Fatalf("testenv: build %s: %v", fixture, b.err)
	}
	return b.dir
}

// CachedBuild is Built for programs that are not tests (the benchmarks): it
// returns the cached build of the fixture, making it when there is none.
// Concurrent callers, in this process or in other processes, wait for one
// build. Callers must not change the directory.
func CachedBuild(fixture, name string, args ...string) (string, error) {
	src := filepath.Join(FixturesDir(), fixture)
	key, err := buildKey(src, append([]string{name}, args...))
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return cachedOnce(filepath.Join(cache, "builds"), fixture, key, fixture, func(stage string) error {
		return buildFixture(fixture, filepath.Join(stage, fixture), name, args)
	})
}

// buildKey hashes the fixture's files (node_modules and build outputs
// aside, the lockfile included) and the build command.
func buildKey(src string, command []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%q\n", command)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch d.Name() {
		case "node_modules", ".nuxt", ".output", "dist", "build", ".svelte-kit", ".react-router":
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		fmt.Fprintf(h, "%s\n", rel)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(h, f)
		return err
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// buildFixture copies the named fixture to dst (see CopyFixture) and runs
// the build command name args there.
func buildFixture(fixture, dst, name string, args []string) error {
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

package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// FixturesDir is the directory that holds the npm fixtures, each a directory
// with a package.json and a committed package-lock.json.
func FixturesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata")
}

// ModuleRoot is the directory of the module's go.mod.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// ExampleFixtures are the front ends shipped with the examples, installed
// like the fixtures.
func ExampleFixtures() []string {
	return []string{filepath.Join(ModuleRoot(), "examples", "hostapp", "frontend")}
}

// CacheDir is where fixture installs are kept between runs: $VITEHOST_CACHE_DIR
// when set, else vitehost/fixtures under the user's cache directory. It is
// outside the clone so that a fresh clone reuses earlier installs.
func CacheDir() (string, error) {
	if d := os.Getenv("VITEHOST_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "vitehost", "fixtures"), nil
}

// Fixture copies the named fixture's sources into a fresh temporary
// directory, links its installed node_modules there (hard links: cheap, and
// the project looks self-contained to Vite and Nuxt), and returns the
// directory. The install happens once per lockfile into CacheDir (InstallDir).
func Fixture(t testing.TB, name string) string {
	t.Helper()
	return FixtureDir(t, filepath.Join(FixturesDir(), name))
}

// FixtureDir is Fixture for a project anywhere in the module (an example's
// front end): src must hold a package.json and a package-lock.json.
func FixtureDir(t testing.TB, src string) string {
	t.Helper()
	LookPath(t, "node")
	LookPath(t, "npm")
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := copyFixture(src, dst); err != nil {
		t.Fatalf("testenv: fixture %s: %v", src, err)
	}
	return dst
}

// copyFixture installs src's packages when needed, copies its sources to dst
// and hard-links the installed node_modules there.
func copyFixture(src, dst string) error {
	modules, err := InstallDir(src)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := copyTree(src, dst, false); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if err := copyTree(modules, filepath.Join(dst, "node_modules"), true); err != nil {
		return fmt.Errorf("link node_modules: %w", err)
	}
	return nil
}

// InstallDir makes sure the packages of the project at src (a package.json
// and a package-lock.json) are installed in the cache and returns the
// node_modules directory. Concurrent callers, in this process or in other
// test binaries, wait for one install.
func InstallDir(src string) (string, error) {
	name := filepath.Base(src)
	key, err := lockKey(src)
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return cachedOnce(cache, name, key, "node_modules", func(stage string) error {
		for _, f := range []string{"package.json", "package-lock.json"} {
			if err := copyFile(filepath.Join(src, f), filepath.Join(stage, f), 0o644); err != nil {
				return err
			}
		}
		// npm install follows the lockfile. Not npm ci: npm 11 leaves the other
		// platforms' optional packages (@rollup/rollup-android-arm-eabi, ...) out
		// of the lockfiles it writes and then refuses them in npm ci
		// (https://github.com/npm/cli/issues/4828). Scripts of dependencies never
		// run.
		cmd := exec.Command("npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline")
		cmd.Dir = stage
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("npm ci in %s: %v\n%s", stage, err, tail(out, 2000))
		}
		return nil
	})
}

func lockKey(dir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", fmt.Errorf("fixture %s: %w", dir, err)
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// copyTree copies src to dst; with link, regular files are hard-linked
// (falling back to a copy across file systems). node_modules in src is skipped
// when copying a fixture's sources.
func copyTree(src, dst string, link bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if !link && d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".nuxt" || d.Name() == ".output") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			if link {
				if err := os.Link(p, target); err == nil {
					return nil
				} else if !errors.Is(err, syscall.EXDEV) {
					return err
				}
			}
			return copyFile(p, target, info.Mode().Perm())
		}
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

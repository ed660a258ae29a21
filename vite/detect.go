package vite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/internal/safefs"
)

// maxPackageJSON is the largest package.json Detect reads; real ones are a
// few kilobytes.
const maxPackageJSON = 4 << 20

// packageJSON holds the parts of a package.json that the launcher reads.
type packageJSON struct {
	Version              string            `json:"version"`
	Dependencies         map[string]string `json:"dependencies"`
	DevDependencies      map[string]string `json:"devDependencies"`
	PeerDependencies     map[string]string `json:"peerDependencies"`
	OptionalDependencies map[string]string `json:"optionalDependencies"`
}

// dependsOn reports whether the package declares name in any dependency list.
func (p *packageJSON) dependsOn(name string) bool {
	for _, deps := range []map[string]string{p.Dependencies, p.DevDependencies, p.PeerDependencies, p.OptionalDependencies} {
		if _, ok := deps[name]; ok {
			return true
		}
	}
	return false
}

// Detect tells which framework the project in dir uses: Nuxt when its
// package.json declares a nuxt dependency, Astro when it declares astro,
// else Vite. A missing package.json
// gives an error wrapping ErrNoPackageJSON, one that is not JSON, or not a
// regular file, an error wrapping ErrInvalidPackageJSON.
func Detect(dir string) (Framework, error) {
	p, err := readPackageJSON(dir)
	if err != nil {
		return Auto, err
	}
	return detect(p), nil
}

func detect(p *packageJSON) Framework {
	if p.dependsOn("nuxt") || p.dependsOn("nuxt-nightly") {
		return Nuxt
	}
	if p.dependsOn("astro") {
		return Astro
	}
	return Vite
}

// readPackageJSON reads and parses the package.json in dir. Code in a
// sandbox may have replaced it (the project is its to write, and this
// process may be root): it is read as safefs reads, so that a symbolic
// link to a host file is refused, not followed, and a FIFO does not block.
func readPackageJSON(dir string) (*packageJSON, error) {
	data, err := safefs.ReadFileIn(dir, "package.json", maxPackageJSON)
	var refused *safefs.Error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w in %s", ErrNoPackageJSON, dir)
	case errors.As(err, &refused):
		return nil, fmt.Errorf("%w in %s: %w", ErrInvalidPackageJSON, dir, err)
	case err != nil:
		return nil, fmt.Errorf("vitehost/vite: read package.json in %s: %w", dir, err)
	}
	p, err := parsePackageJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w in %s: %w", ErrInvalidPackageJSON, dir, err)
	}
	return p, nil
}

// parsePackageJSON parses the content of a package.json: one JSON object
// whose dependency lists, when present, map names to strings.
func parsePackageJSON(data []byte) (*packageJSON, error) {
	if len(data) > maxPackageJSON {
		return nil, fmt.Errorf("larger than %d bytes", maxPackageJSON)
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var p packageJSON
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// findPackage returns the directory of the installed package name as Node
// resolves it from a module in dir: dir/node_modules/name, then the same in
// each parent directory.
func findPackage(dir, name string) (string, bool) {
	for {
		p := filepath.Join(dir, "node_modules", name)
		if _, err := os.Stat(filepath.Join(p, "package.json")); err == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// installedVersion returns the version of the package found by following
// path from dir: each name is resolved from the previous package's real
// directory, as Node does for nested dependencies (nuxt's vite is the one
// that @nuxt/vite-builder resolves).
func installedVersion(dir string, path ...string) string {
	for _, name := range path {
		p, ok := findPackage(dir, name)
		if !ok {
			return ""
		}
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir = p
	}
	p, err := readPackageJSON(dir)
	if err != nil {
		return ""
	}
	return p.Version
}

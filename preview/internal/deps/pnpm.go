package deps

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// This file is the node's package store: pnpm, installed once into the
// cache from npm at a pinned version, resolves each set into
// pnpm-lock.yaml and installs it with every package version downloaded and
// unpacked once into CacheDir/store, content-addressed; a set's
// node_modules hard-links (or reflinks, where the file system can) what the
// store holds, so that a set that differs from a cached one by one package
// costs about that package. Its registry metadata cache (CacheDir/
// pnpm-cache, with --prefer-offline) lets a set of packages seen before
// resolve without waiting on the registry.
//
// The layout is pnpm's "hoisted" node-linker: a flat node_modules with no
// symlinks, as npm makes it, so that projects written against npm's layout
// (importing what their dependencies bring) run alike, and the sandbox's
// read-only /node_modules mount holds all of it. pnpm still writes
// node_modules/.pnpm/lock.yaml, the file Vite's optimizer hashes to decide
// whether its output is stale. Hard links need the store and the sets on
// one file system: both live in CacheDir. The sandbox mounts a set
// read-only, so no session can write through a link into the store.

// PNPMVersion is the pnpm release the store runs: the 10 line runs on Node
// 20 (11 and later need Node 22).
const PNPMVersion = "10.34.9"

// Names inside the cache directory that are not installed sets.
const (
	storeDir      = "store"      // pnpm's content-addressable store
	pnpmCacheDir  = "pnpm-cache" // pnpm's registry metadata cache
	toolsDir      = "tools"      // pnpm itself
	storeLockName = "store.lock" // installs share it; the store's pruning takes it alone
)

// pnpmLockfile is the lockfile pnpm writes.
const pnpmLockfile = "pnpm-lock.yaml"

// pnpmCode is the script that runs pnpm from a V8 code cache (Node 20 has
// no compile cache of its own): see its head. It is written into the tools
// directory under a name that hashes it, so that a service with another
// version of it never runs this one's.
//
//go:embed pnpmcode.cjs
var pnpmCode []byte

// pnpmCodeCache is the V8 code cache of pnpm's bundle, in the directory of
// the pnpm version it was made from.
const pnpmCodeCache = "pnpm.cjs.v8cache"

// pnpmCodePrefix starts the name of pnpmCode in the tools directory.
const pnpmCodePrefix = "pnpmcode-"

// pnpm runs the pinned pnpm of a cache directory.
type pnpm struct {
	dir string // the cache directory

	// installTool returns pnpm's script, installing pnpm into the cache
	// first when it is not there.
	installTool func(ctx context.Context) (string, error)
}

// codeRunner returns the path of pnpmCode in the tools directory, writing
// it there first when it is not.
func (p *pnpm) codeRunner() (string, error) {
	sum := sha256.Sum256(pnpmCode)
	path := filepath.Join(p.dir, toolsDir, pnpmCodePrefix+hex.EncodeToString(sum[:6])+".cjs")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pnpmcode-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(pnpmCode)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path) // whole, for runs at once
	}
	return path, err
}

func newPNPM(dir string, run func(ctx context.Context, argv []string, workDir, what string) error) *pnpm {
	p := &pnpm{dir: dir}
	// No mutex: the requests that find pnpm missing wait for one another on
	// a file lock, each with its own context, and check again once they
	// hold it.
	p.installTool = func(ctx context.Context) (string, error) {
		tool := filepath.Join(dir, toolsDir, "pnpm-"+PNPMVersion)
		script := filepath.Join(tool, "node_modules", "pnpm", "bin", "pnpm.cjs")
		if _, err := os.Stat(script); err == nil {
			return script, nil
		}
		if err := os.MkdirAll(filepath.Join(dir, toolsDir), 0o755); err != nil {
			return "", err
		}
		unlock, err := lockContext(ctx, tool+".lock")
		if err != nil {
			return "", err
		}
		defer unlock()
		if _, err := os.Stat(script); err == nil {
			return script, nil // installed while this waited
		}
		stage, err := os.MkdirTemp(filepath.Join(dir, toolsDir), ".stage-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(stage)
		argv := []string{"npm", "install", "--prefix", stage, "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
			"--no-package-lock", "pnpm@" + PNPMVersion}
		if err := run(ctx, argv, stage, "install of pnpm"); err != nil {
			return "", err
		}
		if err := os.Chmod(stage, 0o755); err != nil {
			return "", err
		}
		if err := os.Rename(stage, tool); err != nil {
			return "", err
		}
		return script, nil
	}
	return p
}

// args returns pnpm's command line for install with the flags every run
// shares: no lifecycle scripts, the node's store and metadata cache, cached
// metadata before the registry's, the hoisted layout. pnpm (script, its
// bin) runs from its code cache through runner (pnpmcode.cjs).
func (p *pnpm) args(script, runner string, extra ...string) []string {
	pkg := filepath.Dir(filepath.Dir(script))  // node_modules/pnpm
	version := filepath.Dir(filepath.Dir(pkg)) // tools/pnpm-<version>
	argv := []string{"node", runner, pkg, filepath.Join(version, pnpmCodeCache), "install",
		"--ignore-scripts",
		"--prefer-offline",
		"--store-dir", filepath.Join(p.dir, storeDir),
		"--config.cache-dir=" + filepath.Join(p.dir, pnpmCacheDir),
		"--config.node-linker=hoisted",
		"--config.update-notifier=false",
		// A node_modules seeded from another set (storeseed.go) that pnpm
		// would rather rebuild is rebuilt, without asking.
		"--config.confirm-modules-purge=false",
		"--reporter=append-only",
	}
	return append(argv, extra...)
}

// installArgv returns the command that resolves the package.json of its
// directory, starting from the pnpm-lock.yaml there if there is one, and
// installs what it resolved to, writing pnpm-lock.yaml.
func (p *pnpm) installArgv(ctx context.Context) ([]string, error) {
	script, err := p.installTool(ctx)
	if err != nil {
		return nil, err
	}
	runner, err := p.codeRunner()
	if err != nil {
		return nil, err
	}
	// pnpm freezes the lockfile by default where CI is set; the seeded
	// one is meant to change (https://pnpm.io/cli/install#--frozen-lockfile).
	return p.args(script, runner, "--no-frozen-lockfile"), nil
}

// storeLock returns the path of the lock that installs share and the
// store's pruning takes alone.
func (p *pnpm) storeLock() string { return filepath.Join(p.dir, storeLockName) }

// parsePNPMLockfile reads a pnpm-lock.yaml (lockfile version 9): the key
// hashes every line but the importers' declared specifiers, so that specs
// pnpm resolves alike share one install, as parseLockfile does for npm's.
// It reads the few fields it needs line by line, in the layout pnpm
// writes, rather than bring in a YAML parser.
func parsePNPMLockfile(data []byte) (resolution, error) {
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	if !strings.HasPrefix(text, "lockfileVersion:") {
		return resolution{}, errors.New("not a pnpm lockfile")
	}
	h := sha256.New()
	h.Write([]byte("pnpm\x00"))
	var res resolution
	section, importerDep := "", ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "specifier:") {
			continue
		}
		h.Write([]byte(line))
		h.Write([]byte{'\n'})
		if line == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case indent == 0:
			section, importerDep = strings.TrimSuffix(trimmed, ":"), ""
		case section == "packages" && indent == 2 && strings.HasSuffix(trimmed, ":"):
			res.packages++
		case section == "importers" && indent == 6:
			importerDep = strings.Trim(strings.TrimSuffix(trimmed, ":"), `'"`)
		case section == "importers" && indent == 8 && importerDep == "vite":
			if v, ok := strings.CutPrefix(trimmed, "version:"); ok && res.vite == "" {
				v, _, _ = strings.Cut(strings.TrimSpace(v), "(")
				res.vite = strings.Trim(v, `'"`)
			}
		}
	}
	if res.packages == 0 {
		return resolution{}, errors.New("the pnpm lockfile has no packages")
	}
	res.key = hex.EncodeToString(h.Sum(nil))[:24]
	return res, nil
}

// pnpmErrorRE is the line pnpm starts a failure with: " ERR_PNPM_CODE  reason",
// the spaces around the code thin ones (U+2009) when pnpm writes to a pipe.
var pnpmErrorRE = regexp.MustCompile(`^[\s\p{Zs}]*ERR_PNPM_([A-Z0-9_]+)[\s\p{Zs}]+(.*)$`)

// pnpmClientErrors are pnpm's codes for a set that cannot be resolved as
// declared: the client's, answered 400.
var pnpmClientErrors = map[string]bool{
	"NO_MATCHING_VERSION":                  true,
	"FETCH_404":                            true,
	"PEER_DEP_ISSUES":                      true,
	"SPEC_NOT_SUPPORTED_BY_ANY_RESOLVER":   true,
	"INVALID_PACKAGE_NAME":                 true,
	"NO_MATCHING_VERSION_INSIDE_WORKSPACE": true,
}

// parsePNPMError reads pnpm's output into the code and one-line reason a
// client may see (npmerror.go's npmFailure: its client() answers for
// npm's codes, so a client failure of pnpm's is given npm's equivalent).
func parsePNPMError(out string) npmFailure {
	var f npmFailure
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		m := pnpmErrorRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		code, reason := m[1], strings.TrimSpace(m[2])
		switch code {
		case "NO_MATCHING_VERSION":
			f.code = "ETARGET"
			reason, _, _ = strings.Cut(reason, " while fetching it from")
		case "FETCH_404":
			f.code = "E404"
			// "GET <registry>/name: Not Found - 404"; the line that names
			// the package comes later: "name is not in the npm registry...".
			for _, later := range lines[i+1:] {
				if strings.Contains(later, "is not in the npm registry") {
					reason = strings.TrimSpace(later)
					break
				}
			}
		default:
			if pnpmClientErrors[code] {
				f.code = "EUNSUPPORTEDPROTOCOL" // a client code of npm's, for client()
				if code == "PEER_DEP_ISSUES" {
					f.code = "ERESOLVE"
				}
			} else {
				f.code = "ERR_PNPM_" + code
			}
		}
		f.reason = reason
		break
	}
	if f.reason == "" {
		for i := len(lines) - 1; i >= 0; i-- {
			if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "Progress:") {
				f.reason = l
				break
			}
		}
	}
	f.reason = ScrubText(f.reason)
	if len(f.reason) > 300 {
		f.reason = f.reason[:300] + "…"
	}
	return f
}

// failure is a package manager's failure as a client may see it.
type failure interface {
	client() bool
	String() string
}

// pnpmFailure is a failure of pnpm's, in npm's codes.
type pnpmFailure struct{ npmFailure }

func (f pnpmFailure) String() string { return "p" + f.npmFailure.String() }

// parseFailure reads the output of the command argv.
func parseFailure(argv []string, out string) failure {
	if len(argv) > 1 && strings.HasPrefix(filepath.Base(argv[1]), pnpmCodePrefix) {
		return pnpmFailure{parsePNPMError(out)}
	}
	return parseNPMError(out)
}

// errNoTool is the error of a store whose pnpm could not be installed.
func errNoTool(err error) error {
	return fmt.Errorf("%w: installing pnpm %s: %w", ErrInstall, PNPMVersion, err)
}

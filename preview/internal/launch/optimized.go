package launch

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vitehost/vitehost/internal/runner"
	"github.com/vitehost/vitehost/preview/internal/deps"
	"github.com/vitehost/vitehost/sandbox"
)

// This file shares what Vite's dependency optimizer made between sessions.
// The optimizer's cache (cacheDir/deps, with its _metadata.json) is valid
// for another dev server when the lockfile and the config hash agree
// (vite/src/node/optimizer/index.ts: getConfigHash hashes root, resolve,
// the plugin names and optimizeDeps, among others). In the sandbox every
// project lives at the same path, so two sessions with the same dependency
// set and the same config get the same hash: optimized dependencies made
// once are copied into each new session's cache, and Vite uses them instead
// of optimizing again. Vite checks the hash itself, so a copy that does not
// fit is merely discarded and redone. Only a run of the service's own makes
// the shared copy (preview's Prepare, with the template, for its dependency
// set): a tenant's session runs the tenant's code beside its optimizer,
// which could change the output that the next tenant's browser would run
// (tried, in preview's TestHostilePoisonedOptimizer). A shared writable
// cacheDir was declined upstream
// (https://github.com/vitejs/vite/issues/9115): every session gets its own
// copy.

// optimizedMetadata is the optimizer's index file in its deps directory.
const optimizedMetadata = "_metadata.json"

// optimizedKey names the shared optimized dependencies of a session: its
// dependency set, the config the service gives Vite, the project's own
// config files (which may add plugins, aliases or optimizeDeps entries),
// and the runner's version (whose plugins Vite's config hash names too: a
// copy made by another version would be discarded by every session that
// got it, and redone each time).
func optimizedKey(set deps.Set, config map[string]any, plugins any, projectConfig map[string][]byte) string {
	h := sha256.New()
	h.Write([]byte(runner.Version()))
	h.Write([]byte(set.Key()))
	enc := json.NewEncoder(h)
	enc.Encode(config)
	enc.Encode(plugins)
	enc.Encode(projectConfig) // map keys encode sorted
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// sharedOptimized returns where the optimized dependencies of the project
// in root, with the settings s and the dependency set installed in
// modules, are shared.
func sharedOptimized(modules string, set deps.Set, s Settings, root *os.Root) string {
	return filepath.Join(filepath.Dir(modules), "optimized", optimizedKey(set, s.Config, s.Plugins, projectConfigFiles(root)))
}

// SeedOptimized copies the shared optimized dependencies in shared, if
// there are any, to dst (a project's cacheDir/deps, which must not exist),
// owned by the sandbox sb's user, who must rewrite them when the project's
// dependencies turn out to differ.
func SeedOptimized(shared, dst string, sb *sandbox.Config) (bool, error) {
	if _, err := os.Stat(filepath.Join(shared, optimizedMetadata)); err != nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	if err := os.CopyFS(dst, os.DirFS(shared)); err != nil {
		os.RemoveAll(dst)
		return false, err
	}
	if os.Geteuid() != 0 {
		return true, nil
	}
	uid, gid := cmp.Or(sb.UID, sandbox.DefaultUID), cmp.Or(sb.GID, sandbox.DefaultGID)
	return true, filepath.WalkDir(filepath.Dir(dst), func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// ShareOptimized copies a session's optimized dependencies (src, its
// cacheDir/deps) to shared, unless shared holds some already or src is not
// complete. The copy is staged beside shared and renamed into place, so
// that a seed never reads half of it; of concurrent copies one wins.
func ShareOptimized(src, shared string) error {
	if _, err := os.Stat(filepath.Join(shared, optimizedMetadata)); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(src, optimizedMetadata)); err != nil {
		return nil // nothing optimized (yet)
	}
	if err := os.MkdirAll(filepath.Dir(shared), 0o755); err != nil {
		return err
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	stage := shared + ".stage-" + hex.EncodeToString(rnd[:])
	defer os.RemoveAll(stage)
	err := os.CopyFS(stage, filteredFS{os.DirFS(src)})
	if err != nil {
		return err
	}
	if err := os.Rename(stage, shared); err != nil && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
		return err
	}
	return nil
}

// filteredFS hides what the optimizer writes while it works (temporary
// files beside the results).
type filteredFS struct{ fs.FS }

func (f filteredFS) Open(name string) (fs.File, error) {
	if strings.Contains(name, "_temp") {
		return nil, fs.ErrNotExist
	}
	return f.FS.Open(name)
}

func (f filteredFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(f.FS, name)
	out := entries[:0]
	for _, e := range entries {
		if !strings.Contains(e.Name(), "_temp") {
			out = append(out, e)
		}
	}
	return out, err
}

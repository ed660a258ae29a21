// Package runner holds the Node side of package vite: the script that starts
// a plain Vite dev server through Vite's JavaScript API, the one that starts
// Astro's dev server through Astro's, and the Nuxt layer that configures
// Nuxt's Vite servers. All are embedded in the Go binary and written to the
// user's cache directory on first use.
package runner

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Script is the source of runner.mjs; see the comment at its top for the
// protocol it speaks on stdin and stdout.
//
//go:embed runner.mjs
var Script []byte

// AstroScript is the source of astro.mjs, which speaks Script's protocol.
//
//go:embed astro.mjs
var AstroScript []byte

// NuxtLayer is the source of the Nuxt layer's nuxt.config.mjs.
//
//go:embed nuxtlayer/nuxt.config.mjs
var NuxtLayer []byte

// Env names the environment variable through which the Nuxt layer receives
// its launch settings as JSON.
const Env = "VITEHOST_NUXT"

var (
	scriptOnce sync.Once
	scriptPath string
	scriptErr  error

	astroOnce sync.Once
	astroPath string
	astroErr  error

	layerOnce sync.Once
	layerDir  string
	layerErr  error
)

// ScriptPath returns the path of a file that holds Script. The file is
// written once per content into the cache directory and reused afterwards.
func ScriptPath() (string, error) {
	scriptOnce.Do(func() {
		scriptPath, scriptErr = install(contentDir("runner", Script), "runner.mjs", Script)
	})
	return scriptPath, scriptErr
}

// AstroScriptPath returns the path of a file that holds AstroScript, written
// once per content like ScriptPath's.
func AstroScriptPath() (string, error) {
	astroOnce.Do(func() {
		astroPath, astroErr = install(contentDir("astro", AstroScript), "astro.mjs", AstroScript)
	})
	return astroPath, astroErr
}

// NuxtLayerDir returns a directory that holds NuxtLayer as nuxt.config.mjs,
// for nuxi dev --extends.
func NuxtLayerDir() (string, error) {
	layerOnce.Do(func() {
		layerDir = contentDir("nuxt-layer", NuxtLayer)
		_, layerErr = install(layerDir, "nuxt.config.mjs", NuxtLayer)
	})
	return layerDir, layerErr
}

// contentDir names a directory for data: the content hash in the name lets
// binaries of different versions share the cache without overwriting each
// other's files.
func contentDir(kind string, data []byte) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256(data)
	return filepath.Join(base, "vitehost", kind+"-"+hex.EncodeToString(sum[:6]))
}

// install writes data to dir/name unless the file already holds it; the
// write goes through a temporary file and a rename, so that concurrent
// processes never read half a script.
func install(dir, name string, data []byte) (string, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil && string(b) == string(data) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("vitehost/runner: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("vitehost/runner: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("vitehost/runner: write %s: %w", path, err)
	}
	return path, nil
}

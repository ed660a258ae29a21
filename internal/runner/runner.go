// Package runner holds the Node side of package vite: runner.mjs, which
// starts a plain Vite dev server through Vite's JavaScript API, astro.mjs,
// which starts Astro's dev server through Astro's, the Nuxt layer that
// configures Nuxt's Vite servers, and the modules of lib/ that they share.
// All are embedded in the Go binary and written together to the user's
// cache directory on first use, or given to a sandbox as files (Files).
package runner

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
)

//go:embed runner.mjs astro.mjs lib/*.mjs nuxtlayer/nuxt.config.mjs
var sources embed.FS

// Env names the environment variable through which the Nuxt layer receives
// its launch settings as JSON.
const Env = "VITEHOST_NUXT"

// File is one file of the runner: Name is its path relative to the
// runner's directory, with forward slashes.
type File struct {
	Name string
	Data []byte
}

// all holds every embedded file, in lexical order.
var all = func() []File {
	var files []File
	err := fs.WalkDir(sources, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := sources.ReadFile(name)
		files = append(files, File{Name: name, Data: data})
		return err
	})
	if err != nil {
		panic("vitehost/runner: embedded files: " + err.Error())
	}
	return files
}()

// Files returns the files that runner.mjs needs beside it, itself
// included: what a sandbox must hold, at these names below one directory,
// to run it.
func Files() []File {
	var out []File
	for _, f := range all {
		if f.Name == "runner.mjs" || path.Dir(f.Name) == "lib" {
			out = append(out, f)
		}
	}
	return out
}

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// dir returns the directory that holds every file of the runner. It is
// written once per content into the cache directory and reused afterwards.
func dir() (string, error) {
	installOnce.Do(func() {
		installDir = contentDir("runner", all)
		for _, f := range all {
			if installErr = install(installDir, f.Name, f.Data); installErr != nil {
				return
			}
		}
	})
	return installDir, installErr
}

// ScriptPath returns the path of runner.mjs; see the comment at its top for
// the protocol it speaks on stdin and stdout.
func ScriptPath() (string, error) {
	d, err := dir()
	return filepath.Join(d, "runner.mjs"), err
}

// AstroScriptPath returns the path of astro.mjs, which speaks runner.mjs's
// protocol.
func AstroScriptPath() (string, error) {
	d, err := dir()
	return filepath.Join(d, "astro.mjs"), err
}

// NuxtLayerDir returns a directory that holds the Nuxt layer's
// nuxt.config.mjs, for nuxi dev --extends.
func NuxtLayerDir() (string, error) {
	d, err := dir()
	return filepath.Join(d, "nuxtlayer"), err
}

// contentDir names a directory for files: the content hash in the name
// lets binaries of different versions share the cache without overwriting
// each other's files.
func contentDir(kind string, files []File) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "vitehost", kind+"-"+contentHash(files)[:12])
}

// contentHash is a hash of files, names and contents.
func contentHash(files []File) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Version identifies the runner by the content of its files. What a dev
// server made depends on it besides the project: the plugins the runner
// adds are part of the config hash with which Vite's optimizer marks its
// output, so optimized dependencies made by another version are redone.
var Version = sync.OnceValue(func() string { return contentHash(all)[:16] })

// install writes data to dir/name unless the file already holds it; the
// write goes through a temporary file and a rename, so that concurrent
// processes never read half a script.
func install(dir, name string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if b, err := os.ReadFile(p); err == nil && string(b) == string(data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("vitehost/runner: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+path.Base(name)+".tmp-*")
	if err != nil {
		return fmt.Errorf("vitehost/runner: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("vitehost/runner: write %s: %w", p, err)
	}
	return nil
}

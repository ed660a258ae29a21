// Package launch is what a session's dev server starts with: the inline
// Vite config and plugins that follow from a project's declared
// dependencies and tsconfig paths (launch.go, with package tsconfig), the
// optimized dependencies that sessions with the same settings share
// (optimized.go), and the template that a project without a package.json
// starts from (template.go).
//
// It knows nothing of sessions: its functions take a project's files,
// dependency set and options, and return settings, paths and files.
package launch

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/internal/safefs"
	"github.com/vitehost/vitehost/preview/internal/deps"
	"github.com/vitehost/vitehost/preview/internal/tsconfig"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// A project that has a vite.config.* of its own (in the sandbox, or with
// AllowConfig) runs with it, and the service adds only what it must: the
// root, the cache directory, the watcher's exceptions. A project without
// one gets a config that follows from its declared dependencies (their
// plugins) and its tsconfig paths (aliases).

// knownPlugins maps a declared package to the plugin the generated config
// adds for it.
var knownPlugins = []struct {
	pkg    string
	plugin vite.Plugin
}{
	{"@vitejs/plugin-react", vite.Plugin{Module: "@vitejs/plugin-react"}},
	{"@vitejs/plugin-react-swc", vite.Plugin{Module: "@vitejs/plugin-react-swc"}},
	{"@vitejs/plugin-vue", vite.Plugin{Module: "@vitejs/plugin-vue"}},
	{"@vitejs/plugin-vue-jsx", vite.Plugin{Module: "@vitejs/plugin-vue-jsx"}},
	{"@sveltejs/vite-plugin-svelte", vite.Plugin{Module: "@sveltejs/vite-plugin-svelte", Export: "svelte"}},
	{"@preact/preset-vite", vite.Plugin{Module: "@preact/preset-vite"}},
	{"vite-plugin-solid", vite.Plugin{Module: "vite-plugin-solid"}},
	{"@tailwindcss/vite", vite.Plugin{Module: "@tailwindcss/vite"}},
}

// viteConfigNames are the config files Vite looks for in the root.
var viteConfigNames = []string{"vite.config.js", "vite.config.mjs", "vite.config.ts", "vite.config.cjs", "vite.config.mts", "vite.config.cts"}

// Project is what a dev server's settings follow from.
type Project struct {
	Files   *os.Root // the project's files
	Dir     string   // the project's directory on the host
	Modules string   // the node_modules that Deps are installed in
	Deps    deps.Set // the project's dependency set

	// Sandboxed: the dev server sees Dir at sandbox.ProjectDir and Modules
	// at sandbox.ModulesDir.
	Sandboxed bool
	// AllowConfig: the project's own config files run.
	AllowConfig bool
	// TempPrefix names the temporary files of the service's atomic writes,
	// which the dev server's watcher ignores.
	TempPrefix string
}

// Settings is what a dev server starts with, in the terms of vite.Options.
type Settings struct {
	Config       map[string]any // the inline config
	Plugins      []vite.Plugin  // those of the declared packages, unless the project's config names them
	NoConfigFile bool           // load no config file of the project's

	// Optimized is where the optimized dependencies of projects with these
	// settings are shared (optimized.go); empty outside the sandbox, where
	// projects do not share one path.
	Optimized string
}

// For returns the settings of the dev server of p.
func For(p Project) Settings {
	root := p.Dir
	allow := []string{p.Dir, p.Modules}
	if p.Sandboxed {
		root = sandbox.ProjectDir
		allow = []string{root, sandbox.ModulesDir}
	} else if real, err := filepath.EvalSymlinks(p.Modules); err == nil && real != p.Modules {
		allow = append(allow, real)
	}
	cfg := map[string]any{
		"root": root,
		// Sessions share node_modules; the optimizer's output is per session.
		"cacheDir":    filepath.Join(root, ".vite-cache"),
		"clearScreen": false,
		"server": map[string]any{
			"fs": map[string]any{"allow": allow},
			// The service's atomic writes go through temporary files.
			"watch": map[string]any{"ignored": []string{"**/" + p.TempPrefix + "*", "**/.vite-cache/**"}},
		},
	}
	s := Settings{Config: cfg, NoConfigFile: !p.AllowConfig}
	if !p.AllowConfig || !hasViteConfig(p.Files) {
		s.Plugins = plugins(p.Deps, p.AllowConfig)
		for _, name := range tsconfig.Names {
			data, err := safefs.ReadFile(p.Files, name, maxProjectConfig)
			if err != nil {
				continue
			}
			if aliases := tsconfig.Aliases(data, root); len(aliases) > 0 {
				cfg["resolve"] = map[string]any{"alias": aliases}
				break
			}
		}
	} // else the project's config names its plugins and aliases
	if p.Sandboxed {
		s.Optimized = sharedOptimized(p.Modules, p.Deps, s, p.Files)
	}
	return s
}

// plugins returns the plugins of the known packages that set declares.
func plugins(set deps.Set, allowConfig bool) []vite.Plugin {
	var out []vite.Plugin
	for _, k := range knownPlugins {
		if !set.Has(k.pkg) {
			continue
		}
		p := k.plugin
		if p.Module == "@sveltejs/vite-plugin-svelte" && !allowConfig {
			// svelte.config.js would run on the host.
			p.Options = map[string]any{"configFile": false}
		}
		out = append(out, p)
	}
	return out
}

// hasViteConfig reports whether the project in root has a Vite config file.
func hasViteConfig(root *os.Root) bool {
	for _, name := range viteConfigNames {
		if _, err := root.Lstat(name); err == nil {
			return true
		}
	}
	return false
}

// projectConfigFiles returns the root config files of the project in root
// that change Vite's dependency optimization (its key in optimized.go). One
// that is not a regular file, or too large, counts as its error: Vite
// checks the key itself, and a copy that does not fit is redone.
func projectConfigFiles(root *os.Root) map[string][]byte {
	out := map[string][]byte{}
	for _, name := range append(viteConfigNames, tsconfig.Names...) {
		data, err := safefs.ReadFile(root, name, maxProjectConfig)
		var refused *safefs.Error
		switch {
		case err == nil:
			out[name] = data
		case errors.As(err, &refused):
			out[name] = []byte(refused.Reason())
		}
	}
	return out
}

// maxProjectConfig bounds the bytes of a project's config file that the
// service reads (the files the client sends are bounded by
// Limits.MaxFileBytes; the dev server may have replaced them since).
const maxProjectConfig = 8 << 20

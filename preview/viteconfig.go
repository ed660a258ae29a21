package preview

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/internal/safefs"
	"github.com/vitehost/vitehost/preview/internal/tsconfig"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// This file builds what each session's dev server starts with. A project
// that has a vite.config.* of its own (in the sandbox, or with
// AllowConfigFiles) runs with it, and the service adds only what it must:
// the root, the cache directory, the watcher's exceptions. A project
// without one gets a config that follows from its declared dependencies
// (their plugins) and its tsconfig paths (aliases).

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

// launch is what a session's dev server starts with.
type launch struct {
	config   map[string]any
	plugins  []vite.Plugin
	noConfig bool // load no config file of the project's
}

// sessionLaunch returns the launch settings of the project in dir (open as
// files), whose dependencies (deps) are installed in modules. sandboxed: the
// dev server sees the project at sandbox.ProjectDir and modules at
// sandbox.ModulesDir. allowConfig: the project's own config files run.
func sessionLaunch(files *os.Root, dir, modules string, deps Deps, sandboxed, allowConfig bool) launch {
	root := dir
	allow := []string{dir, modules}
	if sandboxed {
		root = sandbox.ProjectDir
		allow = []string{root, sandbox.ModulesDir}
	} else if real, err := filepath.EvalSymlinks(modules); err == nil && real != modules {
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
			"watch": map[string]any{"ignored": []string{"**/" + tmpPrefix + "*", "**/.vite-cache/**"}},
		},
	}
	l := launch{config: cfg, noConfig: !allowConfig}
	if allowConfig && hasViteConfig(files) {
		return l // the project's config names its plugins and aliases
	}
	for _, k := range knownPlugins {
		if !deps.Has(k.pkg) {
			continue
		}
		p := k.plugin
		if p.Module == "@sveltejs/vite-plugin-svelte" && !allowConfig {
			// svelte.config.js would run on the host.
			p.Options = map[string]any{"configFile": false}
		}
		l.plugins = append(l.plugins, p)
	}
	for _, name := range tsconfig.Names {
		data, err := safefs.ReadFile(files, name, maxProjectConfig)
		if err != nil {
			continue
		}
		if aliases := tsconfig.Aliases(data, root); len(aliases) > 0 {
			cfg["resolve"] = map[string]any{"alias": aliases}
			break
		}
	}
	return l
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

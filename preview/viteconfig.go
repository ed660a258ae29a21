package preview

import (
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/vite"
)

// This file builds each session's Vite config. A client's vite.config.* is
// never loaded (it would run on the host); the config follows from the
// declared dependencies instead.

// knownPlugins maps a declared package to the plugin the config adds for it.
// Svelte's plugin is told not to load svelte.config.js, which would run on
// the host too.
var knownPlugins = []struct {
	pkg    string
	plugin vite.Plugin
}{
	{"@vitejs/plugin-react", vite.Plugin{Module: "@vitejs/plugin-react"}},
	{"@vitejs/plugin-react-swc", vite.Plugin{Module: "@vitejs/plugin-react-swc"}},
	{"@vitejs/plugin-vue", vite.Plugin{Module: "@vitejs/plugin-vue"}},
	{"@vitejs/plugin-vue-jsx", vite.Plugin{Module: "@vitejs/plugin-vue-jsx"}},
	{"@sveltejs/vite-plugin-svelte", vite.Plugin{Module: "@sveltejs/vite-plugin-svelte", Export: "svelte", Options: map[string]any{"configFile": false}}},
	{"@preact/preset-vite", vite.Plugin{Module: "@preact/preset-vite"}},
	{"vite-plugin-solid", vite.Plugin{Module: "vite-plugin-solid"}},
	{"@tailwindcss/vite", vite.Plugin{Module: "@tailwindcss/vite"}},
}

// plugins returns the Vite plugins for a dependency set, in a fixed order.
func plugins(deps Deps) []vite.Plugin {
	var out []vite.Plugin
	for _, k := range knownPlugins {
		if deps.Has(k.pkg) {
			out = append(out, k.plugin)
		}
	}
	return out
}

// viteConfig returns the inline config of a session rooted at dir whose
// node_modules links to modules (the shared install).
func viteConfig(dir, modules string) map[string]any {
	allow := []string{dir, modules}
	if real, err := filepath.EvalSymlinks(modules); err == nil && real != modules {
		allow = append(allow, real)
	}
	var aliases []alias
	for _, name := range tsconfigNames {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		if aliases = tsconfigAliases(data, dir); len(aliases) > 0 {
			break
		}
	}
	cfg := map[string]any{
		"root": dir,
		// Sessions share node_modules; the optimizer's output is per session.
		"cacheDir":    filepath.Join(dir, ".vite-cache"),
		"clearScreen": false,
		"server": map[string]any{
			"fs": map[string]any{"allow": allow},
			// The service's atomic writes go through temporary files.
			"watch": map[string]any{"ignored": []string{"**/" + tmpPrefix + "*", "**/.vite-cache/**"}},
		},
	}
	if len(aliases) > 0 {
		cfg["resolve"] = map[string]any{"alias": aliases}
	}
	return cfg
}

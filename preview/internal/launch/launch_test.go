package launch

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview/internal/deps"
	"github.com/vitehost/vitehost/preview/internal/tsconfig"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// project returns a Project of files (name to content) in a new directory,
// with its dependencies in modules beside it.
func project(t *testing.T, files map[string]string, set deps.Set) Project {
	t.Helper()
	base := t.TempDir()
	dir, modules := filepath.Join(base, "p"), filepath.Join(base, "set", "node_modules")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.MkdirAll(modules, 0o755))
	for name, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	t.Cleanup(func() { root.Close() })
	return Project{Files: root, Dir: dir, Modules: modules, Deps: set, TempPrefix: ".tmp-"}
}

func TestFor(t *testing.T) {
	react := deps.Set{"vite": "^8.0.0", "react": "^19.0.0", "@vitejs/plugin-react": "^6.0.0"}
	svelte := deps.Set{"vite": "^8.0.0", "@sveltejs/vite-plugin-svelte": "^6.0.0", "@tailwindcss/vite": "^4.0.0"}
	paths := `{"compilerOptions": {"paths": {"@/*": ["./src/*"]}}}`
	for _, tc := range []struct {
		name        string
		files       map[string]string
		set         deps.Set
		sandboxed   bool
		allowConfig bool

		root         string // "": the project's directory
		plugins      []vite.Plugin
		alias        []tsconfig.Alias // nil: no resolve
		noConfigFile bool
	}{{
		name:         "react",
		set:          react,
		plugins:      []vite.Plugin{{Module: "@vitejs/plugin-react"}},
		noConfigFile: true,
	}, {
		name:         "sandboxed",
		set:          react,
		sandboxed:    true,
		root:         sandbox.ProjectDir,
		plugins:      []vite.Plugin{{Module: "@vitejs/plugin-react"}},
		noConfigFile: true,
	}, {
		name: "svelte's config file does not run",
		set:  svelte,
		plugins: []vite.Plugin{
			{Module: "@sveltejs/vite-plugin-svelte", Export: "svelte", Options: map[string]any{"configFile": false}},
			{Module: "@tailwindcss/vite"},
		},
		noConfigFile: true,
	}, {
		name:        "svelte's config file runs",
		set:         svelte,
		allowConfig: true,
		plugins:     []vite.Plugin{{Module: "@sveltejs/vite-plugin-svelte", Export: "svelte"}, {Module: "@tailwindcss/vite"}},
	}, {
		name:        "the project's vite config names plugins and aliases",
		files:       map[string]string{"vite.config.ts": "export default {}", "tsconfig.json": paths},
		set:         react,
		allowConfig: true,
	}, {
		name:         "the project's vite config does not run",
		files:        map[string]string{"vite.config.ts": "export default {}", "tsconfig.json": paths},
		set:          react,
		plugins:      []vite.Plugin{{Module: "@vitejs/plugin-react"}},
		alias:        []tsconfig.Alias{{Find: "@", Replacement: "src"}},
		noConfigFile: true,
	}, {
		name: "the first tsconfig with paths",
		files: map[string]string{
			"tsconfig.json":     `{"files": [], "references": [{"path": "./tsconfig.app.json"}]}`,
			"tsconfig.app.json": `{"compilerOptions": {"paths": {"~/*": ["./app/*"]}}}`,
			"jsconfig.json":     `{"compilerOptions": {"paths": {"#/*": ["./js/*"]}}}`,
		},
		set:          deps.Set{"vite": "^8.0.0"},
		alias:        []tsconfig.Alias{{Find: "~", Replacement: "app"}},
		noConfigFile: true,
	}, {
		name:         "aliases under the sandbox's root",
		files:        map[string]string{"jsconfig.json": paths},
		set:          deps.Set{"vite": "^8.0.0"},
		sandboxed:    true,
		root:         sandbox.ProjectDir,
		alias:        []tsconfig.Alias{{Find: "@", Replacement: "src"}},
		noConfigFile: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := project(t, tc.files, tc.set)
			p.Sandboxed, p.AllowConfig = tc.sandboxed, tc.allowConfig
			s := For(p)

			root, allow := p.Dir, []string{p.Dir, p.Modules}
			if tc.root != "" {
				root, allow = tc.root, []string{tc.root, sandbox.ModulesDir}
			}
			want := map[string]any{
				"root":        root,
				"cacheDir":    filepath.Join(root, ".vite-cache"),
				"clearScreen": false,
				"server": map[string]any{
					"fs":    map[string]any{"allow": allow},
					"watch": map[string]any{"ignored": []string{"**/.tmp-*", "**/.vite-cache/**"}},
				},
			}
			if tc.alias != nil {
				for i := range tc.alias {
					tc.alias[i].Replacement = filepath.Join(root, tc.alias[i].Replacement)
				}
				want["resolve"] = map[string]any{"alias": tc.alias}
			}
			assert.Equal(t, want, s.Config)
			assert.Equal(t, tc.plugins, s.Plugins)
			assert.Equal(t, tc.noConfigFile, s.NoConfigFile)
			if tc.sandboxed {
				assert.Equal(t, filepath.Join(filepath.Dir(p.Modules), "optimized"), filepath.Dir(s.Optimized))
			} else {
				assert.Empty(t, s.Optimized, "projects share optimized dependencies only in the sandbox")
			}
		})
	}
}

// TestForLinkedModules: without the sandbox, Vite resolves node_modules to
// its real path, which the dev server must be allowed to serve.
func TestForLinkedModules(t *testing.T) {
	p := project(t, nil, deps.Set{"vite": "^8.0.0"})
	link := filepath.Join(t.TempDir(), "node_modules")
	require.NoError(t, os.Symlink(p.Modules, link))
	real := p.Modules
	p.Modules = link
	s := For(p)
	fsCfg := s.Config["server"].(map[string]any)["fs"].(map[string]any)
	assert.Equal(t, []string{p.Dir, link, real}, fsCfg["allow"])
}

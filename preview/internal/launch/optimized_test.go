package launch

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview/internal/deps"
	"github.com/vitehost/vitehost/sandbox"
)

// TestOptimizedShared: projects share optimized dependencies when their
// dependency set, their settings and their config files are the same.
func TestOptimizedShared(t *testing.T) {
	react := deps.Set{"vite": "^8.0.0", "react": "^19.0.0", "@vitejs/plugin-react": "^6.0.0"}
	tsconfig := map[string]string{"tsconfig.json": `{"compilerOptions": {"paths": {"@/*": ["./src/*"]}}}`}
	shared := func(files map[string]string, set deps.Set) string {
		p := project(t, files, set)
		p.Sandboxed = true
		// Every project here has its dependencies at one path, as projects
		// of one set do.
		p.Modules = "/deps/set/node_modules"
		return For(p).Optimized
	}
	base := shared(tsconfig, react)
	assert.Equal(t, base, shared(tsconfig, react), "another project with the same set and files")
	assert.Equal(t, base, shared(map[string]string{"tsconfig.json": tsconfig["tsconfig.json"], "src/App.tsx": "x"}, react),
		"the project's sources do not count")
	for name, other := range map[string]string{
		"another set":         shared(tsconfig, deps.Set{"vite": "^8.0.0", "react": "^19.0.0"}),
		"another tsconfig":    shared(map[string]string{"tsconfig.json": `{}`}, react),
		"a vite config":       shared(map[string]string{"tsconfig.json": tsconfig["tsconfig.json"], "vite.config.js": "export default {}"}, react),
		"no tsconfig":         shared(nil, react),
		"a config not a file": shared(map[string]string{"tsconfig.json": tsconfig["tsconfig.json"], "vite.config.ts/x": ""}, react),
	} {
		assert.NotEqual(t, base, other, name)
		assert.Equal(t, filepath.Dir(base), filepath.Dir(other), name)
	}
}

func TestShareAndSeedOptimized(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
		require.NoError(t, os.WriteFile(name, []byte(content), 0o644))
	}
	src, shared := filepath.Join(dir, "p", ".vite-cache", "deps"), filepath.Join(dir, "optimized", "key")
	sb := &sandbox.Config{}

	// Nothing to share, nothing to seed.
	write(filepath.Join(src, "react.js"), "half")
	require.NoError(t, ShareOptimized(src, shared))
	assert.NoDirExists(t, shared, "no _metadata.json: the optimizer is not done")
	dst := filepath.Join(dir, "q", ".vite-cache", "deps")
	ok, err := SeedOptimized(shared, dst, sb)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.NoDirExists(t, dst)

	// The optimizer's output, without its temporary files.
	write(filepath.Join(src, optimizedMetadata), `{"hash":"1"}`)
	write(filepath.Join(src, "react.js"), "react")
	write(filepath.Join(src, "chunk_temp.js"), "temp")
	write(filepath.Join(src, "deps_temp_1", "x.js"), "temp")
	require.NoError(t, ShareOptimized(src, shared))
	assert.FileExists(t, filepath.Join(shared, optimizedMetadata))
	assert.FileExists(t, filepath.Join(shared, "react.js"))
	assert.NoFileExists(t, filepath.Join(shared, "chunk_temp.js"))
	assert.NoDirExists(t, filepath.Join(shared, "deps_temp_1"))
	staged, err := filepath.Glob(shared + ".stage-*")
	require.NoError(t, err)
	assert.Empty(t, staged, "the staged copy is renamed or removed")

	// What is shared stays: the first copy wins.
	write(filepath.Join(src, "react.js"), "another")
	require.NoError(t, ShareOptimized(src, shared))
	got, err := os.ReadFile(filepath.Join(shared, "react.js"))
	require.NoError(t, err)
	assert.Equal(t, "react", string(got))

	ok, err = SeedOptimized(shared, dst, sb)
	require.NoError(t, err)
	assert.True(t, ok)
	got, err = os.ReadFile(filepath.Join(dst, "react.js"))
	require.NoError(t, err)
	assert.Equal(t, "react", string(got))
	if os.Geteuid() == 0 {
		// The sandbox's user rewrites them when the project's dependencies
		// differ: the cache directory and all it holds are theirs.
		for _, p := range []string{filepath.Dir(dst), dst, filepath.Join(dst, "react.js")} {
			info, err := os.Lstat(p)
			require.NoError(t, err)
			st := info.Sys().(*syscall.Stat_t)
			assert.Equal(t, uint32(sandbox.DefaultUID), st.Uid, p)
			assert.Equal(t, uint32(sandbox.DefaultGID), st.Gid, p)
		}
	}
}

package deps

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestPNPMCodeCache runs pnpm from its V8 code cache (pnpmcode.cjs): the
// first install writes the cache beside pnpm; the next ones read it (V8
// accepts it, so it is not written again) and install, pnpm's worker
// threads included; a cache V8 rejects is written anew, and the install
// still succeeds.
func TestPNPMCodeCache(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "npm")
	testenv.LookPath(t, "node")
	t.Setenv("CI", "true")
	dir := t.TempDir()
	c := New(dir, &Options{MaxBytes: -1, MaxInstalls: 1, Logger: testenv.Logger(t)})
	t.Cleanup(c.Close)
	require.NotNil(t, c.pnpm)
	cache := filepath.Join(dir, toolsDir, "pnpm-"+PNPMVersion, pnpmCodeCache)

	install := func(set Set) string {
		t.Helper()
		modules, err := c.Ensure(context.Background(), holdFor(t), set)
		require.NoError(t, err)
		return modules
	}
	a := install(Set{"clsx": "^2.1.0"})
	assert.FileExists(t, filepath.Join(a, "clsx", "package.json"))
	info, err := os.Stat(cache)
	require.NoError(t, err, "the first run writes the code cache")
	assert.Greater(t, info.Size(), int64(1<<20), "the bundle's compiled functions, not only its top level")
	written := inodeOf(t, cache)
	runners, err := filepath.Glob(filepath.Join(dir, toolsDir, "pnpmcode-*.cjs"))
	require.NoError(t, err)
	assert.Len(t, runners, 1)

	b := install(Set{"clsx": "^2.1.0", "ms": "^2.1.3"})
	assert.FileExists(t, filepath.Join(b, "ms", "index.js"), "pnpm's workers fetched and linked ms")
	assert.Equal(t, written, inodeOf(t, cache), "V8 accepted the cache: the run did not write it again")

	garbage := []byte("not a code cache")
	require.NoError(t, os.WriteFile(cache, garbage, 0o644))
	d := install(Set{"escape-html": "^1.0.3"})
	assert.FileExists(t, filepath.Join(d, "escape-html", "index.js"))
	data, err := os.ReadFile(cache)
	require.NoError(t, err)
	assert.NotEqual(t, garbage, data, "a rejected cache is written anew")
	assert.Greater(t, len(data), 1<<20)
	leftovers, err := filepath.Glob(cache + ".*")
	require.NoError(t, err)
	assert.Empty(t, leftovers, "no temporary files")
}

// TestPNPMCodeRunner runs a stand-in for pnpm's bundle through
// pnpmcode.cjs: the bundle sees what it sees when pnpm's bin starts it
// (its arguments, its bin as require.main and argv[1], its own directory),
// its exit code is the process's; a run that fails writes no code cache,
// the first that succeeds does, and the next accepts it.
func TestPNPMCodeRunner(t *testing.T) {
	testenv.LookPath(t, "node")
	dir := t.TempDir()
	pkg := filepath.Join(dir, "node_modules", "pnpm")
	require.NoError(t, os.MkdirAll(filepath.Join(pkg, "dist"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "dist", "pnpm.cjs"), []byte(`
const seen = {
  argv: process.argv.slice(1),
  main: require.main.filename,
  dirname: __dirname,
  filename: __filename,
  exportsThis: this === module.exports,
  started: typeof globalThis.pnpm__startedAt,
  sibling: require('./sibling.cjs'),
}
process.stdout.write(JSON.stringify(seen))
process.exitCode = process.argv.includes('--fail') ? 3 : 0
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "dist", "sibling.cjs"), []byte(`module.exports = 'required'`), 0o644))
	p := &pnpm{dir: dir}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, toolsDir), 0o755))
	runner, err := p.codeRunner()
	require.NoError(t, err)
	again, err := p.codeRunner()
	require.NoError(t, err)
	assert.Equal(t, runner, again)
	cache := filepath.Join(dir, pnpmCodeCache)

	run := func(arg string) (map[string]any, error) {
		t.Helper()
		out, err := exec.Command("node", runner, pkg, cache, "install", arg).Output()
		var seen map[string]any
		require.NoError(t, json.Unmarshal(out, &seen), "%s", out)
		return seen, err
	}
	bin := filepath.Join(pkg, "bin", "pnpm.cjs")
	want := func(arg string) map[string]any {
		return map[string]any{
			"argv":        []any{bin, "install", arg},
			"main":        bin,
			"dirname":     filepath.Join(pkg, "dist"),
			"filename":    filepath.Join(pkg, "dist", "pnpm.cjs"),
			"exportsThis": true,
			"started":     "number",
			"sibling":     "required",
		}
	}
	seen, err := run("--fail")
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 3, exit.ExitCode(), "the bundle's exit code")
	assert.Equal(t, want("--fail"), seen)
	assert.NoFileExists(t, cache, "a run that failed writes no cache")

	seen, err = run("--x")
	require.NoError(t, err)
	assert.Equal(t, want("--x"), seen)
	require.FileExists(t, cache, "the first run that succeeds writes the cache")
	written := inodeOf(t, cache)
	seen, err = run("--x")
	require.NoError(t, err)
	assert.Equal(t, want("--x"), seen)
	assert.Equal(t, written, inodeOf(t, cache), "the next run accepted it")
}

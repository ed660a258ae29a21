package runner

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// long bounds a node process of these tests; they assert outcomes, never
// durations.
const long = 5 * time.Minute

// TestNode runs the runner's own tests (test/*.test.mjs, node --test):
// package resolution against Node's, source map lookup, line fitting,
// watcher filtering, stdin reading.
func TestNode(t *testing.T) {
	node := testenv.LookPath(t, "node")
	files, err := filepath.Glob(filepath.Join("test", "*.test.mjs"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	// --test-reporter=tap names every failing case in the output, on
	// every Node from 20 on.
	cmd := exec.CommandContext(ctx, node, append([]string{"--test", "--test-reporter=tap"}, files...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	assert.Regexp(t, `(?m)^# fail 0$`, string(out))
	assert.NotRegexp(t, `(?m)^# pass 0$`, string(out))
}

var relImport = regexp.MustCompile(`(?m)^import [^'"]*['"](\.[^'"]+)['"]`)

// TestFilesHoldEveryImport checks that Files, what a sandbox holds, has
// every module that runner.mjs imports, transitively.
func TestFilesHoldEveryImport(t *testing.T) {
	have := map[string][]byte{}
	for _, f := range Files() {
		have[f.Name] = f.Data
	}
	require.Contains(t, have, "runner.mjs")
	queue := []string{"runner.mjs"}
	seen := map[string]bool{"runner.mjs": true}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		for _, m := range relImport.FindAllSubmatch(have[name], -1) {
			dep := path.Join(path.Dir(name), string(m[1]))
			if !assert.Contains(t, have, dep, "%s imports %s", name, dep) || seen[dep] {
				continue
			}
			seen[dep] = true
			queue = append(queue, dep)
		}
	}
	assert.Len(t, seen, len(have), "every file of Files is imported")
}

// TestRunnerLoadsFromFiles runs runner.mjs from a directory that holds
// Files only, as a sandbox does, on a project without vite: every module
// loads, and the runner reports the missing vite on the protocol.
func TestRunnerLoadsFromFiles(t *testing.T) {
	node := testenv.LookPath(t, "node")
	dir := t.TempDir()
	for _, f := range Files() {
		require.NoError(t, install(dir, f.Name, f.Data))
	}
	project := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "runner.mjs"), project)
	cmd.Dir = project
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	require.Error(t, err, "the runner exits 1 without vite")
	line := firstLine(t, stdout.Bytes())
	assert.Equal(t, "error", line["vitehost"], "stderr: %s", stderr.String())
	assert.Equal(t, "VITE_NOT_FOUND", line["code"])
	assert.Contains(t, line["message"], `cannot find package "vite"`)
}

// TestInstalledPaths checks that the entry points and the Nuxt layer are
// installed beside the modules they import.
func TestInstalledPaths(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	script, err := ScriptPath()
	require.NoError(t, err)
	astro, err := AstroScriptPath()
	require.NoError(t, err)
	layer, err := NuxtLayerDir()
	require.NoError(t, err)
	d := filepath.Dir(script)
	assert.Equal(t, d, filepath.Dir(astro))
	assert.Equal(t, d, filepath.Dir(layer))
	for _, f := range all {
		b, err := os.ReadFile(filepath.Join(d, filepath.FromSlash(f.Name)))
		require.NoError(t, err)
		assert.Equal(t, string(f.Data), string(b), f.Name)
	}
	assert.FileExists(t, filepath.Join(layer, "nuxt.config.mjs"))
}

func firstLine(t *testing.T, out []byte) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"vitehost":`) {
			var m map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
			return m
		}
	}
	t.Fatalf("no protocol line in %q", out)
	return nil
}

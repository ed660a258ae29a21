package vite_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

// TestSpare warms a spare up on one copy of the React fixture, moves
// another project into its directory under that project's name, and starts
// the project's dev server in the spare: the project's page and modules
// are served by the spare's one process, and Stop ends it.
func TestSpare(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	project, modules := sandboxFixture(t, "vite8-react")
	slot := filepath.Join(filepath.Dir(project), "slot")
	require.NoError(t, os.CopyFS(slot, os.DirFS(project)))
	sb := sandboxConfig(t, modules, randomLabel("spare"))
	ctx := context.Background()

	sp, err := vite.StartSpare(ctx, slot, &vite.Options{Sandbox: sb, Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { sp.Close() })
	require.True(t, sp.Alive())
	assert.Len(t, testenv.NodeProcesses(), 1, "the spare's runner waits")

	// Another project takes the spare's directory, and its name.
	app := filepath.Join(project, "src", "App.jsx")
	src, err := os.ReadFile(app)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(app, []byte(strings.Replace(string(src), "Hello from the fixture", "Hello from the spare", 1)), 0o644))
	moveInto(t, project, slot)

	slot2 := filepath.Join(filepath.Dir(project), "slot2")
	require.NoError(t, os.CopyFS(slot2, os.DirFS(project)))
	_, err = sp.Start(ctx, slot2, &vite.Options{Sandbox: sb})
	require.ErrorIs(t, err, vite.ErrInvalidOptions, "a spare runs on its own directory only")
	require.True(t, sp.Alive(), "a refused Start leaves the spare")

	public, _ := url.Parse("http://localhost:8000")
	s, err := sp.Start(ctx, project, &vite.Options{Sandbox: sb, PublicURL: public, HMRPath: "/hmr", Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { s.Stop(context.Background()) })
	assert.False(t, sp.Alive(), "the Server took the spare")
	assert.Len(t, testenv.NodeProcesses(), 1, "the dev server runs in the spare's process")
	sock := s.Targets().HTTP.Path
	code, body := getUnix(t, sock, "/", "localhost")
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, "/@vite/client")
	code, client := getUnix(t, sock, "/@vite/client", "localhost")
	require.Equal(t, 200, code)
	assert.Contains(t, client, "const hmrPort = 8000;", "the project's config, not the warm-up's")
	code, body = getUnix(t, sock, "/src/App.jsx", "localhost")
	require.Equal(t, 200, code)
	assert.Contains(t, body, "Hello from the spare")
	dialHMRUnix(t, s.Targets().HMR.Path, "/hmr", s.Token())

	require.NoError(t, s.Stop(ctx))
	assert.Empty(t, testenv.Processes())
	assert.NoDirExists(t, filepath.Dir(sock))
	assert.NoError(t, sp.Close(), "a taken spare is the Server's")

	// A spare that nobody takes: Close ends it.
	sp2, err := vite.StartSpare(ctx, slot2, &vite.Options{Sandbox: sb})
	require.NoError(t, err)
	require.NoError(t, sp2.Close())
	assert.False(t, sp2.Alive())
	assert.Empty(t, testenv.Processes())

	// A spare that is gone is not used: the Server starts a runner of its
	// own.
	s2, err := sp2.Start(ctx, slot2, &vite.Options{Sandbox: sb, Logger: testLogger(t)})
	require.NoError(t, err)
	code, body = getUnix(t, s2.Targets().HTTP.Path, "/", "localhost")
	assert.Equal(t, 200, code, body)
	require.NoError(t, s2.Stop(ctx))
	assert.Empty(t, testenv.Processes())
}

// moveInto gives dir's entries and name to slot: slot's own entries go, and
// dir, emptied, goes.
func moveInto(t *testing.T, dir, slot string) {
	t.Helper()
	old, err := os.ReadDir(slot)
	require.NoError(t, err)
	for _, e := range old {
		require.NoError(t, os.RemoveAll(filepath.Join(slot, e.Name())))
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NoError(t, os.Rename(filepath.Join(dir, e.Name()), filepath.Join(slot, e.Name())))
	}
	require.NoError(t, os.Remove(dir))
	require.NoError(t, os.Rename(slot, dir))
}

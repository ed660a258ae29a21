package preview_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview/storetest"
)

// TestClusterTakeoverAfterDependencyChange changes a session's dependencies
// through a node that forwards the update to the owner, kills the owner, and
// checks that the node that takes the session over installs the changed set
// from the store: its package.json names the added package and the module
// that imports it compiles there. A change on the new owner then works too.
func TestClusterTakeoverAfterDependencyChange(t *testing.T) {
	testenv.Short(t)
	redis := storetest.Redis(t)
	nodes := startCluster(t, redis, "a", "b")
	a, b := nodes[0], nodes[1]

	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("v1")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	status, added := b.api(t, "POST", "/"+id+"/update", map[string]any{
		"files":       []any{appUsing("import clsx from 'clsx'", `clsx("with", "clsx")`)},
		"packageJson": templatePackage(map[string]string{"clsx": "^2.1.0"}),
	})
	require.Equal(t, 200, status, "body: %s", added.Raw)
	require.NotNil(t, added.Dependencies, "body: %s", added.Raw)
	assert.Contains(t, added.Dependencies.Added, "clsx", "the update reached the owner through B")
	assert.Equal(t, 1, a.m.NumSessions())

	a.kill() // the record and the files stay in Redis, naming A
	require.Empty(t, testenv.NodeProcesses())

	require.Eventually(t, func() bool {
		status, app, err := b.tryGet(created.PreviewURL + "/src/App.tsx")
		// Vite answers 500 for a module whose import it cannot resolve.
		return err == nil && status == 200 && strings.Contains(app, "clsx")
	}, wait, pollEvery, "B took the session over, and the module that imports clsx compiles there")
	assert.Equal(t, 1, b.m.NumSessions())
	pkg, err := fileOf(b, id, "package.json")
	require.NoError(t, err)
	assert.Contains(t, pkg, `"clsx"`, "B installed the changed set")

	status, removed := b.api(t, "POST", "/"+id+"/update", map[string]any{
		"files":       []any{appTSX("v2 without clsx")},
		"packageJson": templatePackage(nil),
	})
	require.Equal(t, 200, status, "body: %s", removed.Raw)
	require.NotNil(t, removed.Dependencies, "body: %s", removed.Raw)
	assert.Contains(t, removed.Dependencies.Removed, "clsx")
	pkg, err = fileOf(b, id, "package.json")
	require.NoError(t, err)
	assert.NotContains(t, pkg, "clsx")
}

package preview_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

// TestAttackDependencySpecsReachNoHostPath is finding 8 of issue 19 as an
// attack: dependency specs that name a host path (a canary tarball and a
// canary directory beside the service's directories), a repository, a URL
// or a workspace, sent in a create's packageJson, in a package.json file and
// in an update. Each must be answered 400 bad_dependency naming the
// dependency before npm is ever started (the resolve and install commands
// leave a mark when they run), and nothing may be written or linked: no
// node_modules/evil anywhere, the canaries untouched.
func TestAttackDependencySpecsReachNoHostPath(t *testing.T) {
	outer := testenv.TempDir(t)
	base := filepath.Join(outer, "base")
	canary := filepath.Join(outer, "canary.tgz")
	require.NoError(t, os.WriteFile(canary, []byte("not a tarball"), 0o644))
	canaryDir := filepath.Join(outer, "canary")
	require.NoError(t, os.MkdirAll(canaryDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(canaryDir, "package.json"), []byte(`{"name":"canary","version":"1.0.0"}`), 0o644))
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{canary, canaryDir} {
		require.NoError(t, os.Chtimes(p, old, old))
	}
	mark := filepath.Join(outer, "npm-ran")
	npm := []string{"sh", "-c", "echo \"$0 $*\" >> " + mark + "; exit 1"}
	m, err := preview.New(&preview.Options{
		PublicURL:      "http://localhost:8080",
		BaseDir:        base,
		Token:          "s3cret",
		Logger:         quietLogger(),
		InstallCommand: npm,
		ResolveCommand: npm,
	})
	require.NoError(t, err)
	defer m.Close(context.Background())
	api := m.API()
	before := tree(t, outer)

	// Relative specs are relative to the install's directory, inside the
	// cache under base: "../../canary.tgz" is the canary from there.
	hostile := []string{
		"..", "../..", ".", "./x", "../../canary.tgz", "../../canary", canary, canaryDir, "/etc", "/etc/passwd", "~/x",
		"file:..", "file:" + canary, "file:" + canaryDir, "file:../../canary", "link:..", "link:" + canaryDir, "portal:..",
		"canary.tgz", "canary.tar.gz", "x.tar",
		"git+https://github.com/u/r.git", "git+ssh://git@github.com/u/r.git", "git://github.com/u/r", "github:u/r", "u/r", "u/r#main",
		"gitlab:u/r", "http://127.0.0.1:1/x.tgz", "https://registry.npmjs.org/x/-/x-1.0.0.tgz",
		"npm:../x", "npm:" + canaryDir, "npm:x@file:..", "npm:x@" + canary,
		"workspace:*", "workspace:^1", "", " ", "1.0.0 || file:x", "^1 || ../../canary", "1.0.0; touch /tmp/x", "$(touch /tmp/x)",
	}
	for _, spec := range hostile {
		for _, via := range []string{"packageJson", "package.json file", "update's package.json file", "update's packageJson"} {
			t.Run(via+" "+spec, func(t *testing.T) {
				pkg := map[string]any{"dependencies": map[string]string{"evil": spec}}
				path, body := "/kontext/preview", map[string]any{"files": []any{}, "packageJson": pkg}
				data, err := json.Marshal(pkg)
				require.NoError(t, err)
				asFile := map[string]any{"files": []any{map[string]any{"name": "package.json", "content": string(data)}}}
				switch via {
				case "package.json file":
					body = asFile
				case "update's package.json file":
					// Checked before the session is looked up.
					path, body = "/kontext/preview/"+preview.NewID()+"/update", asFile
				case "update's packageJson":
					path = "/kontext/preview/" + preview.NewID() + "/update"
				}
				status, resp := call(t, api, "POST", path, "s3cret", body)
				assert.Equal(t, 400, status, "body: %s", resp.Raw)
				require.NotNil(t, resp.Error, "body: %s", resp.Raw)
				assert.Equal(t, preview.CodeBadDependency, resp.Error.Code)
				assert.Contains(t, resp.Error.Message, `"evil"`, "the answer names the dependency")
				assert.NoFileExists(t, mark, "npm was started")
				assert.Equal(t, before, tree(t, outer), "nothing was written or linked")
			})
		}
	}
	for _, p := range []string{canary, canaryDir} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.True(t, st.ModTime().Equal(old), "%s is untouched", p)
	}
	assert.Equal(t, 0, m.NumSessions())
	assert.Empty(t, testenv.Processes(), "no process was started")
}

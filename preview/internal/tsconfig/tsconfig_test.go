package tsconfig

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStripJSONC(t *testing.T) {
	in := `{
	  // a comment with "quotes"
	  "compilerOptions": { /* block */
	    "baseUrl": ".", "url": "http://x//y", "s": "a /* not */ b",
	    "paths": { "@/*": ["./src/*",], },
	  },
	}`
	var v map[string]any
	require.NoError(t, json.Unmarshal(stripJSONC([]byte(in)), &v))
	co := v["compilerOptions"].(map[string]any)
	assert.Equal(t, "http://x//y", co["url"])
	assert.Equal(t, "a /* not */ b", co["s"])
}

func FuzzStripJSONC(f *testing.F) {
	f.Add([]byte(`{"a": [1, 2,], // x
	}`))
	f.Add([]byte(`"\"/*"`))
	f.Add([]byte(`/* unterminated`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := stripJSONC(data)
		// Plain JSON without commas before closers is unchanged in meaning.
		var a, b any
		if json.Unmarshal(data, &a) == nil {
			if err := json.Unmarshal(out, &b); err != nil {
				t.Fatalf("valid JSON %q became invalid %q: %v", data, out, err)
			}
		}
	})
}

func TestTsconfigAliases(t *testing.T) {
	root := "/srv/p"
	got := Aliases([]byte(`{
		// shadcn
		"compilerOptions": {"baseUrl": ".", "paths": {
			"@/*": ["./src/*"], "@components/*": ["src/components/*"], "~lib": ["./src/lib/index.ts"],
			"evil/*": ["../../etc/*"], "abs/*": ["/etc/*"], "mid/*/x": ["src/*/x"]
		}}
	}`), root)
	assert.Equal(t, []Alias{
		{Find: "@components", Replacement: "/srv/p/src/components"},
		{Find: "~lib", Replacement: "/srv/p/src/lib/index.ts"},
		{Find: "@", Replacement: "/srv/p/src"},
	}, got)
	assert.Empty(t, Aliases([]byte(`not json`), root))
}

package launch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTemplateFiles(t *testing.T) {
	files, err := TemplateFiles()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, f := range files {
		names[f.Name] = true
		assert.NotEmpty(t, f.Data, f.Name)
	}
	for _, name := range []string{"index.html", "src/main.tsx", "src/App.tsx", "src/index.css"} {
		assert.True(t, names[name], "the template has %s", name)
	}
	assert.False(t, names["package.json"], "the dependency set is the template's package.json, not one of its files")
}

func TestTemplateDeps(t *testing.T) {
	set, err := TemplateDeps()
	require.NoError(t, err)
	for _, name := range []string{"vite", "react", "react-dom", "@vitejs/plugin-react"} {
		assert.True(t, set.Has(name), name)
	}
	set["vite"] = "1.0.0"
	delete(set, "react")
	again, err := TemplateDeps()
	require.NoError(t, err)
	assert.NotEqual(t, "1.0.0", again["vite"], "each call returns a copy")
	assert.True(t, again.Has("react"), "each call returns a copy")
}

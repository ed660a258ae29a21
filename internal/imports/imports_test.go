package imports

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSpecs(t *testing.T) {
	src := `import React from "/node_modules/.vite/deps/react.js?v=1";
import '/src/index.css'
import{a}from'./a.js'
const m = import ( "/src/lazy.tsx" )
// from the docs: "from './MyComponent'" stays a string
export { b } from "../b.js"
const imported = importer("/nope"); const x = fromage("/nope2")
import("
/broken")`
	assert.Equal(t, []string{
		"/node_modules/.vite/deps/react.js?v=1", "./a.js", "./MyComponent", "../b.js",
		"/src/index.css", "/src/lazy.tsx",
	}, Specs(src))
}

func FuzzSpecs(f *testing.F) {
	f.Add(`import x from "/a"; import("/b")`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, spec := range Specs(s) {
			assert.NotContains(t, spec, "\n")
			assert.NotEmpty(t, spec)
		}
	})
}

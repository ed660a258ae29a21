package vite

import (
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
)

// testdata/vite8-prod/manifest.json is what vite build --manifest (Vite
// 8.3.8) wrote for internal/testenv/testdata/vite8-prod: four entries
// (index.html, two scripts, a CSS-only one), a chunk that imports a chunk
// (jsx-runtime -> format), a dynamic import (src/lazy.js) and an asset
// (src/logo.svg). TestManifestOfRealBuild checks the same against a fresh
// build.
// It is read from an embed.FS, the way a Go binary that embeds its dist
// reads it.
func readTestManifest(t *testing.T, opts *ManifestOptions) *Manifest {
	t.Helper()
	build, err := fs.Sub(testBuild, "testdata/vite8-prod")
	require.NoError(t, err)
	m, err := ReadManifest(build, &ManifestOptions{Path: "manifest.json", Base: opts.Base})
	require.NoError(t, err)
	return m
}

//go:embed testdata/vite8-prod
var testBuild embed.FS

func TestManifestTags(t *testing.T) {
	m := readTestManifest(t, &ManifestOptions{})
	for _, tc := range []struct {
		name    string
		entries []string
		want    []string
	}{{
		// Exactly the tags Vite put into the built index.html.
		name:    "html entry with nested imports",
		entries: []string{"index.html"},
		want: []string{
			`<script type="module" crossorigin src="/assets/index-9lFnEXDT.js"></script>`,
			`<link rel="modulepreload" crossorigin href="/assets/format-OMkO6UmV.js">`,
			`<link rel="modulepreload" crossorigin href="/assets/jsx-runtime-QCAPusX6.js">`,
			`<link rel="stylesheet" crossorigin href="/assets/format-CZT10Q2h.css">`,
			`<link rel="stylesheet" crossorigin href="/assets/jsx-runtime-5Di-i_ws.css">`,
			`<link rel="stylesheet" crossorigin href="/assets/index-DSBLAmER.css">`,
		},
	}, {
		name:    "script entry, leading slash",
		entries: []string{"/src/other.js"},
		want: []string{
			`<script type="module" crossorigin src="/assets/other-Cta2VU1u.js"></script>`,
			`<link rel="modulepreload" crossorigin href="/assets/format-OMkO6UmV.js">`,
			`<link rel="stylesheet" crossorigin href="/assets/format-CZT10Q2h.css">`,
		},
	}, {
		name:    "CSS-only entry",
		entries: []string{"src/theme.css"},
		want:    []string{`<link rel="stylesheet" crossorigin href="/assets/theme-BHaeJwe2.css">`},
	}, {
		name:    "shared chunks once",
		entries: []string{"src/server-rendered.jsx", "src/other.js", "src/theme.css", "src/other.js"},
		want: []string{
			`<script type="module" crossorigin src="/assets/server-rendered-BL85R40K.js"></script>`,
			`<script type="module" crossorigin src="/assets/other-Cta2VU1u.js"></script>`,
			`<link rel="modulepreload" crossorigin href="/assets/format-OMkO6UmV.js">`,
			`<link rel="modulepreload" crossorigin href="/assets/jsx-runtime-QCAPusX6.js">`,
			`<link rel="stylesheet" crossorigin href="/assets/format-CZT10Q2h.css">`,
			`<link rel="stylesheet" crossorigin href="/assets/jsx-runtime-5Di-i_ws.css">`,
			`<link rel="stylesheet" crossorigin href="/assets/server-rendered-B6enywxI.css">`,
			`<link rel="stylesheet" crossorigin href="/assets/theme-BHaeJwe2.css">`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.Tags("", tc.entries...)
			require.NoError(t, err)
			assert.Equal(t, strings.Join(tc.want, "\n"), string(got))
		})
	}
}

func TestManifestDynamicImportNotPreloaded(t *testing.T) {
	m := readTestManifest(t, &ManifestOptions{})
	got, err := m.Tags("", "index.html")
	require.NoError(t, err)
	assert.NotContains(t, string(got), "lazy-", "a dynamic import loads itself when it runs")
	assert.NotContains(t, string(got), "logo-", "an asset is no tag")
	u, ok := m.File("src/logo.svg")
	assert.True(t, ok)
	assert.Equal(t, "/assets/logo-Z3QYeHVp.svg", u)
	assert.Equal(t, []string{"index.html", "src/other.js", "src/server-rendered.jsx", "src/theme.css"}, m.Entries())
}

func TestManifestUnknownEntry(t *testing.T) {
	m := readTestManifest(t, &ManifestOptions{})
	for _, e := range []string{"src/missing.js", "src/logo.svg", "_format-OMkO6UmV.js", ""} {
		_, err := m.Tags("", "index.html", e)
		require.ErrorIs(t, err, ErrUnknownEntry, e)
		assert.Contains(t, err.Error(), "src/server-rendered.jsx", "the error lists the entries there are")
	}
}

func TestManifestBaseAndNonce(t *testing.T) {
	m := readTestManifest(t, &ManifestOptions{Base: "/static"})
	got, err := m.Tags(`n"<1`, "src/theme.css")
	require.NoError(t, err)
	assert.Equal(t, `<link rel="stylesheet" crossorigin href="/static/assets/theme-BHaeJwe2.css" nonce="n&#34;&lt;1">`, string(got))
}

func TestManifestIntegrity(t *testing.T) {
	manifest := `{
  "main.js": {"file": "assets/main-1.js", "isEntry": true, "imports": ["_dep.js"], "css": ["assets/main-1.css"]},
  "_dep.js": {"file": "assets/dep-1.js", "integrity": "sha384-fromplugin"}
}`
	fsys := fstest.MapFS{
		".vite/manifest.json": {Data: []byte(manifest)},
		"assets/main-1.js":    {Data: []byte("console.log(1)")},
		"assets/main-1.css":   {Data: []byte("body{}")},
	}
	m, err := ReadManifest(fsys, &ManifestOptions{Integrity: true})
	require.NoError(t, err)
	got, err := m.Tags("abc", "main.js")
	require.NoError(t, err)
	sri := func(s string) string {
		sum := sha512.Sum384([]byte(s))
		return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
	}
	assert.Equal(t, strings.Join([]string{
		`<script type="module" crossorigin src="/assets/main-1.js" nonce="abc" integrity="` + sri("console.log(1)") + `"></script>`,
		`<link rel="modulepreload" crossorigin href="/assets/dep-1.js" nonce="abc" integrity="sha384-fromplugin">`,
		`<link rel="stylesheet" crossorigin href="/assets/main-1.css" nonce="abc" integrity="` + sri("body{}") + `">`,
	}, "\n"), string(got))

	// A file that the manifest names but the build lacks cannot be hashed.
	delete(fsys, "assets/main-1.css")
	_, err = ReadManifest(fsys, &ManifestOptions{Integrity: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "assets/main-1.css")
}

func TestParseManifestInvalid(t *testing.T) {
	for _, s := range []string{``, `[]`, `{"a":`, `{"a": {"isEntry": true}}`, `{"a": {"file": "a.js", "imports": ["b"]}}`, `{"a": 1}`} {
		_, err := ParseManifest([]byte(s), "")
		assert.ErrorIs(t, err, ErrInvalidManifest, s)
	}
	_, err := ReadManifest(fstest.MapFS{}, nil)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzParseManifest checks that any manifest ParseManifest accepts gives
// tags or ErrUnknownEntry for each of its keys, without a panic or an
// endless walk (imports may form cycles).
func FuzzParseManifest(f *testing.F) {
	data, err := os.ReadFile("testdata/vite8-prod/manifest.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"a": {"file": "a.js", "isEntry": true, "imports": ["a"]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data, "/")
		if err != nil {
			return
		}
		for key := range m.chunks {
			if _, err := m.Tags("", key); err != nil && !strings.Contains(err.Error(), ErrUnknownEntry.Error()) {
				t.Fatalf("Tags(%q): %v", key, err)
			}
		}
	})
}

type fixedDev struct{ t hotfile.Targets }

func (d fixedDev) Targets() hotfile.Targets { return d.t }

func TestAssetsSwitch(t *testing.T) {
	m := readTestManifest(t, &ManifestOptions{})
	running := fixedDev{hotfile.Targets{HTTP: &url.URL{Scheme: "http", Host: "127.0.0.1:5173"}}}

	// Production: the dev server does not run.
	a := NewAssets(&AssetsOptions{Dev: fixedDev{}, Manifest: m, React: true})
	assert.False(t, a.Dev())
	got, err := a.Tags("", "src/theme.css")
	require.NoError(t, err)
	assert.Equal(t, `<link rel="stylesheet" crossorigin href="/assets/theme-BHaeJwe2.css">`, string(got))
	_, err = a.Tags("", "src/nope.js")
	assert.ErrorIs(t, err, ErrUnknownEntry)

	// Development: the client, the preamble, the entries from the dev
	// server, through the page's origin.
	a = NewAssets(&AssetsOptions{Dev: running, Manifest: m, React: true})
	assert.True(t, a.Dev())
	got, err = a.Tags("n1", "src/server-rendered.jsx", "src/theme.css")
	require.NoError(t, err)
	assert.Equal(t, `<script type="module" nonce="n1">
import RefreshRuntime from "/@react-refresh"
RefreshRuntime.injectIntoGlobalHook(window)
window.$RefreshReg$ = () => {}
window.$RefreshSig$ = () => (type) => type
window.__vite_plugin_react_preamble_installed__ = true
</script>
<script type="module" src="/@vite/client" nonce="n1"></script>
<script type="module" src="/src/server-rendered.jsx" nonce="n1"></script>
<link rel="stylesheet" href="/src/theme.css" nonce="n1">`, string(got))

	// A direct origin and a base, no React; no manifest needed.
	a = NewAssets(&AssetsOptions{Dev: running, DevOrigin: "http://localhost:5173/", DevBase: "app"})
	got, err = a.Tags("", "/src/main.ts")
	require.NoError(t, err)
	assert.Equal(t, `<script type="module" src="http://localhost:5173/app/@vite/client"></script>
<script type="module" src="http://localhost:5173/app/src/main.ts"></script>`, string(got))
	assert.NotContains(t, string(got), "react")

	// Neither a dev server nor a build.
	_, err = NewAssets(&AssetsOptions{Dev: fixedDev{}}).Tags("", "src/main.ts")
	assert.ErrorIs(t, err, ErrNoBuild)
	_, err = NewAssets(nil).Tags("", "src/main.ts")
	assert.ErrorIs(t, err, ErrNoBuild)
}

func TestAssetsPreambleEscaped(t *testing.T) {
	running := fixedDev{hotfile.Targets{HTTP: &url.URL{Scheme: "http", Host: "x"}}}
	got, err := NewAssets(&AssetsOptions{Dev: running, React: true, DevOrigin: `http://x"</script><script>alert(1)//`}).Tags("")
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(got), "</script>"), "the origin cannot end the preamble's script")
}

package preview_test

import (
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

// builderApp is a project of the shape AI app builders generate: Vite,
// React and TypeScript with the SWC plugin, Tailwind 3 through
// postcss.config.js (with autoprefixer) and a tailwind.config.ts with a
// theme of its own, an "@/" alias in vite.config.ts.
const builderApp = "testdata/builder-app"

// readProject returns the files of the project in dir as the API takes
// them, and its package.json apart.
func readProject(t *testing.T, dir string) (files []any, pkg json.RawMessage) {
	t.Helper()
	files, pkg, err := testenv.ReadProject(dir)
	require.NoError(t, err)
	return files, pkg
}

// TestCompatBuilderProject sends a project of the shape AI app builders
// generate through the API and looks at it in Chromium: the page has its
// own theme's styles, and an edit that uses a Tailwind class no file used
// before brings that class's CSS by HMR, without a reload.
func TestCompatBuilderProject(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "bwrap")
	svc := startService(t, preview.Options{})
	browser := testenv.NewBrowser(t)
	ctx := browser.Ctx

	files, pkg := readProject(t, builderApp)
	status, created := svc.api(t, "POST", "", map[string]any{"files": files, "packageJson": pkg})
	require.Equal(t, 200, status, "body: %s", created.Raw)

	require.NoError(t, chromedp.Run(ctx, chromedp.Navigate(created.PreviewURL)))
	waitJS(t, ctx, `document.querySelector("#title")?.textContent === "Brand new app"`, "the first render, through the @/ alias")
	assert.Equal(t, "development", evalJS[string](t, ctx, `document.querySelector("#mode").textContent`), "the project's vite.config.ts ran (its define)")
	assert.Equal(t, "rgb(18, 52, 86)", evalJS[string](t, ctx, `getComputedStyle(document.querySelector("#title")).color`),
		"text-brand has the color of the project's tailwind.config.ts")
	assert.Equal(t, "30px", evalJS[string](t, ctx, `getComputedStyle(document.querySelector("#title")).fontSize`), "Tailwind's own text-3xl")

	// A marker on window survives HMR and dies with a reload.
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(`window.__compatMarker = 42`, nil)))
	tagline := file("src/App.tsx", `import { Title } from "@/components/Title";

declare const __APP_MODE__: string;

export default function App() {
  return (
    <main className="min-h-screen p-8">
      <Title>Brand new app</Title>
      <p id="mode">{typeof __APP_MODE__ === "string" ? __APP_MODE__ : "no vite.config"}</p>
      <p id="tagline" className="bg-brand underline decoration-brand">Shipped by HMR</p>
    </main>
  );
}
`)
	status, upd := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": []any{tagline}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
	assert.Nil(t, upd.HMR.Error, "body: %s", upd.Raw)
	waitJS(t, ctx, `!!document.querySelector("#tagline") && getComputedStyle(document.querySelector("#tagline")).backgroundColor === "rgb(18, 52, 86)"`,
		"the CSS of bg-brand, a class no file used before")
	assert.Equal(t, "underline", evalJS[string](t, ctx, `getComputedStyle(document.querySelector("#tagline")).textDecorationLine`))
	assert.Equal(t, "rgb(18, 52, 86)", evalJS[string](t, ctx, `getComputedStyle(document.querySelector("#tagline")).textDecorationColor`))
	assert.Equal(t, 42.0, evalJS[float64](t, ctx, `window.__compatMarker`), "HMR, not a reload")
	assert.Equal(t, "rgb(18, 52, 86)", evalJS[string](t, ctx, `getComputedStyle(document.querySelector("#title")).color`), "the theme stays")
}

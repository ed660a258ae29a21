package preview_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

// These tests open the preview in a real Chromium: what they check is what
// a page shows, or what it reports.

// waitJS polls a JavaScript expression in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	require.NoError(t, chromedp.Run(ctx, chromedp.Poll(expr, nil, chromedp.WithPollingInterval(pollEvery))), "waiting for %s", what)
}

func evalJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	var v T
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(expr, &v)))
	return v
}

// openPreview creates a session with App.tsx showing title, opens it in a
// new browser and waits for the first render.
func openPreview(t *testing.T, svc *service, title string) (apiResponse, context.Context) {
	t.Helper()
	browser := testenv.NewBrowser(t)
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX(title)}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	require.NoError(t, chromedp.Run(browser.Ctx, chromedp.Navigate(created.PreviewURL)))
	waitJS(t, browser.Ctx, fmt.Sprintf(`(document.querySelector("#title") || {}).textContent === %q`, title), "the first render")
	return created, browser.Ctx
}

// watchPage marks the page: a marker on window that only a reload removes,
// and a count of the error overlays that Vite shows.
const watchPage = `
window.__vitehostMarker = 42;
window.__overlays = 0;
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) if (n.nodeName === 'VITE-ERROR-OVERLAY') window.__overlays++;
}).observe(document.documentElement, { childList: true, subtree: true });
`

// TestBrowserBatchLandsWhole sends the update the issue measured: 121 files,
// about 5 MB, the importer first and 120 new modules after it. While it
// lands, the open page shows no error overlay and does not reload; then it
// shows all of them.
func TestBrowserBatchLandsWhole(t *testing.T) {
	svc := startService(t, preview.Options{})
	created, ctx := openPreview(t, svc, "before the batch")
	require.NoError(t, chromedp.Run(ctx, chromedp.Evaluate(watchPage, nil)))

	const n = 120
	padding := strings.Repeat("x", 40<<10) // a scaffolded component's worth of code
	var imports, uses strings.Builder
	parts := make([]any, 0, n)
	for i := range n {
		name := fmt.Sprintf("Part%03d", i)
		fmt.Fprintf(&imports, "import %s from './parts/%s'\n", name, name)
		fmt.Fprintf(&uses, "<%s />", name)
		parts = append(parts, map[string]any{"name": "src/parts/" + name + ".tsx", "content": fmt.Sprintf(
			"const padding = %q\n\nexport default function %s() {\n  return <li className=\"part\" title={padding.slice(0, 1)}>%s</li>\n}\n", padding, name, name)})
	}
	app := map[string]any{"name": "src/App.tsx", "content": fmt.Sprintf(
		"%s\nexport default function App() {\n  return <main><h1 id=\"title\">after the batch</h1><ul>%s</ul></main>\n}\n", imports.String(), uses.String())}
	files := append([]any{app}, parts...) // the importer first

	status, upd := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": files})
	require.Equal(t, 200, status, "body: %.500s", upd.Raw)
	assert.Len(t, upd.Updated, n+1)
	assert.Equal(t, preview.HMRUpdate, upd.HMR.Type, "body: %.500s", upd.Raw)
	assert.Equal(t, []string{"/src/App.tsx"}, upd.HMR.Paths)
	assert.Nil(t, upd.HMR.Error)

	waitJS(t, ctx, fmt.Sprintf(`document.querySelectorAll(".part").length === %d && document.querySelector("#title").textContent === "after the batch"`, n), "every new module on the page")
	assert.Equal(t, 0, evalJS[int](t, ctx, `window.__overlays`), "no error overlay while the batch landed")
	assert.Equal(t, 42, evalJS[int](t, ctx, `window.__vitehostMarker`), "no reload while the batch landed")
}

// TestBrowserRuntimeErrors has new code throw, reject and log an error in
// the page: each reaches the event stream with the page's URL and the
// source file and line of the new code.
func TestBrowserRuntimeErrors(t *testing.T) {
	svc := startService(t, preview.Options{})
	created, ctx := openPreview(t, svc, "before the error")
	stream := svc.openEvents(t, created.SessionID, "")

	app := map[string]any{"name": "src/App.tsx", "content": "import Boom from './Boom'\n\nexport default function App() {\n  return <main><h1 id=\"title\">with Boom</h1><Boom /></main>\n}\n"}
	boom := map[string]any{"name": "src/Boom.tsx", "content": `import { useEffect } from 'react'

export default function Boom() {
  useEffect(() => {
    console.error('boom logged', 7)
    Promise.reject(new Error('boom rejected'))
    setTimeout(() => {
      throw new Error('boom thrown')
    }, 0)
  }, [])
  return <p id="boom">boom</p>
}
`}
	status, upd := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": []any{app, boom}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.Nil(t, upd.HMR.Error)
	waitJS(t, ctx, `!!document.querySelector("#boom")`, "the new component")

	// The errors come in the order the page met them: the kinds, in any.
	got := map[any]sseEvent{}
	for len(got) < 3 {
		e := stream.next(t, ofType("runtime-error"))
		t.Logf("runtime-error: %v", e.Data)
		if _, ok := got[e.Data["kind"]]; !ok {
			got[e.Data["kind"]] = e
		}
	}
	for _, want := range []struct {
		kind, message string
		line          float64
	}{
		{"error", "boom thrown", 8},
		{"unhandledrejection", "boom rejected", 6},
		{"console.error", "boom logged 7", 5},
	} {
		e := got[want.kind]
		assert.Contains(t, e.Data["message"], want.message, "%s: %+v", want.kind, e.Data)
		assert.Equal(t, created.PreviewURL+"/", e.Data["page"])
		assert.Equal(t, "src/Boom.tsx", e.Data["file"], "%s: %+v", want.kind, e.Data)
		assert.Equal(t, want.line, e.Data["line"], "%s: %+v", want.kind, e.Data)
		assert.Contains(t, e.Data["stack"], "src/Boom.tsx:", "the stack names the source: %+v", e.Data)
	}
}

// TestBrowserCompileErrorInNewFile imports a new module that does not
// compile: the error comes back in the update's answer and in the event
// stream, with its file and line, and the page shows Vite's overlay.
func TestBrowserCompileErrorInNewFile(t *testing.T) {
	svc := startService(t, preview.Options{})
	created, ctx := openPreview(t, svc, "before the broken module")
	stream := svc.openEvents(t, created.SessionID, "")

	app := map[string]any{"name": "src/App.tsx", "content": "import Broken from './Broken'\n\nexport default function App() {\n  return <main><Broken /></main>\n}\n"}
	broken := map[string]any{"name": "src/Broken.tsx", "content": "export default function Broken() {\n  return <p>oops\n}\n"}
	status, upd := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": []any{app, broken}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	require.NotNil(t, upd.HMR.Error, "body: %s", upd.Raw)
	assert.Equal(t, "src/Broken.tsx", upd.HMR.Error.File)
	assert.Positive(t, upd.HMR.Error.Line)
	assert.NotEmpty(t, upd.HMR.Error.Message)

	e := stream.next(t, ofType("compile-error"))
	assert.Equal(t, "src/Broken.tsx", e.Data["file"])
	assert.Equal(t, float64(upd.HMR.Error.Line), e.Data["line"])
	waitJS(t, ctx, `!!document.querySelector("vite-error-overlay")`, "Vite's error overlay")

	status, fixed := svc.api(t, "POST", "/"+created.SessionID+"/update", map[string]any{"files": []any{appTSX("fixed")}})
	require.Equal(t, 200, status, "body: %s", fixed.Raw)
	assert.Nil(t, fixed.HMR.Error)
	waitJS(t, ctx, `(document.querySelector("#title") || {}).textContent === "fixed" && !document.querySelector("vite-error-overlay")`, "the fixed page without the overlay")
}

package vite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

// events collects what a Server reports through Options.OnEvent.
type events struct {
	mu   sync.Mutex
	list []vite.Event
	more chan struct{} // closed and replaced at each event
}

func newEvents() *events { return &events{more: make(chan struct{})} }

func (e *events) add(ev vite.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
	close(e.more)
	e.more = make(chan struct{})
}

// wait returns the first event that match accepts, waiting up to long.
func (e *events) wait(t testing.TB, match func(vite.Event) bool) vite.Event {
	t.Helper()
	var found vite.Event
	if !e.within(long, func(ev vite.Event) bool { found = ev; return match(ev) }) {
		t.Fatal("no such event")
	}
	return found
}

// within reports whether an event that match accepts comes within d.
func (e *events) within(d time.Duration, match func(vite.Event) bool) bool {
	deadline := time.After(d)
	for seen := 0; ; {
		e.mu.Lock()
		list, more := e.list, e.more
		e.mu.Unlock()
		for ; seen < len(list); seen++ {
			if match(list[seen]) {
				return true
			}
		}
		select {
		case <-more:
		case <-deadline:
			return false
		}
	}
}

func (e *events) all() []vite.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]vite.Event(nil), e.list...)
}

// writeAtomic writes files (relative to dir) the way the preview service
// does: each through a temporary file renamed over its name.
func writeAtomic(dir string, files map[string]string) error {
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p+".tmp", []byte(content), 0o644); err != nil {
			return err
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return err
		}
	}
	return nil
}

// batch writes files and removes deleted under a hold of s (Hold, the
// writes, Commit).
func batch(t testing.TB, s *vite.Server, files map[string]string, deleted ...string) *vite.BatchResult {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	h, err := s.Hold(ctx, names, deleted)
	require.NoError(t, err)
	defer h.Release()
	require.NoError(t, writeAtomic(s.Dir(), files))
	for _, d := range deleted {
		require.NoError(t, os.Remove(filepath.Join(s.Dir(), d)))
	}
	res, err := h.Commit(ctx)
	require.NoError(t, err)
	require.NotNil(t, res)
	assert.False(t, res.Incomplete, "Vite handled every file: %+v", res)
	return res
}

// manyComponents returns n new components under src/parts, and an App.jsx
// that imports and shows all of them.
func manyComponents(n int, label string) map[string]string {
	files := map[string]string{}
	var imports, uses strings.Builder
	for i := range n {
		name := fmt.Sprintf("Part%03d", i)
		files["src/parts/"+name+".jsx"] = fmt.Sprintf("export default function %s() {\n  return <li className=\"part\">%s %d</li>\n}\n", name, label, i)
		fmt.Fprintf(&imports, "import %s from './parts/%s.jsx'\n", name, name)
		fmt.Fprintf(&uses, "<%s />", name)
	}
	files["src/App.jsx"] = fmt.Sprintf("%s\nexport default function App() {\n  return <main><h1 id=\"title\">%s</h1><ul>%s</ul></main>\n}\n", imports.String(), label, uses.String())
	return files
}

// updatePaths returns the paths of the update messages in msgs.
func updatePaths(u []vite.HotUpdate) []string {
	var out []string
	for _, x := range u {
		out = append(out, x.Path)
	}
	return out
}

// TestBatch follows batches through the runner on each supported Vite
// major: new modules and their importer land as one update, an error in a
// module the page never loaded comes back with its position, a deletion is
// handled, the watcher's echo of the batch's writes is dropped, and an edit
// by other means still reaches Vite through the watcher.
func TestBatch(t *testing.T) {
	testenv.Short(t)
	for _, fixture := range []string{"vite8-react", "vite7-react", "vite6-react", "vite5-react", "vite4-react"} {
		t.Run(fixture, func(t *testing.T) {
			dir := testenv.Fixture(t, fixture)
			evs := newEvents()
			s := start(t, dir, &vite.Options{OnEvent: evs.add})
			tg := s.Targets()
			conn := dialHMR(t, tg.HMR, "/", s.Token())
			for _, p := range []string{"/", "/src/main.jsx", "/src/App.jsx"} {
				code, _ := get(t, tg.HTTP.String()+p) // the page's modules, in the module graph
				require.Equal(t, 200, code, p)
			}

			// 120 new modules and the file that imports them, together.
			res := batch(t, s, manyComponents(120, "batch one"))
			assert.False(t, res.FullReload, "%+v", res)
			assert.Empty(t, res.Errors)
			assert.Equal(t, []string{"/src/App.jsx"}, updatePaths(res.Updates))
			m, ok := conn.next(long)
			require.True(t, ok)
			require.Equal(t, "update", m["type"], "the page's first message after the batch: %v", m)
			assert.Contains(t, string(mustJSON(t, m)), `"/src/App.jsx"`)
			code, app := get(t, tg.HTTP.String()+"/src/App.jsx")
			require.Equal(t, 200, code)
			assert.Contains(t, app, "Part119")
			code, part := get(t, tg.HTTP.String()+"/src/parts/Part119.jsx")
			require.Equal(t, 200, code)
			assert.Contains(t, part, "batch one 119")

			// A syntax error in a new module that the page never loaded.
			res = batch(t, s, map[string]string{
				"src/App.jsx":    "import Broken from './Broken.jsx'\n\nexport default function App() {\n  return <main><Broken /></main>\n}\n",
				"src/Broken.jsx": "export default function Broken() {\n  return <p>oops\n}\n",
			})
			require.NotEmpty(t, res.Errors, "%+v", res)
			e := res.Errors[0]
			assert.Equal(t, "src/Broken.jsx", e.File)
			assert.Positive(t, e.Line, "%+v", e) // oxc says 3:1, Babel 2:12
			assert.NotContains(t, e.Message, dir, "no server paths")
			assert.NotContains(t, e.Message, "\x1b[", "no terminal colours")

			// Fixed, and a module deleted in the same batch.
			res = batch(t, s, map[string]string{
				"src/App.jsx": "export default function App() {\n  return <main><h1 id=\"title\">fixed</h1></main>\n}\n",
			}, "src/Broken.jsx", "src/parts/Part000.jsx")
			assert.Empty(t, res.Errors)
			assert.NoFileExists(t, filepath.Join(dir, "src", "Broken.jsx"))

			// A hold its writer gives up on (Release): Vite takes the files
			// as they are on disk, and the pages get the update all the same.
			fresh := dialHMR(t, tg.HMR, "/", s.Token())
			ctx, cancel := context.WithTimeout(context.Background(), long)
			h, err := s.Hold(ctx, []string{"src/App.jsx", "src/never.jsx"}, nil)
			require.NoError(t, err)
			require.NoError(t, writeAtomic(dir, map[string]string{
				"src/App.jsx": "export default function App() {\n  return <main><h1 id=\"title\">released</h1></main>\n}\n",
			}))
			h.Release() // src/never.jsx was never written
			cancel()
			for {
				m, ok := fresh.next(long)
				require.True(t, ok, "no update after the release")
				if m["type"] == "update" {
					assert.Contains(t, string(mustJSON(t, m)), `"/src/App.jsx"`)
					break
				}
			}
			_, app = get(t, tg.HTTP.String()+"/src/App.jsx")
			assert.Contains(t, app, "released")

			// An edit by other means goes through the watcher: an event, not
			// a batch. By then the watcher's echo of the batches' writes has
			// come too, in the kernel's order of the directory's events, and
			// was dropped: no event names App.jsx before it.
			css := filepath.Join(dir, "src", "index.css")
			require.NoError(t, os.WriteFile(css, []byte("h1 { color: rgb(1, 2, 3); }\n"), 0o644))
			evs.wait(t, func(e vite.Event) bool {
				return e.Type == vite.EventHMR && strings.Contains(fmt.Sprint(updatePaths(e.Updates)), "/src/index.css")
			})
			for _, e := range evs.all() {
				assert.NotContains(t, updatePaths(e.Updates), "/src/App.jsx", "the watcher's echo of a batch: %+v", e)
			}
			// The watcher passes one change of a path per 50 ms and drops the
			// rest (chokidar's throttle): the batch's echo may have used it,
			// and a write that gets no answer is written again.
			appFile := filepath.Join(dir, "src", "App.jsx")
			for i := 0; ; i++ {
				require.NoError(t, os.WriteFile(appFile, fmt.Appendf(nil, "export default function App() {\n  return <main>editor %d</main>\n}\n", i), 0o644))
				if evs.within(5*time.Second, func(e vite.Event) bool {
					return e.Type == vite.EventHMR && strings.Contains(fmt.Sprint(updatePaths(e.Updates)), "/src/App.jsx")
				}) {
					break
				}
				require.Less(t, i, 10, "no update for the editor's writes of App.jsx")
			}
		})
	}
}

// TestBatchSandboxed runs a batch in the sandbox, where the project is at
// another path than on the host: the paths go relative both ways.
func TestBatchSandboxed(t *testing.T) {
	testenv.Short(t)
	requireSandbox(t)
	project, modules := sandboxFixture(t, "vite8-react")
	s := start(t, project, &vite.Options{Sandbox: sandboxConfig(t, modules, randomLabel("batch"))})
	sock := s.Targets().HTTP.Path
	for _, p := range []string{"/", "/src/main.jsx", "/src/App.jsx"} {
		code, _ := getUnix(t, sock, p, "localhost")
		require.Equal(t, 200, code, p)
	}
	res := batch(t, s, manyComponents(30, "sandboxed"))
	assert.Equal(t, []string{"/src/App.jsx"}, updatePaths(res.Updates))
	assert.Empty(t, res.Errors)
	res = batch(t, s, map[string]string{
		"src/App.jsx":    "import Broken from './Broken.jsx'\nexport default function App() { return <Broken /> }\n",
		"src/Broken.jsx": "export default function Broken() {\n  return <p>oops\n}\n",
	})
	require.NotEmpty(t, res.Errors, "%+v", res)
	assert.Equal(t, "src/Broken.jsx", res.Errors[0].File)
	assert.NotContains(t, res.Errors[0].Message, "/project/")
}

// TestClientErrors checks the module that reports the pages' runtime errors:
// it is in every page, and what it sends over the HMR socket (a Vite custom
// event) reaches OnEvent with the stack mapped to the project's source.
func TestClientErrors(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	evs := newEvents()
	s := start(t, dir, &vite.Options{ClientErrors: true, OnEvent: evs.add})
	tg := s.Targets()
	code, page := get(t, tg.HTTP.String()+"/")
	require.Equal(t, 200, code)
	assert.Contains(t, page, `<script type="module" src="/@vitehost/client">`)
	code, client := get(t, tg.HTTP.String()+"/@vitehost/client")
	require.Equal(t, 200, code)
	assert.Contains(t, client, "vitehost:error")
	assert.Contains(t, client, "createHotContext", "Vite gave it an HMR context")

	// App.jsx as the browser gets it: line 5 of the served code throws.
	res := batch(t, s, map[string]string{"src/App.jsx": "export default function App() {\n  throw new Error('boom')\n}\n"})
	assert.Empty(t, res.Errors)
	code, served := get(t, tg.HTTP.String()+"/src/App.jsx")
	require.Equal(t, 200, code)
	var line, col int
	for i, l := range strings.Split(served, "\n") {
		if c := strings.Index(l, "throw new Error"); c >= 0 {
			line, col = i+1, c+1
			break
		}
	}
	require.NotZero(t, line, "served code: %s", served)

	// react-dom's optimized chunk comes with a link to the optimizer's
	// source map, not a map inlined; a frame in it maps through that map.
	code, dep := get(t, tg.HTTP.String()+"/node_modules/.vite/deps/react-dom_client.js")
	require.Equal(t, 200, code)
	assert.NotContains(t, dep, "sourceMappingURL=data:")
	assert.Contains(t, dep, "//# sourceMappingURL=react-dom_client.js.map")
	var depLine, depCol int
	for i, l := range strings.Split(dep, "\n") {
		if c := strings.Index(l, "function renderWithHooks("); c >= 0 {
			depLine, depCol = i+1, c+1
			break
		}
	}
	require.NotZero(t, depLine, "react-dom's chunk has renderWithHooks")

	conn := dialHMR(t, tg.HMR, "/", s.Token())
	stack := fmt.Sprintf("Error: boom\n    at App (%s/src/App.jsx?t=1733000000000:%d:%d)\n    at renderWithHooks (%s/node_modules/.vite/deps/react-dom_client.js:%d:%d)", tg.HTTP, line, col, tg.HTTP, depLine, depCol)
	msg, err := json.Marshal(map[string]any{"type": "custom", "event": "vitehost:error", "data": map[string]any{
		"kind": "error", "message": "boom", "stack": stack, "page": tg.HTTP.String() + "/",
	}})
	require.NoError(t, err)
	require.NoError(t, conn.conn.WriteMessage(1, msg))
	e := evs.wait(t, func(e vite.Event) bool { return e.Type == vite.EventClientError })
	c := e.Client
	assert.Equal(t, "error", c.Kind)
	assert.Equal(t, "boom", c.Message)
	assert.Equal(t, tg.HTTP.String()+"/", c.Page)
	assert.Equal(t, "src/App.jsx", c.File)
	assert.Equal(t, 2, c.Line, "the throw is on line 2 of App.jsx: %+v", c)
	assert.Contains(t, c.Stack, "at App (src/App.jsx:2:")
	assert.Contains(t, c.Stack, "at renderWithHooks (node_modules/react-dom/cjs/react-dom-client.development.js:", "the optimizer's map: %s", c.Stack)
}

package preview

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestWarmerSkipsOptimizedDeps: the warmer loads a page's modules and what
// they import, each once, and leaves the optimized dependencies to Vite's
// own pre-transform, unless told to load them (a session that shares
// them waits for them), and then not what they import. It never loads
// Vite's client, a plugin's runtime or a file of an installed package.
func TestWarmerSkipsOptimizedDeps(t *testing.T) {
	modules := map[string]string{
		"/src/main.tsx":              `import "/.vite-cache/deps/react.js?v=1"; import App from "/src/App.tsx"; import "/src/index.css"`,
		"/src/App.tsx":               `import { jsx } from "/.vite-cache/deps/react_jsx-dev-runtime.js?v=1"; import "/src/main.tsx"; import RefreshRuntime from "/@react-refresh"; import "/@fs/node_modules/left-pad/index.js"; import "/node_modules/right-pad/index.js"`,
		"/@vite/client":              `import "/@fs/node_modules/vite/dist/client/env.mjs"`,
		"/@react-refresh":            `export default {}`,
		"/src/index.css":             `body {}`,
		"/.vite-cache/deps/react.js": `import "/.vite-cache/deps/chunk-1.js"`,
		"/.vite-cache/deps/react_jsx-dev-runtime.js": `export const jsx = 1`,
	}
	var mu sync.Mutex
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.RequestURI())
		mu.Unlock()
		body, ok := modules[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	base, err := url.Parse(srv.URL)
	require.NoError(t, err)
	for _, deps := range []bool{false, true} {
		asked = nil
		w := newWarmer(context.Background(), srv.Client(), base, deps)
		w.visit("/@vite/client", "/src/main.tsx", "/node_modules/.vite/deps/react-dom_client.js")
		w.wait()
		sort.Strings(asked)
		want := []string{"/src/App.tsx", "/src/index.css", "/src/main.tsx"}
		if deps {
			want = append([]string{"/.vite-cache/deps/react.js?v=1", "/.vite-cache/deps/react_jsx-dev-runtime.js?v=1", "/node_modules/.vite/deps/react-dom_client.js"}, want...)
		}
		assert.Equal(t, want, asked, "deps %v", deps)
	}
}

// TestWarmUpLeavesDepsToVite: with real sandboxed Vite, a session's
// warm-up has Vite transform the page's modules, the optimized
// dependencies they import and Vite's client, without asking for the
// dependencies, the client or the refresh runtime: a plugin of the
// project's Vite config writes down each module it transforms and each
// request its dev server gets.
func TestWarmUpLeavesDepsToVite(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	m := startBrowserManagerWith(t, func(o *Options) { o.Spares = -1 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	config := `import fs from 'node:fs'
import react from '@vitejs/plugin-react'

fs.mkdirSync('.vite-cache', { recursive: true })

export default {
  plugins: [react(), {
    name: 'warm-log',
    configureServer(s) {
      s.middlewares.use((req, res, next) => {
        fs.appendFileSync('.vite-cache/requests.log', req.url + '\n')
        next()
      })
    },
    transform(code, id) {
      fs.appendFileSync('.vite-cache/transformed.log', id + '\n')
    },
  }],
}
`
	info, err := m.Create(ctx, &CreateRequest{Files: []File{{Name: "vite.config.js", Content: config}}})
	require.NoError(t, err)
	s := m.local(info.SessionID)
	require.NotNil(t, s)
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(s.dir, ".vite-cache", name))
		if errors.Is(err, fs.ErrNotExist) {
			return ""
		}
		require.NoError(t, err)
		return string(b)
	}
	<-s.current().warmed
	assert.Contains(t, read("transformed.log"), "/src/App.tsx", "the warm-up loaded the page's modules")
	// Vite's pre-transform runs beside the requests that started it.
	require.Eventually(t, func() bool { return strings.Contains(read("transformed.log"), "/.vite-cache/deps/react-dom_client.js") },
		time.Minute, 20*time.Millisecond, "Vite transformed the optimized dependencies: %s", read("transformed.log"))
	// The runner has Vite transform its client as it starts.
	require.Eventually(t, func() bool { return strings.Contains(read("transformed.log"), "/vite/dist/client/client.mjs") },
		time.Minute, 20*time.Millisecond, "Vite transformed its client: %s", read("transformed.log"))
	assert.Contains(t, read("requests.log"), "/src/main.tsx")
	assert.NotContains(t, read("requests.log"), "/deps/", "nothing asked for an optimized dependency")
	assert.NotContains(t, read("requests.log"), "/@vite/client", "nothing asked for Vite's client")
	assert.NotContains(t, read("requests.log"), "/@react-refresh", "nor for the refresh runtime")
}

// TestPrepareSharesColdOptimized: on a node whose dependency cache is
// empty, Prepare's session optimizes the template's dependencies itself,
// and its warm-up waits until the optimizer has written them before it
// shares them, so that spares can start (they need them).
func TestPrepareSharesColdOptimized(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	cache := testenv.TempDir(t)
	m := startBrowserManagerWith(t, func(o *Options) { o.CacheDir = cache })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, m.Prepare(ctx))
	shared, err := filepath.Glob(filepath.Join(cache, "*", "optimized", "*", "_metadata.json"))
	require.NoError(t, err)
	require.NotEmpty(t, shared, "Prepare shared what its optimizer made")
	require.Eventually(t, func() bool { return m.env.spares.ready() > 0 }, 2*time.Minute, 20*time.Millisecond, "a spare starts on them")
}

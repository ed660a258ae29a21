package vite_test

import (
	"context"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"testing/fstest"

	"github.com/vitehost/vitehost/hotfile"
	"github.com/vitehost/vitehost/ssrproxy"
	"github.com/vitehost/vitehost/vite"
)

// A manifest as vite build --manifest writes it: an entry that imports a
// shared chunk, each with its stylesheet.
var exampleBuild = fstest.MapFS{
	".vite/manifest.json": {Data: []byte(`{
  "src/main.ts": {"file": "assets/main-4f2a.js", "src": "src/main.ts", "isEntry": true,
                  "imports": ["_shared-9c1e.js"], "css": ["assets/main-77b0.css"]},
  "_shared-9c1e.js": {"file": "assets/shared-9c1e.js", "css": ["assets/shared-1d3f.css"]}
}`)},
}

// Tags gives what Vite itself would put into the page: the entry's script,
// a modulepreload for each chunk it imports, and every stylesheet.
func ExampleManifest_Tags() {
	m, err := vite.ReadManifest(exampleBuild, nil) // os.DirFS("dist"), or an embed.FS
	if err != nil {
		log.Fatal(err)
	}
	tags, err := m.Tags("", "src/main.ts")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tags)
	// Output:
	// <script type="module" crossorigin src="/assets/main-4f2a.js"></script>
	// <link rel="modulepreload" crossorigin href="/assets/shared-9c1e.js">
	// <link rel="stylesheet" crossorigin href="/assets/shared-1d3f.css">
	// <link rel="stylesheet" crossorigin href="/assets/main-77b0.css">
}

// One Assets value serves a Go template from the first go run to
// production: while the dev server runs (its hot file holds a URL), the
// tags load the entry from it, through the Go app's ssrproxy; otherwise
// they come from the manifest.
func ExampleAssets() {
	hot, err := hotfile.Watch("frontend/.vitehost/hot", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer hot.Close()
	m, err := vite.ReadManifest(os.DirFS("frontend/dist"), nil) // or an embed.FS through fs.Sub
	if err != nil {
		log.Fatal(err)
	}
	assets := vite.NewAssets(&vite.AssetsOptions{Dev: hot, Manifest: m, React: true}) // hot: a *hotfile.Watcher
	page := template.Must(template.New("page").Parse(`<!doctype html><head>{{.}}</head><body>rendered by Go</body>`))
	http.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		tags, err := assets.Tags("", "src/main.ts") // template.HTML: script, modulepreloads, stylesheets
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		page.Execute(w, tags)
	})
}

// A built single-page app served by Go: the dist directory through an
// os.Root, which no symbolic link leads out of.
func ExampleNewSPA() {
	root, err := os.OpenRoot("frontend/dist") // no symbolic link leads out of it
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	mux.Handle("/", vite.NewSPA(root.FS(), nil))
	log.Fatal(http.ListenAndServe("127.0.0.1:8000", mux))
}

// A server-rendering framework in production: its built server (here
// whatever nuxi build, SvelteKit's adapter-node, Astro's node adapter or
// react-router build left in frontend) supervised by Go, behind the same
// ssrproxy as in development.
func ExampleStartBuilt() {
	ctx := context.Background()
	srv, err := vite.StartBuilt(ctx, "frontend", nil) // detects the framework from the build output
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop(ctx)
	proxy := ssrproxy.New(srv, nil)
	defer proxy.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	mux.Handle("/", srv.HashedFiles(proxy)) // the build's hashed files from memory, pages from Node
	log.Fatal(http.ListenAndServe("127.0.0.1:8000", mux))
}

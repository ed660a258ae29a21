package vite_test

import (
	"context"
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/vite"
)

// Detect reads package.json: a nuxt dependency means Nuxt, an astro one
// Astro, anything else plain Vite.
func ExampleDetect() {
	dir, err := os.MkdirTemp("", "app-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pkg := `{"dependencies": {"nuxt": "^4.4.0", "vue": "^3.5.0"}}`
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(pkg), 0o644); err != nil {
		log.Fatal(err)
	}
	fw, err := vite.Detect(dir)
	fmt.Println(fw, err)
	// Output: nuxt <nil>
}

// A Go app on port 8000 starts its front end's dev server and proxies to
// it; the browser's HMR client connects to port 8000 at /hmr, and the proxy
// (ssrproxy) follows the hot files to the two listeners.
func ExampleStart() {
	ctx := context.Background() // the server's lifetime: cancelling it stops the server
	public, _ := url.Parse("http://localhost:8000")
	s, err := vite.Start(ctx, "./frontend", &vite.Options{
		PublicURL: public,
		HMRPath:   "/hmr",
		HotFile:   "./frontend/public/hot",
	})
	if err != nil {
		log.Fatal(err) // a *vite.StartError quotes the dev server's last lines
	}
	defer s.Stop(context.Background())

	t := s.Targets()
	fmt.Println("pages and modules:", t.HTTP, "HMR socket:", t.HMR, "Vite", s.Version())

	// Restarts after a crash (and Vite's own restarts, with a new token).
	updates, cancel := s.Subscribe()
	defer cancel()
	for t := range updates {
		fmt.Println("now at", t.HTTP, "token", s.Token())
	}
}

// An editor saves two files as one change: the dev server holds its
// watcher for them, they are written, and Commit says what Vite did with
// all of them, once, as soon as it knows.
func ExampleServer_Hold() {
	ctx := context.Background()
	s, err := vite.Start(ctx, "./frontend", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Stop(context.Background())

	files := map[string]string{
		"src/App.jsx":  "import Card from './Card.jsx'\nexport default () => <Card />\n",
		"src/Card.jsx": "export default () => <p>card</p>\n",
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	h, err := s.Hold(ctx, names, nil)
	if err != nil {
		log.Fatal(err) // nothing is held: files written now reach Vite one by one
	}
	defer h.Release() // should a write fail: Vite takes the files as they are
	for n, src := range files {
		if err := os.WriteFile(filepath.Join(s.Dir(), n), []byte(src), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	res, err := h.Commit(ctx)
	if err != nil {
		log.Fatal(err) // the files are on disk; the outcome did not come
	}
	fmt.Println("hot updates:", len(res.Updates), "full reload:", res.FullReload, "compile errors:", len(res.Errors))
}

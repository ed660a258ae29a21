package hotfile_test

import (
	"fmt"
	"log"
	"net/url"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/hotfile"
)

// A dev server publishes its URLs; a Go app follows them.
func Example() {
	dir, _ := os.MkdirTemp("", "hotfile-example")
	defer os.RemoveAll(dir)
	hot := filepath.Join(dir, "public", "hot")

	// What the dev server side does once it listens.
	httpURL, _ := url.Parse("http://127.0.0.1:5173")
	hmrURL, _ := url.Parse("http://127.0.0.1:24678")
	if err := hotfile.Write(hot, httpURL); err != nil {
		log.Fatal(err)
	}
	if err := hotfile.Write(hotfile.HMRPath(hot), hmrURL); err != nil {
		log.Fatal(err)
	}

	// What the Go app does: watch, and read the targets per request.
	w, err := hotfile.Watch(hot, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	t := w.Targets()
	fmt.Println("http:", t.HTTP)
	fmt.Println("hmr: ", t.HMR)

	// The dev server restarts on another port; subscribers hear of it.
	changes, cancel := w.Subscribe()
	defer cancel()
	next, _ := url.Parse("http://127.0.0.1:5174")
	if err := hotfile.Write(hot, next); err != nil {
		log.Fatal(err)
	}
	fmt.Println("now: ", (<-changes).HTTP)
	// Output:
	// http: http://127.0.0.1:5173
	// hmr:  http://127.0.0.1:24678
	// now:  http://127.0.0.1:5174
}

// A dev server that listens on Unix sockets (in a sandbox without a network)
// publishes unix URLs, and a reader gets the socket's path back.
func ExampleUnixURL() {
	dir, _ := os.MkdirTemp("", "hotfile-example")
	defer os.RemoveAll(dir)
	hot := filepath.Join(dir, "hot")

	if err := hotfile.Write(hot, hotfile.UnixURL("/run/dev/http.sock")); err != nil {
		log.Fatal(err)
	}
	content, _ := os.ReadFile(hot)
	fmt.Print(string(content))
	u, err := hotfile.Read(hot)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.Scheme == hotfile.UnixScheme, u.Path)
	// Output:
	// unix:///run/dev/http.sock
	// true /run/dev/http.sock
}

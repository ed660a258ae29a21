package main

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/vitehost/vitehost/vite"
)

//go:embed templates/server-rendered.html
var templates embed.FS

var pageTemplate = template.Must(template.ParseFS(templates, "templates/server-rendered.html"))

// serverRendered is the page that Go renders with html/template at
// /server-rendered: its script and stylesheet tags come from assets, from
// the dev server while it runs and from the build's manifest otherwise.
func serverRendered(assets *vite.Assets, entry string, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tags, err := assets.Tags("", entry)
		if err != nil {
			log.Error("hostapp: tags of the Go page", "entry", entry, "err", err)
			http.Error(w, "no tags for the entry "+entry+" (see -entry): "+err.Error(), http.StatusNotFound)
			return
		}
		mode := "production: tags from the manifest"
		if assets.Dev() {
			mode = "development: tags from the dev server"
		}
		var b bytes.Buffer
		if err := pageTemplate.Execute(&b, map[string]any{"Tags": tags, "Mode": mode}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b.Bytes())
	}
}

// usesReact reports whether the project in dir uses @vitejs/plugin-react,
// whose components need the React Refresh preamble in development.
func usesReact(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	return err == nil && strings.Contains(string(b), `"@vitejs/plugin-react`)
}

// readManifest reads the manifest of the Vite build in dir/dist, nil when
// there is none.
func readManifest(dir string) (*vite.Manifest, error) {
	m, err := vite.ReadManifest(os.DirFS(filepath.Join(dir, "dist")), nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return m, err
}

package launch

import (
	"embed"
	"io/fs"
	"maps"
	"strings"
	"sync"

	"github.com/vitehost/vitehost/preview/internal/deps"
)

// The template is the React project that a create without a package.json
// starts from: its files, other than package.json, under the client's, and
// the dependency set its package.json declares.

//go:embed all:template
var templateFS embed.FS

// File is one file of the template: its slash-separated name in the
// project, and its content.
type File struct {
	Name string
	Data []byte
}

// TemplateDeps returns the dependency set of the template: a copy of what
// the embedded package.json, parsed once, declares, with the defaults.
func TemplateDeps() (deps.Set, error) {
	set, err := parsedTemplateDeps()
	return maps.Clone(set), err
}

var parsedTemplateDeps = sync.OnceValues(func() (deps.Set, error) {
	pkg, err := templateFS.ReadFile("template/package.json")
	if err != nil {
		return nil, err
	}
	set, err := deps.Parse(pkg)
	if err != nil {
		return nil, err
	}
	return set.WithDefaults(), nil
})

// TemplateFiles returns the template's files other than package.json.
func TemplateFiles() ([]File, error) {
	var out []File
	err := fs.WalkDir(templateFS, "template", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "template/")
		if rel == "package.json" {
			return nil
		}
		data, err := templateFS.ReadFile(p)
		out = append(out, File{Name: rel, Data: data})
		return err
	})
	return out, err
}

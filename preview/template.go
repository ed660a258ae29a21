package preview

import (
	"embed"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
)

//go:embed all:template
var templateFS embed.FS

// templateDeps returns the dependency set of the template, the one a
// create without a package.json gets: a copy of what the embedded
// package.json, parsed once, declares.
func templateDeps() (Deps, error) {
	deps, err := parsedTemplateDeps()
	return maps.Clone(deps), err
}

var parsedTemplateDeps = sync.OnceValues(func() (Deps, error) {
	pkg, err := templateFS.ReadFile("template/package.json")
	if err != nil {
		return nil, err
	}
	deps, err := ParsePackageJSON(pkg)
	if err != nil {
		return nil, err
	}
	return deps.WithDefaults(), nil
})

// projectFiles returns the files of a new project: the template's (other
// than package.json) when useTemplate is set, replaced by and joined with
// the client's, sorted by name.
func projectFiles(useTemplate bool, client []pendingFile) ([]pendingFile, error) {
	var out []pendingFile
	if useTemplate {
		tmpl, err := readTemplate()
		if err != nil {
			return nil, err
		}
		sent := make(map[string]bool, len(client))
		for _, f := range client {
			sent[f.name] = true
		}
		for _, f := range tmpl {
			if !sent[f.name] {
				out = append(out, f)
			}
		}
	}
	out = append(out, client...)
	slices.SortFunc(out, func(a, b pendingFile) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// readTemplate returns the template's files other than package.json.
func readTemplate() ([]pendingFile, error) {
	var out []pendingFile
	err := fs.WalkDir(templateFS, "template", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, "template/")
		if rel == "package.json" {
			return nil
		}
		data, err := templateFS.ReadFile(p)
		out = append(out, pendingFile{name: rel, data: data})
		return err
	})
	return out, err
}

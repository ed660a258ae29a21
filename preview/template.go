package preview

import (
	"slices"
	"strings"

	"github.com/vitehost/vitehost/preview/internal/launch"
)

// This file is the edge between the Manager and the template of
// internal/launch, the project a create without a package.json starts
// from: its dependency set, and its files as files to write.

// templateDeps returns the dependency set of the template, the one a
// create without a package.json gets.
func templateDeps() (Deps, error) { return launch.TemplateDeps() }

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
	files, err := launch.TemplateFiles()
	if err != nil {
		return nil, err
	}
	out := make([]pendingFile, len(files))
	for i, f := range files {
		out[i] = pendingFile{name: f.Name, data: f.Data}
	}
	return out, nil
}

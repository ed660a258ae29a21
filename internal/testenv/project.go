package testenv

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ReadProject returns the files of the project in dir as the preview API
// takes them ({"name", "content"} objects, as a client sends them), and its
// package.json apart.
func ReadProject(dir string) (files []any, pkg json.RawMessage, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name, _ := filepath.Rel(dir, p)
		if name == "package.json" {
			pkg = b
			return nil
		}
		files = append(files, map[string]any{"name": filepath.ToSlash(name), "content": string(b)})
		return nil
	})
	if err == nil && pkg == nil {
		err = fmt.Errorf("%s has no package.json", dir)
	}
	return files, pkg, err
}

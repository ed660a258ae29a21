// Package tsconfig reads the import aliases of a project's tsconfig
// (compilerOptions.paths), for the Vite config the service writes.
package tsconfig

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
)

// Alias is one import alias for Vite's resolve.alias: an import that is
// Find, or starts with Find + "/", resolves under Replacement.
type Alias struct {
	Find        string `json:"find"`
	Replacement string `json:"replacement"`
}

// Names are read in order; the first with compilerOptions.paths
// wins. create-vite's React template keeps its paths in tsconfig.app.json,
// referenced from tsconfig.json; shadcn-style apps put "@/*" in both.
var Names = []string{"tsconfig.json", "tsconfig.app.json", "jsconfig.json"}

// Aliases turns the compilerOptions.paths of a tsconfig (JSON with
// comments and trailing commas, as TypeScript allows) into Vite aliases with
// absolute replacements under root. Entries that point outside root are
// dropped.
func Aliases(data []byte, root string) []Alias {
	var cfg struct {
		CompilerOptions struct {
			BaseURL string              `json:"baseUrl"`
			Paths   map[string][]string `json:"paths"`
		} `json:"compilerOptions"`
	}
	if err := json.Unmarshal(stripJSONC(data), &cfg); err != nil {
		return nil
	}
	base := filepath.Join(root, filepath.FromSlash(cfg.CompilerOptions.BaseURL))
	var out []Alias
	for pattern, targets := range cfg.CompilerOptions.Paths {
		if len(targets) == 0 || pattern == "" || pattern == "*" {
			continue
		}
		find := strings.TrimSuffix(pattern, "/*")
		target := strings.TrimSuffix(targets[0], "/*")
		if strings.Contains(find, "*") || strings.Contains(target, "*") || filepath.IsAbs(target) {
			continue // only prefix patterns map onto Vite's string aliases
		}
		repl := filepath.Join(base, filepath.FromSlash(target))
		if repl != root && !strings.HasPrefix(repl, root+string(filepath.Separator)) {
			continue
		}
		out = append(out, Alias{Find: find, Replacement: repl})
	}
	// Longer finds first, so that "@/components" wins over "@".
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].Find) != len(out[j].Find) {
			return len(out[i].Find) > len(out[j].Find)
		}
		return out[i].Find < out[j].Find
	})
	return out
}

// stripJSONC turns JSON with comments into JSON: it blanks // and /* */
// comments outside strings and drops trailing commas before } and ].
// Malformed input stays malformed; it never panics.
func stripJSONC(data []byte) []byte {
	out := make([]byte, 0, len(data))
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString = true
			out = append(out, c)
		case c == '/' && i+1 < len(data) && data[i+1] == '/':
			for i < len(data) && data[i] != '\n' {
				i++
			}
			out = append(out, '\n')
		case c == '/' && i+1 < len(data) && data[i+1] == '*':
			i += 2
			for i < len(data) && !(data[i] == '*' && i+1 < len(data) && data[i+1] == '/') {
				i++
			}
			i++ // past the '/'
			out = append(out, ' ')
		case c == '}' || c == ']':
			// Drop a comma that only white space separates from here.
			j := len(out) - 1
			for j >= 0 && (out[j] == ' ' || out[j] == '\t' || out[j] == '\n' || out[j] == '\r') {
				j--
			}
			if j >= 0 && out[j] == ',' {
				out = append(out[:j], out[j+1:]...)
			}
			out = append(out, c)
		default:
			out = append(out, c)
		}
	}
	return out
}

// Package imports finds the import specifiers of a JavaScript module as a
// dev server serves it, for code that walks a page's modules the way a
// browser would (the preview warm-up, the benchmarks' crawler).
package imports

import "strings"

// Specs returns the specifiers of the static and dynamic imports in a
// module: what follows "from" or "import" (and an optional "("), quoted. It
// scans once, without a regular expression: the optimized dependencies run
// to megabytes, and a regexp over them took a third of a page load's time.
func Specs(body string) []string {
	var out []string
	for _, kw := range []string{"from", "import"} {
		for i := 0; ; {
			j := strings.Index(body[i:], kw)
			if j < 0 {
				break
			}
			at := i + j
			i = at + len(kw)
			if at > 0 && isIdent(body[at-1]) {
				continue
			}
			k := i
			for k < len(body) && (body[k] == ' ' || body[k] == '\t' || body[k] == '\n' || body[k] == '\r' || kw == "import" && body[k] == '(') {
				k++
			}
			if k >= len(body) || body[k] != '"' && body[k] != '\'' {
				continue
			}
			q := body[k]
			end := strings.IndexAny(body[k+1:], string(q)+"\n")
			if end <= 0 || body[k+1+end] != q {
				continue
			}
			out = append(out, body[k+1:k+1+end])
		}
	}
	return out
}

func isIdent(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

package deps

import (
	"regexp"
	"strings"
)

// This file turns npm's error output into what a client may see: npm's
// error code and its one-line reason, which names the failing package. The
// rest (log paths, registry URLs, the dependency tree) is for the
// operator's log only.

// npmClientErrors are npm's codes for a dependency set that cannot be
// resolved as declared: the client's mistake, answered 400. Other codes
// (the network, the registry, the disk) are the service's.
var npmClientErrors = map[string]bool{
	"ETARGET":              true, // no version matches the spec
	"E404":                 true, // no such package
	"ERESOLVE":             true, // peer dependencies conflict
	"EINVALIDTAGNAME":      true,
	"EINVALIDPACKAGENAME":  true,
	"EUNSUPPORTEDPROTOCOL": true,
}

var (
	npmPrefix = regexp.MustCompile(`^npm (?:error|ERR!) ?`)
	urlRE     = regexp.MustCompile(`[a-z][a-z0-9+.-]*://\S+`)
	// absPathRE is an absolute path where one starts: at the start of the
	// line or after a space, a quote or a parenthesis.
	absPathRE = regexp.MustCompile(`(^|[\s'"(=])/[^\s'"()]*`)
	addrRE    = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\[[0-9a-fA-F:.]+\](?::\d+)?`)
)

// npmFailure is npm's error code and one-line reason from its output.
type npmFailure struct {
	code   string // "ETARGET"; "" when npm printed none
	reason string // "No matching version found for vite@^99.0.0."
}

// client reports whether the failure is the client's dependency set.
func (f npmFailure) client() bool { return npmClientErrors[f.code] }

func (f npmFailure) String() string {
	switch {
	case f.code == "" && f.reason == "":
		return "npm failed without a reason"
	case f.code == "":
		return "npm: " + f.reason
	case f.reason == "":
		return "npm " + f.code
	}
	return "npm " + f.code + ": " + f.reason
}

// parseNPMError reads npm's output (npm 7 and later print "npm error", older
// ones "npm ERR!").
func parseNPMError(out string) npmFailure {
	var f npmFailure
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !npmPrefix.MatchString(l) {
			continue
		}
		l = strings.TrimSpace(npmPrefix.ReplaceAllString(l, ""))
		if code, ok := strings.CutPrefix(l, "code "); ok && f.code == "" {
			f.code = strings.TrimSpace(code)
			continue
		}
		lines = append(lines, l)
	}
	pick := func(match func(string) bool) string {
		for _, l := range lines {
			if match(l) {
				return l
			}
		}
		return ""
	}
	switch f.code {
	case "ETARGET":
		f.reason = strings.TrimSpace(strings.TrimPrefix(pick(func(l string) bool { return strings.Contains(l, "No matching version") }), "notarget"))
	case "E404":
		// "404  The requested resource 'x@1' could not be found or ...", or
		// npm 8's "404  'x@1' is not in this registry."
		l := pick(func(l string) bool {
			return strings.Contains(l, "could not be found") || strings.Contains(l, "is not in this registry")
		})
		f.reason = strings.TrimSpace(strings.TrimPrefix(l, "404"))
	case "ERESOLVE":
		for i, l := range lines {
			if l == "Could not resolve dependency:" && i+1 < len(lines) {
				f.reason = "could not resolve the dependency: " + lines[i+1]
				break
			}
		}
	}
	if f.reason == "" {
		f.reason = pick(func(l string) bool {
			return l != "" && !strings.HasPrefix(l, "A complete log") && !strings.HasPrefix(l, "For a full report") &&
				!strings.HasPrefix(l, "/") && l != "404"
		})
	}
	f.reason = ScrubText(f.reason)
	if len(f.reason) > 300 {
		f.reason = f.reason[:300] + "…"
	}
	return f
}

// ScrubText removes what a client must not see from a line of a tool's
// output: URLs (registry addresses), IP addresses and absolute paths of
// the host.
func ScrubText(s string) string {
	s = urlRE.ReplaceAllString(s, "<url>")
	s = addrRE.ReplaceAllString(s, "<address>")
	return absPathRE.ReplaceAllString(s, "$1<path>")
}

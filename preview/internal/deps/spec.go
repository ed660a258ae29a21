package deps

import (
	"strings"
)

// This file decides which version specs a dependency set may declare: only
// what npm resolves against the registry. npm reads a spec it does not
// parse as a range as something else (npm-package-arg's rules): a string
// that starts with "." "/" or "~/" is a directory, one that ends in .tgz,
// .tar or .tar.gz a tarball on the disk, "a/b" a GitHub repository, and a
// protocol ("file:", "link:", "git+https:", "workspace:") says where to
// fetch from. {"evil": ".."} once installed node_modules/evil as a link to
// the shared dependency cache, and "canary.tgz" made npm open a host path.
// So a spec is accepted only when it parses whole, here, as one of:
//
//   - a semver range set as node-semver's grammar has it: "1.2.3", "^1.2",
//     "~1", ">=1 <2", "1.x || 2", "1 - 2", "*" (any version);
//   - a dist-tag: a letter, then letters, digits, "-", "_" and "." ("latest",
//     "next", "ts5.6"), not ending like a tarball;
//   - an npm alias of a registry package: "npm:name", "npm:name@<range or
//     dist-tag>", "npm:@scope/name@...".

// maxSpecLen bounds a version spec.
const maxSpecLen = 128

// checkSpec returns nil when spec is a registry spec, or why not.
func checkSpec(name, spec string) error {
	refuse := func(why string) error {
		return invalid(CodeBadDependency, "dependency %q: spec %q refused: %s", name, spec, why)
	}
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		// npm reads "" as "*"; a client that means it says so.
		return refuse(`empty: write "*" or "latest" for any version`)
	case len(s) > maxSpecLen:
		return refuse("longer than 128 characters")
	case strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r > '~' }):
		// Tabs, line ends and the rest: a space is the only separator.
		return refuse("only printable ASCII characters are allowed")
	}
	if target, ok := strings.CutPrefix(s, "npm:"); ok {
		if why := aliasTarget(target); why != "" {
			return refuse(why)
		}
		return nil
	}
	if why := registrySpec(s); why != "" {
		return refuse(why)
	}
	return nil
}

// onlyRegistry is the reason given for every spec that names another source.
const onlyRegistry = "only registry versions, ranges, dist-tags and npm: aliases of registry packages are allowed (no git, github, file, link, workspace, tarball, path or URL)"

// registrySpec returns "" when s is a range set or a dist-tag.
func registrySpec(s string) string {
	if isRangeSet(s) || isDistTag(s) {
		return ""
	}
	return onlyRegistry
}

// aliasTarget returns "" when target ("name" or "name@spec") names a
// registry package by a range or a dist-tag.
func aliasTarget(target string) string {
	name, spec := target, ""
	// The version follows the last "@" that is not the scope's.
	if i := strings.LastIndexByte(target, '@'); i > 0 {
		name, spec = target[:i], target[i+1:]
	}
	if err := checkPackageName(name); err != nil {
		return "the alias names no registry package: " + onlyRegistry
	}
	if spec == "" && !strings.HasSuffix(target, "@") {
		return ""
	}
	if spec == "" || strings.TrimSpace(spec) != spec {
		return onlyRegistry
	}
	return registrySpec(spec)
}

// isDistTag reports whether s reads as a dist-tag and as nothing else npm
// knows: no path, no tarball, no protocol.
func isDistTag(s string) bool {
	if s == "" || len(s) > 64 || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	l := strings.ToLower(s)
	return !strings.HasSuffix(l, ".tgz") && !strings.HasSuffix(l, ".tar") && !strings.HasSuffix(l, ".tar.gz") &&
		!strings.HasSuffix(s, ".")
}

// isRangeSet reports whether s is a range set: ranges joined by "||".
func isRangeSet(s string) bool {
	for _, r := range strings.Split(s, "||") {
		if !isRange(strings.TrimSpace(r)) {
			return false
		}
	}
	return true
}

// isRange reports whether r is a hyphen range ("1.2 - 2"), or
// comparators separated by spaces; "" is any version.
func isRange(r string) bool {
	if lo, hi, ok := strings.Cut(r, " - "); ok {
		return isPartial(strings.TrimSpace(lo)) && isPartial(strings.TrimSpace(hi))
	}
	fields := strings.Fields(r)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		// node-semver allows a space between an operator and its version.
		if op := operator(f); op == f && i+1 < len(fields) {
			i++
			f += fields[i]
		}
		if !isComparator(f) {
			return false
		}
	}
	return true
}

// operator returns the comparison operator that c starts with, or "".
func operator(c string) string {
	for _, op := range []string{"~>", ">=", "<=", "~", "^", ">", "<", "="} {
		if strings.HasPrefix(c, op) {
			return op
		}
	}
	return ""
}

// isComparator reports whether c is an optional operator and a partial
// version.
func isComparator(c string) bool {
	return isPartial(strings.TrimPrefix(c, operator(c)))
}

// isPartial reports whether p is a partial version: "1", "1.x", "1.2.*",
// "v1.2.3-beta.1+build", "*".
func isPartial(p string) bool {
	p = strings.TrimPrefix(strings.TrimPrefix(p, "="), "v")
	if p == "" {
		return false
	}
	p, build, hasBuild := strings.Cut(p, "+")
	if hasBuild && !isIdentifiers(build) {
		return false
	}
	core, pre, hasPre := strings.Cut(p, "-")
	if hasPre && !isIdentifiers(pre) {
		return false
	}
	parts := strings.Split(core, ".")
	if len(parts) > 3 || (hasPre || hasBuild) && len(parts) != 3 {
		return false
	}
	for _, x := range parts {
		if x == "x" || x == "X" || x == "*" {
			continue
		}
		if x == "" || len(x) > 16 || x[0] == '0' && len(x) > 1 {
			return false
		}
		for i := 0; i < len(x); i++ {
			if x[i] < '0' || x[i] > '9' {
				return false
			}
		}
	}
	return true
}

// isIdentifiers reports whether s is dot-separated identifiers of a
// prerelease or build: [0-9A-Za-z-]+ each.
func isIdentifiers(s string) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

package deps

import (
	"fmt"
	"slices"
	"strings"
)

// This file proposes the Vite line that a refused project should move to:
// the newest one that its own plugins accept, so that a client that
// follows the proposal is not refused again by npm (a peer conflict) or by
// the plugin at run time.

// pluginPeers is the newest Vite major line that the newest release of each
// major line of a plugin accepts (its peerDependencies.vite, read from the
// registry with npm view on 2026-12-07). A built-in table, not a registry
// query: the refusal is decided before anything resolves, in
// milliseconds, and the plugins that AI builders generate are few. A plugin
// missing here is not counted.
var pluginPeers = map[string]map[int]int{
	"@vitejs/plugin-react":         {4: 7, 5: 8, 6: 8},
	"@vitejs/plugin-react-swc":     {3: 7, 4: 8},
	"@vitejs/plugin-vue":           {4: 5, 5: 6, 6: 8},
	"@sveltejs/vite-plugin-svelte": {3: 5, 4: 5, 5: 6, 6: 7, 7: 8},
	"@tailwindcss/vite":            {4: 8},
	"lovable-tagger":               {1: 8},
}

// newestLine is the newest Vite major line this table knows.
const newestLine = 8

// acceptedLine returns the newest Vite major line that every plugin of set
// that the table knows accepts, and the plugins that hold it below
// newestLine ("lovable-tagger 1").
func acceptedLine(set Set) (int, []string) {
	line := newestLine
	var holding []string
	names := make([]string, 0, len(set))
	for name := range set {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		lines, ok := pluginPeers[name]
		if !ok {
			continue
		}
		major, ok := specMajor(set[name])
		if !ok {
			continue
		}
		max, ok := lines[major]
		if !ok || max >= newestLine {
			continue
		}
		if max < line {
			line = max
		}
		holding = append(holding, fmt.Sprintf("%s %d", name, major))
	}
	return line, holding
}

// specMajor returns the major version a declared spec pins ("^3.5.0",
// "~3.5", "3.x", "3"), and false for one that names several (a range set,
// ">=3", a dist-tag).
func specMajor(spec string) (int, bool) {
	s := strings.TrimLeft(strings.TrimSpace(spec), "^~=v")
	if s == "" || strings.ContainsAny(s, " |<>*") {
		return 0, false
	}
	head, _, _ := strings.Cut(s, ".")
	n := 0
	for _, c := range head {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, head != ""
}

// propose says which vite a project should declare to run at floor or
// later: the newest line its plugins accept, from its advisory-free
// release, or, when the plugins hold it below floor, which plugins to
// update.
func propose(set Set, floor version) string {
	line, holding := acceptedLine(set)
	target, ok := viteFloors[line]
	if !ok {
		target = version{line, 0, 0, ""}
	}
	if target.less(floor) {
		target = floor
	}
	if target.major > line {
		return fmt.Sprintf("the project's plugins accept Vite %d at most (%s): update them to releases that accept vite ^%s, and use that",
			line, strings.Join(holding, ", "), target)
	}
	if len(holding) > 0 {
		return fmt.Sprintf("use vite ^%s, the newest line that the project's plugins accept (%s)", target, strings.Join(holding, ", "))
	}
	return fmt.Sprintf("use vite ^%s", target)
}

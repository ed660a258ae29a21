package deps

import (
	"fmt"
	"strconv"
	"strings"
)

// viteFloors is the first release of each Vite major line that no
// published advisory on reading files through the dev server affects: a
// session on an older release gets a warning (ViteWarning), and the
// router refuses the requests those advisories use (preview/fsdeny.go).
// Each floor is the release that fixed the last such advisory published
// for its line:
//
//   - 6.4.3, 7.3.5, 8.0.16 fix GHSA-fx2h-pf6j-xcff (CVE-2026-53571,
//     server.fs.deny bypassed through alternate Windows paths) and, with the
//     releases before them, every earlier one: GHSA-p9ff-h696-f583
//     (CVE-2026-39363, files read through the HMR WebSocket's fetchModule),
//     GHSA-v2wj-q39q-566r (CVE-2026-39364), GHSA-4w7w-66w2-5vf9
//     (CVE-2026-39365), CVE-2025-62522, CVE-2025-58751/58752,
//     CVE-2025-46565, CVE-2025-32395, CVE-2025-31486, CVE-2025-31125 and
//     CVE-2025-30208.
//   - Vite 5 and older: GHSA-fx2h-pf6j-xcff affects every release before
//     6.4.3 and no 5.x release fixes it (the line ended with 5.4.21).
//
// Some of those apply only to Windows hosts; the floors include them
// anyway, so that one rule holds wherever the service runs. Major lines
// newer than 8 came after all of them.
var viteFloors = map[int]version{6: {6, 4, 3, ""}, 7: {7, 3, 5, ""}, 8: {8, 0, 16, ""}}

// newestFloored is the newest major line with a floor.
const newestFloored = 8

// version is a semantic version: major.minor.patch[-pre].
type version struct {
	major, minor, patch int
	pre                 string
}

func (v version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch)
	if v.pre != "" {
		s += "-" + v.pre
	}
	return s
}

// less reports whether v comes before w; a prerelease comes before its
// release (the floors have none, so prereleases need no finer order).
func (v version) less(w version) bool {
	switch {
	case v.major != w.major:
		return v.major < w.major
	case v.minor != w.minor:
		return v.minor < w.minor
	case v.patch != w.patch:
		return v.patch < w.patch
	}
	return v.pre != "" && w.pre == ""
}

// parseVersion reads an exact version ("8.0.16", "v6.4.3", "=7.3.5",
// "8.1.0-beta.2", "8.1.0+build"); ok is false for anything else, ranges
// included.
func parseVersion(s string) (v version, ok bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "="), "v")
	s, _, _ = strings.Cut(s, "+")
	s, v.pre, _ = strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return version{}, false
	}
	nums := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return version{}, false
		}
		nums[i] = n
	}
	return version{nums[0], nums[1], nums[2], v.pre}, true
}

// MinVite is the oldest Vite release a session runs: the runner drives
// Vite 4.5 and later (checked on 4.5, 5.4, 6.4, 7.3 and 8.x).
const MinVite = "4.5.0"

var minVite = version{4, 5, 0, ""}

// ParseFloor reads an operator's Vite floor: "" (MinVite), a major line
// ("6"), a minor ("6.4") or a release ("6.4.3"). A floor below MinVite is
// MinVite.
func ParseFloor(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if s == "" {
		return MinVite, nil
	}
	full := s
	for strings.Count(full, ".") < 2 {
		full += ".0"
	}
	v, ok := parseVersion(full)
	if !ok || v.pre != "" {
		return "", fmt.Errorf("vitehost/deps: Vite floor %q is not a version such as 6, 6.4 or 6.4.3", s)
	}
	if v.less(minVite) {
		v = minVite
	}
	return v.String(), nil
}

// floorVersion is the floor a caller passed, MinVite for "" or one that
// ParseFloor would refuse.
func floorVersion(floor string) version {
	f, err := ParseFloor(floor)
	if err != nil {
		return minVite
	}
	v, _ := parseVersion(f)
	return v
}

// CheckViteVersion refuses a resolved vite version below floor (see
// ParseFloor; "" means MinVite): an *InvalidError with CodeViteVersion
// whose message proposes the newest Vite line that the plugins of set
// accept. A version it cannot read passes: the dev server's start reports
// it.
func CheckViteVersion(s, floor string, set Set) error {
	v, ok := parseVersion(s)
	if !ok {
		return nil
	}
	f := floorVersion(floor)
	if !v.less(f) {
		return nil
	}
	return invalid(CodeViteVersion, "vite %s is older than %s, the oldest Vite this preview service runs; %s", v, f, propose(set, f))
}

// ViteWarning returns the warning of a session whose resolved vite has
// published advisories on reading the dev server's files, and false for
// one without.
func ViteWarning(s string, set Set) (Warning, bool) {
	v, ok := parseVersion(s)
	if !ok || v.major > newestFloored {
		return Warning{}, false
	}
	if floor, ok := viteFloors[v.major]; ok && !v.less(floor) {
		return Warning{}, false
	}
	return Warning{Code: WarnViteAdvisories, Message: fmt.Sprintf(
		"vite %s has published advisories on reading the dev server's files (fixed in 6.4.3, 7.3.5 and 8.0.16); "+
			"the preview refuses the requests they use, but other places this project runs do not: %s", v, propose(set, minVite))}, true
}

package deps

import (
	"strings"
)

// This file decides a declared vite range against the floor before
// anything resolves: a range whose every release is below the floor is
// refused in milliseconds, not after npm resolved the set (seconds).

// CheckViteRange refuses a declared vite spec all of whose releases lie
// below floor (see CheckViteVersion, whose refusal it gives). A spec it
// cannot bound (">=5", a dist-tag, an alias) passes: the resolved version
// is checked after the resolution.
func CheckViteRange(spec, floor string, set Set) error {
	f := floorVersion(floor)
	upper, inclusive, ok := rangeUpper(spec)
	if !ok {
		return nil
	}
	if upper.less(f) || (!inclusive && upper == f) {
		return invalid(CodeViteVersion, "vite %s allows no release from %s on, the oldest Vite this preview service runs; %s", strings.TrimSpace(spec), f, propose(set, f))
	}
	return nil
}

// rangeUpper returns the upper bound of an npm range: every release it
// allows is below upper (or equal, with inclusive). ok is false for a
// range without one, or one it cannot read.
func rangeUpper(spec string) (upper version, inclusive, ok bool) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return version{}, false, false
	}
	first := true
	for alt := range strings.SplitSeq(spec, "||") {
		u, inc, ok := setUpper(strings.TrimSpace(alt))
		if !ok {
			return version{}, false, false
		}
		if first || upper.less(u) || (u == upper && inc) {
			upper, inclusive = u, inc
		}
		first = false
	}
	return upper, inclusive, true
}

// setUpper is rangeUpper for one comparator set (no ||): the lowest of its
// comparators' bounds.
func setUpper(set string) (upper version, inclusive, ok bool) {
	if a, b, hyphen := strings.Cut(set, " - "); hyphen && strings.TrimSpace(a) != "" {
		return partialUpper(strings.TrimSpace(b), true)
	}
	bounded := false
	for c := range strings.FieldsSeq(set) {
		var u version
		var inc, has bool
		switch {
		case strings.HasPrefix(c, ">"):
			continue // no upper bound
		case strings.HasPrefix(c, "<="):
			u, inc, has = partialUpper(c[2:], true)
		case strings.HasPrefix(c, "<"):
			u, has = partialLower(c[1:])
		case strings.HasPrefix(c, "^"):
			u, has = caretUpper(c[1:])
		case strings.HasPrefix(c, "~"):
			u, has = tildeUpper(strings.TrimPrefix(c[1:], ">"))
		default:
			u, inc, has = partialUpper(strings.TrimPrefix(c, "="), true)
		}
		if !has {
			return version{}, false, false
		}
		if !bounded || u.less(upper) || (u == upper && !inc) {
			upper, inclusive = u, inc
		}
		bounded = true
	}
	return upper, inclusive, bounded
}

// parts reads "6", "6.4", "6.4.3", "6.x", "6.4.*" into its numbers (-1 for
// a wildcard or a missing part).
func parts(s string) ([3]int, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	s, _, _ = strings.Cut(s, "+")
	s, _, _ = strings.Cut(s, "-")
	p := [3]int{-1, -1, -1}
	fields := strings.Split(s, ".")
	if s == "" || len(fields) > 3 {
		return p, false
	}
	for i, f := range fields {
		if f == "x" || f == "X" || f == "*" {
			break
		}
		n := 0
		for _, c := range f {
			if c < '0' || c > '9' {
				return p, false
			}
			n = n*10 + int(c-'0')
		}
		if f == "" {
			return p, false
		}
		p[i] = n
	}
	return p, p[0] >= 0
}

// partialUpper is the bound of "=6.4.3" (inclusive), "6.4" (below 6.5.0)
// or "6" (below 7.0.0).
func partialUpper(s string, inclusive bool) (version, bool, bool) {
	p, ok := parts(s)
	switch {
	case !ok:
		return version{}, false, false
	case p[1] < 0:
		return version{p[0] + 1, 0, 0, ""}, false, true
	case p[2] < 0:
		return version{p[0], p[1] + 1, 0, ""}, false, true
	}
	return version{p[0], p[1], p[2], ""}, inclusive, true
}

// partialLower is the bound of "<6.4" or "<6": below 6.4.0, below 6.0.0.
func partialLower(s string) (version, bool) {
	p, ok := parts(s)
	if !ok {
		return version{}, false
	}
	return version{p[0], max(p[1], 0), max(p[2], 0), ""}, true
}

// caretUpper is the bound of ^s: below the next release that changes its
// first non-zero part.
func caretUpper(s string) (version, bool) {
	p, ok := parts(s)
	switch {
	case !ok:
		return version{}, false
	case p[0] > 0 || p[1] < 0:
		return version{p[0] + 1, 0, 0, ""}, true
	case p[1] > 0 || p[2] < 0:
		return version{0, p[1] + 1, 0, ""}, true
	}
	return version{0, 0, p[2] + 1, ""}, true
}

// tildeUpper is the bound of ~s: below the next minor (the next major for
// ~6).
func tildeUpper(s string) (version, bool) {
	p, ok := parts(s)
	switch {
	case !ok:
		return version{}, false
	case p[1] < 0:
		return version{p[0] + 1, 0, 0, ""}, true
	}
	return version{p[0], p[1] + 1, 0, ""}, true
}

package deps

import (
	"os"
	"path/filepath"
	"strings"
)

// This file seeds a set's resolution from a set like it that is installed
// (the session's set before a change, the template's for a create): pnpm
// starts from that set's lockfile, so that it resolves only what differs
// (5 s instead of 11 s here for the template plus one package). The
// install starts from nothing: a node_modules copied from the other set
// (store files hard-linked, pnpm's state copied) made pnpm 10 fetch every
// package into the store again (28 downloads for one added package) and
// take five times as long; the store already makes linking a set cheap.

// seed returns the install key of like when it is installed and the store
// is in use, or "".
func (c *Cache) seed(like Set) string {
	if c.pnpm == nil || like == nil {
		return ""
	}
	res, ok := c.resolved(like.Key())
	if !ok {
		return ""
	}
	if _, err := os.Stat(filepath.Join(c.dir, res.key, pnpmLockfile)); err != nil {
		return ""
	}
	return res.key
}

// seedLockfile copies the lockfile of the installed set key into work.
func (c *Cache) seedLockfile(key, work string) error {
	data, err := os.ReadFile(filepath.Join(c.dir, key, pnpmLockfile))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(work, pnpmLockfile), data, 0o644)
}

// newPackages returns how many packages lock pins that the lockfile of the
// installed set key does not: what the install fetches or links anew.
func (c *Cache) newPackages(key string, lock []byte) int {
	old, err := os.ReadFile(filepath.Join(c.dir, key, pnpmLockfile))
	if err != nil {
		return len(lockPackages(lock))
	}
	had := map[string]bool{}
	for _, p := range lockPackages(old) {
		had[p] = true
	}
	n := 0
	for _, p := range lockPackages(lock) {
		if !had[p] {
			n++
		}
	}
	return n
}

// lockPackages returns the entries of a pnpm lockfile's packages section.
func lockPackages(lock []byte) []string {
	var out []string
	in := false
	for _, line := range strings.Split(string(lock), "\n") {
		switch {
		case line == "":
		case !strings.HasPrefix(line, " "):
			in = strings.TrimSpace(line) == "packages:"
		case in && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(line, ":"):
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

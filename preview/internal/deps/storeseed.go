package deps

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// This file seeds a set's resolution and install from a set like it that
// is installed (the session's set before a change, the template's for a
// create): pnpm starts from that set's lockfile, so that it resolves only
// what differs, and from a copy of its node_modules made of hard links to
// the same store files, so that it links only what differs. A set that
// adds one package to a cached one then costs about that package, in both
// steps.

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

// seedModules copies the node_modules of the installed set key into stage:
// files that are links into the store become links to the same files
// (the store's files are never written in place), the set's own files
// (pnpm's state, which it rewrites) are copied. On failure it removes what
// it made: the install then starts from nothing.
func (c *Cache) seedModules(key, stage string) error {
	src := filepath.Join(c.dir, key, "node_modules")
	dst := filepath.Join(stage, "node_modules")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case !d.Type().IsRegular():
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			return os.Link(p, target)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		os.RemoveAll(dst)
	}
	return err
}

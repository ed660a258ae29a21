package deps

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vitehost/vitehost/internal/flock"
)

// This file keeps a cache with the package store (pnpm.go) within
// Options.MaxBytes. A set's files are hard links into the store, so bytes
// are counted per inode, once, wherever its links are: the whole cache
// directory is measured that way. Over the bound, the store's files that no
// installed set links (link count 1) go first: pnpm downloads a package
// again when a file of it is missing. Then the least recently used sets
// that no lease holds, each followed by the store's files that only it
// used, until the cache fits.

// setUsage returns the bytes an installed set adds to the cache: with the
// store, its files that are not links into it; otherwise all of them.
func (c *Cache) setUsage(dir string) int64 {
	if c.pnpm == nil {
		return diskUsage(dir)
	}
	return ownUsage(dir)
}

// inode names a file across its hard links.
type inode struct{ dev, ino uint64 }

// uniqueUsage returns the bytes the files under dir take on disk, each
// inode counted once.
func uniqueUsage(dir string) int64 {
	seen := map[inode]bool{}
	return walkUsage(dir, func(_ fs.DirEntry, st *syscall.Stat_t) bool {
		if st.Nlink > 1 {
			k := inode{uint64(st.Dev), uint64(st.Ino)}
			if seen[k] {
				return false
			}
			seen[k] = true
		}
		return true
	})
}

// ownUsage returns the bytes of the files under dir that have no other
// link: what removing dir frees.
func ownUsage(dir string) int64 {
	return walkUsage(dir, func(d fs.DirEntry, st *syscall.Stat_t) bool { return st.Nlink <= 1 || d.IsDir() })
}

// evictStore is evict for a cache with the package store; c.evicting is
// set.
func (c *Cache) evictStore() {
	total := uniqueUsage(c.dir)
	if total <= c.maxBytes {
		return
	}
	total -= c.pruneStore()
	sets, _ := c.sets()
	c.evictOldest(sets, total, func(s cachedSet) (int64, bool) {
		own := ownUsage(filepath.Join(c.dir, s.key))
		if !c.remove(s.key) {
			return 0, false
		}
		return own + c.pruneStore(), true
	})
}

// pruneStore removes the store's content files that no installed set
// links, unless an install runs (it could be linking them), and returns
// the bytes freed. pnpm's index of a package stays: an install that finds
// a file of it missing downloads the package again.
func (c *Cache) pruneStore() int64 {
	unlock, err := flock.TryLock(c.pnpm.storeLock())
	if err != nil {
		if !errors.Is(err, flock.ErrLocked) {
			c.log.Warn("vitehost/preview: lock the package store", "err", err)
		}
		return 0
	}
	defer unlock()
	var freed int64
	var files int
	filepath.WalkDir(filepath.Join(c.dir, storeDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || c.ctx.Err() != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		// Only the content files (files/xx/hash, and their -exec twins):
		// index files are small and say what a package holds.
		if !ok || st.Nlink != 1 || filepath.Base(filepath.Dir(filepath.Dir(p))) != "files" || filepath.Ext(p) == ".json" {
			return nil
		}
		if os.Remove(p) == nil {
			freed += st.Blocks * 512
			files++
		}
		return nil
	})
	if files > 0 {
		c.log.Info("vitehost/preview: pruned the package store", "files", files, "bytes", freed)
	}
	return freed
}

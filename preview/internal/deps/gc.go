package deps

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/internal/flock"
)

// This file keeps the dependency cache within its bound (Options.MaxBytes):
// after each install, the sets that no lease holds are
// removed, least recently used first, until the cache fits. A set counts
// as used when a caller leases it (cache.go); a set leased in the last
// evictGrace is never removed, so that the requests that waited for an
// install take their leases before anything can remove it.

// sizeFile holds the disk usage of an installed set, measured once when it
// was installed.
const sizeFile = ".vitehost-size"

const evictGrace = time.Minute

// cachedSet is an installed set as eviction sees it.
type cachedSet struct {
	key  string
	size int64
	used time.Time
}

// evict removes unleased sets, least recently used first, while the cache
// is over its bound. Only one eviction runs at a time in a process; one
// that finds another running returns at once.
func (c *Cache) evict() {
	if c.maxBytes < 0 {
		return
	}
	c.mu.Lock()
	if c.evicting {
		c.mu.Unlock()
		return
	}
	c.evicting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.evicting = false
		c.mu.Unlock()
	}()

	if c.pnpm != nil {
		c.evictStore() // storegc.go
		return
	}
	sets, total := c.sets()
	if total <= c.maxBytes {
		return
	}
	c.evictOldest(sets, total, func(s cachedSet) (int64, bool) { return s.size, c.remove(s.key) })
}

// evictOldest removes the sets that no lease holds, least recently used
// first, while total, the cache's bytes, is over the bound; free removes a
// set and returns the bytes that freed and whether it removed it.
func (c *Cache) evictOldest(sets []cachedSet, total int64, free func(cachedSet) (int64, bool)) {
	slices.SortFunc(sets, func(a, b cachedSet) int { return a.used.Compare(b.used) })
	for _, s := range sets {
		if total <= c.maxBytes || c.ctx.Err() != nil {
			break
		}
		if time.Since(s.used) < evictGrace {
			continue
		}
		if freed, ok := free(s); ok {
			total -= freed
			c.log.Info("vitehost/preview: removed an unused dependency set", "key", s.key, "bytes", freed,
				"unusedFor", time.Since(s.used).Round(time.Second), "cacheBytes", total)
		}
	}
	if total > c.maxBytes {
		c.log.Warn("vitehost/preview: the dependency cache is over its bound: every set is in use", "bytes", total, "bound", c.maxBytes)
	}
}

// sets lists the installed sets and the bytes they use.
func (c *Cache) sets() ([]cachedSet, int64) {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, 0
	}
	var out []cachedSet
	var total int64
	for _, e := range entries {
		if e.IsDir() && strings.Contains(e.Name(), ".trash-") {
			os.RemoveAll(filepath.Join(c.dir, e.Name())) // left by a process that died removing it
			continue
		}
		if e.IsDir() && c.deadStage(e) {
			// Left by a process that died installing: it holds hard links
			// into the store that would keep the store's pruning from
			// freeing their files.
			os.RemoveAll(filepath.Join(c.dir, e.Name()))
			continue
		}
		if !e.IsDir() || strings.Contains(e.Name(), ".") || strings.HasPrefix(e.Name(), "resolve-") || e.Name() == "specs" ||
			e.Name() == storeDir || e.Name() == pnpmCacheDir || e.Name() == toolsDir {
			continue // staging directories have a dot in their name
		}
		dir := filepath.Join(c.dir, e.Name())
		info, err := os.Stat(filepath.Join(dir, "node_modules"))
		if err != nil || !info.IsDir() {
			continue
		}
		st, err := os.Stat(dir)
		if err != nil {
			continue
		}
		size := c.setSize(dir)
		out = append(out, cachedSet{key: e.Name(), size: size, used: st.ModTime()})
		total += size
	}
	return out, total
}

// deadStage reports whether e is an install's working directory that no
// install can still use: every install, in this process or another sharing
// the directory, is stopped at its timeout, and its directory was made after
// that clock started.
func (c *Cache) deadStage(e fs.DirEntry) bool {
	name := e.Name()
	if !strings.HasPrefix(name, "resolve-") && !strings.Contains(name, ".stage-") {
		return false
	}
	info, err := e.Info()
	return err == nil && time.Since(info.ModTime()) > c.timeout+time.Minute
}

// setSize returns the recorded disk usage of the set in dir, measuring
// and recording it when a set installed before sizes were recorded has
// none.
func (c *Cache) setSize(dir string) int64 {
	if data, err := os.ReadFile(filepath.Join(dir, sizeFile)); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			return n
		}
	}
	n := diskUsage(dir)
	// Writing the file changes dir's modification time, the set's mark of
	// use: keep it.
	if st, err := os.Stat(dir); err == nil {
		os.WriteFile(filepath.Join(dir, sizeFile), []byte(strconv.FormatInt(n, 10)), 0o644)
		os.Chtimes(dir, st.ModTime(), st.ModTime())
	}
	return n
}

// remove removes set key unless a lease holds it: it takes the set's use
// lock exclusively (failing at once while any session holds it), moves the
// set aside under the lock, and deletes it after.
func (c *Cache) remove(key string) bool {
	unlock, err := flock.TryLock(filepath.Join(c.dir, key+".use"))
	if err != nil {
		if !errors.Is(err, flock.ErrLocked) {
			c.log.Warn("vitehost/preview: lock a dependency set for removal", "key", key, "err", err)
		}
		return false
	}
	trash, err := os.MkdirTemp(c.dir, key+".trash-")
	if err == nil {
		err = os.Rename(filepath.Join(c.dir, key), filepath.Join(trash, key))
	}
	unlock()
	if err != nil {
		c.log.Warn("vitehost/preview: remove a dependency set", "key", key, "err", err)
		if trash != "" {
			os.Remove(trash)
		}
		return false
	}
	if err := os.RemoveAll(trash); err != nil {
		c.log.Warn("vitehost/preview: remove a dependency set", "key", key, "err", err)
	}
	return true
}

// diskUsage returns the bytes the files under dir take on disk.
func diskUsage(dir string) int64 {
	return walkUsage(dir, func(fs.DirEntry, *syscall.Stat_t) bool { return true })
}

// walkUsage returns the bytes on disk of the files under dir that count
// accepts, skipping what cannot be read; where a file system has no
// syscall.Stat_t, every file counts with its size.
func walkUsage(dir string, count func(d fs.DirEntry, st *syscall.Stat_t) bool) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			n += info.Size()
		} else if count(d, st) {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

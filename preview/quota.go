package preview

import (
	"maps"
	"path"
)

// This file counts what a session holds, so that the quotas of Limits hold
// over the session's whole life: every update is checked against what the
// session will hold after it, not against itself alone.

// usage is what a session's project files add up to: the files with their
// sizes, and for each directory the number of files under it (a directory
// exists on disk while it holds a file: removeFiles removes the directories
// it empties).
type usage struct {
	files map[string]int64
	dirs  map[string]int
	bytes int64
}

// newUsage counts files, as a create or a takeover writes them.
func newUsage(files []pendingFile) *usage {
	u := &usage{files: make(map[string]int64, len(files)), dirs: map[string]int{}}
	for _, f := range files {
		u.put(f.name, int64(len(f.data)))
	}
	return u
}

// after returns the usage once writes are written and then deletes removed,
// in the order an update applies them; u is unchanged.
func (u *usage) after(writes []pendingFile, deletes []string) *usage {
	n := &usage{files: maps.Clone(u.files), dirs: maps.Clone(u.dirs), bytes: u.bytes}
	for _, f := range writes {
		n.put(f.name, int64(len(f.data)))
	}
	for _, name := range deletes {
		n.remove(name)
	}
	return n
}

func (u *usage) put(name string, size int64) {
	if old, ok := u.files[name]; ok {
		u.bytes += size - old
		u.files[name] = size
		return
	}
	u.files[name] = size
	u.bytes += size
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		u.dirs[d]++
	}
}

func (u *usage) remove(name string) {
	size, ok := u.files[name]
	if !ok {
		return
	}
	delete(u.files, name)
	u.bytes -= size
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if u.dirs[d]--; u.dirs[d] <= 0 {
			delete(u.dirs, d)
		}
	}
}

// checkQuota returns a *QuotaError when next breaks a quota of l that prev
// (the usage before the request, nil for a new session) did not already
// break as much: a session over a quota that was lowered after it was made
// may still shrink or stay.
func checkQuota(prev, next *usage, l Limits) error {
	type measure struct {
		name      string
		max, v, w int64 // the quota, the value after, the value before
	}
	var before usage
	if prev != nil {
		before = *prev
	}
	for _, m := range []measure{
		{"files", int64(l.MaxSessionFiles), int64(len(next.files)), int64(len(before.files))},
		{"bytes", l.MaxSessionBytes, next.bytes, before.bytes},
		{"directories", int64(l.MaxSessionDirs), int64(len(next.dirs)), int64(len(before.dirs))},
	} {
		if m.v > m.max && m.v > m.w {
			return &QuotaError{Limit: m.name, Max: m.max, Value: m.v}
		}
	}
	return nil
}

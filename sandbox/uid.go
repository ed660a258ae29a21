package sandbox

import (
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// The default range of UIDs: host user and group IDs that no account of a
// usual host has (Debian gives accounts IDs below 60000).
const (
	DefaultUIDFirst = 100000
	DefaultUIDCount = 65536
)

// UIDs is a range of host user IDs, each of which runs one sandbox at a
// time, so that every sandbox has the kernel's per-user budgets to itself:
// inotify instances and watches, and whatever else Linux counts per user.
// Sandboxes that share a user share those budgets, with each other and with
// every other process of that user on the host. A UIDs is safe for
// concurrent use; share one between every Config whose sandboxes run at
// the same time.
type UIDs struct {
	first, count int

	mu   sync.Mutex
	used map[int]bool
	next int // where the search for a free ID begins: IDs are reused last
}

// NewUIDs returns the range of count user IDs from first; the group IDs are
// the same numbers.
func NewUIDs(first, count int) (*UIDs, error) {
	if first <= 0 || count <= 0 || first+count-1 > 1<<31-2 {
		return nil, fmt.Errorf("vitehost/sandbox: user IDs %d+%d are not a range of host IDs above root's", first, count)
	}
	return &UIDs{first: first, count: count, used: map[int]bool{}}, nil
}

// String describes the range, such as "100000-165535".
func (u *UIDs) String() string { return fmt.Sprintf("%d-%d", u.first, u.first+u.count-1) }

// take returns a user ID that no other sandbox of u runs as.
func (u *UIDs) take() (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range u.count {
		id := u.first + (u.next+i)%u.count
		if !u.used[id] {
			u.used[id] = true
			u.next = (id - u.first + 1) % u.count
			return id, nil
		}
	}
	return 0, fmt.Errorf("%w: %d sandboxes run as the users %s", ErrNoUID, u.count, u)
}

// put returns id, taken from u, once no process of its sandbox runs.
func (u *UIDs) put(id int) {
	u.mu.Lock()
	delete(u.used, id)
	u.mu.Unlock()
}

// Chown gives dir and everything in it to the user uid and group gid,
// without following symbolic links and without leaving dir, whatever its
// content is swapped for meanwhile (os.Root): a sandbox that runs as
// another user than the one before it, on the same project, can then write
// what the one before wrote.
func Chown(dir string, uid, gid int) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("vitehost/sandbox: chown %s: %w", dir, err)
	}
	defer root.Close()
	err = fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return root.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("vitehost/sandbox: chown %s: %w", dir, err)
	}
	return nil
}

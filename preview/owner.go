package preview

import (
	"cmp"
	"os"
	"path"
	"syscall"

	"github.com/vitehost/vitehost/sandbox"
)

// owner is the host user that a session's files and directories belong
// to: the sandbox's, when the service runs as root and the sandbox as
// another user, so that the dev server may write into the project as a
// developer's would (TanStack Router's plugin writes src/routeTree.gen.ts,
// other plugins write generated types). The zero owner changes nothing.
type owner struct {
	uid, gid int
	set      bool
}

// sandboxOwner returns the owner of the files of a session sandboxed by sb
// (nil: unsandboxed), as sandbox.Config.Command starts it.
func sandboxOwner(sb *sandbox.Config) owner {
	if sb == nil || os.Geteuid() != 0 {
		return owner{}
	}
	return owner{uid: cmp.Or(sb.UID, sandbox.DefaultUID), gid: cmp.Or(sb.GID, sandbox.DefaultGID), set: true}
}

// owner returns the owner of s's files. With a range of users
// (sandbox.Config.UIDs) each start of the sandbox runs as another user and
// gives it the project: the files written meanwhile go to the user who
// holds the project directory now, so that the running dev server may
// rewrite them (a client that sends a generated file such as TanStack
// Router's routeTree.gen.ts, which the plugin then writes again).
func (s *session) owner() owner {
	o := sandboxOwner(s.env.sandbox)
	if !o.set || s.env.sandbox.UIDs == nil || s.root == nil {
		return o
	}
	// The directory itself is the host's mount point: the tenant cannot
	// swap it, only what is in it.
	fi, err := s.root.Stat(".")
	if err != nil {
		return o
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		return owner{uid: int(st.Uid), gid: int(st.Gid), set: true}
	}
	return o // not yet given to a sandbox: the start gives it all
}

// give hands name in root to o, without following a link (the tenant's
// code may have put one there).
func (o owner) give(root *os.Root, name string) error {
	if !o.set {
		return nil
	}
	return root.Lchown(name, o.uid, o.gid)
}

// giveDirs hands dir and every directory above it in root to o. A
// directory that is o's already is left as it is: a chown, even one that
// changes nothing, is an event (inotify's IN_ATTRIB) for the watchers of
// the directory and of its parent, and Vite's watcher (chokidar) reads the
// directory again for each, in the middle of the update that writes into
// it: a chown of src alone cost a sandboxed runner 3-4 ms of CPU here.
func (o owner) giveDirs(root *os.Root, dir string) error {
	for d := dir; o.set && d != "." && d != "/"; d = path.Dir(d) {
		if o.owns(root, d) {
			continue
		}
		if err := o.give(root, d); err != nil {
			return err
		}
	}
	return nil
}

// owns reports whether name in root (not followed if a link) is o's.
func (o owner) owns(root *os.Root, name string) bool {
	fi, err := root.Lstat(name)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == o.uid && int(st.Gid) == o.gid
}

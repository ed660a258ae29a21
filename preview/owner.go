package preview

import (
	"cmp"
	"os"
	"path"

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

// owner returns the owner of s's files.
func (s *session) owner() owner { return sandboxOwner(s.env.sandbox) }

// give hands name in root to o, without following a link (the tenant's
// code may have put one there).
func (o owner) give(root *os.Root, name string) error {
	if !o.set {
		return nil
	}
	return root.Lchown(name, o.uid, o.gid)
}

// giveDirs hands dir and every directory above it in root to o.
func (o owner) giveDirs(root *os.Root, dir string) error {
	for d := dir; o.set && d != "." && d != "/"; d = path.Dir(d) {
		if err := o.give(root, d); err != nil {
			return err
		}
	}
	return nil
}

package preview

import (
	"context"
	"os"
	"path/filepath"

	"github.com/vitehost/vitehost/sandbox"
)

// This file is where a sandboxed session's files live: a disk of its own
// (sandbox.Disk) mounted at the session directory, made when the session
// starts on this node and removed with it. It stays mounted while the
// session hibernates. What the API writes and what the tenant's code
// writes (its project, Vite's cacheDir in it) fill it together; /tmp is
// the sandbox's own tmpfs (sandbox.Limits.Tmp, charged to its memory).

// diskSuffix names a session directory's disk image, beside it in BaseDir,
// where the tenant reaches nothing of it.
const diskSuffix = ".disk"

// disks reports whether sessions sandboxed by sb get disks of their own.
func disks(sb *sandbox.Config) bool { return sb != nil && sb.Limits.Disk >= 0 }

// mountDisk makes the disk of the session directory dir (existing, empty)
// and mounts it there.
func mountDisk(ctx context.Context, sb *sandbox.Config, dir string) (*sandbox.Disk, error) {
	return sandbox.NewDisk(ctx, dir, dir+diskSuffix, sb.Limits)
}

// checkDisk makes and removes a small disk in baseDir: whether disks can be
// made here only trying tells (root, mkfs.ext4, a loop device, mount).
func checkDisk(ctx context.Context, baseDir string) error {
	dir, err := os.MkdirTemp(baseDir, "disk-check-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	d, err := sandbox.NewDisk(ctx, dir, filepath.Join(baseDir, filepath.Base(dir)+diskSuffix), sandbox.Limits{Disk: 4 << 20, Inodes: 64})
	if err != nil {
		return err
	}
	return d.Close()
}

// removeDir removes the session or spare directory dir, and what is
// mounted there first (a disk, whose image goes too, or a spare's shared
// mount): RemoveAll alone would empty the mount and fail at it.
func removeDir(dir string) error {
	if err := sandbox.Unmount(dir); err != nil {
		return err
	}
	if err := os.Remove(dir + diskSuffix); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(dir)
}

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

// diskTemplate is the name, in BaseDir, of the template image of the
// sessions' disks (sandbox.Disks).
const diskTemplate = "disk-template"

// newDisks formats the template of the sessions' disks in baseDir, and
// checks that a disk mounts: whether it does only trying tells (root,
// mkfs.ext4, a loop device, mount).
func newDisks(ctx context.Context, baseDir string, lim sandbox.Limits) (*sandbox.Disks, error) {
	template := filepath.Join(baseDir, diskTemplate)
	os.Remove(template) // an earlier process's
	ds, err := sandbox.NewDisks(ctx, template, lim)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(baseDir, "disk-check-")
	if err == nil {
		var d *sandbox.Disk
		if d, err = ds.Mount(ctx, dir, dir+diskSuffix); err == nil {
			err = d.Close()
		}
		os.Remove(dir)
	}
	if err != nil {
		ds.Close()
		return nil, err
	}
	return ds, nil
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

// closeDisks removes the disks' template, once no session is left to use
// it.
func (e *sessionEnv) closeDisks() {
	if e.disks != nil {
		e.disks.Close()
	}
}

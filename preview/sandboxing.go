package preview

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vitehost/vitehost/sandbox"
)

// checkSandbox checks, when New runs, that sessions can be sandboxed here:
// bubblewrap works, and the sandbox's user reaches the session and
// dependency directories. It returns the template of every session's
// sandbox, and what makes their disks (nil when they get none). Missing
// cgroups are a warning: the sandbox still isolates, but does not limit
// memory and processes.
func checkSandbox(o *Options, log *slog.Logger) (*sandbox.Config, *sandbox.Disks, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sandbox.Check(ctx, o.Sandbox.Bwrap); err != nil {
		return nil, nil, fmt.Errorf("vitehost/preview: every session runs in a sandbox, and it cannot run here: %w "+
			"(install bubblewrap, e.g. apt-get install bubblewrap; or set Options.NoSandbox for trusted input only)", err)
	}
	if cg, err := sandbox.CgroupSupport(); err != nil {
		log.Warn("vitehost/preview: sessions are isolated, but their memory and processes are not limited", "err", err)
	} else {
		log.Info("vitehost/preview: sessions run in a sandbox", "limits", cg.String())
	}
	if os.Geteuid() == 0 {
		for _, dir := range []string{o.BaseDir, o.CacheDir} {
			if err := reachable(dir); err != nil {
				return nil, nil, fmt.Errorf("vitehost/preview: the sandbox's user (Options.Sandbox.UID) must reach %s: %w", dir, err)
			}
		}
	}
	var ds *sandbox.Disks
	if disks(&o.Sandbox) {
		var err error
		if ds, err = newDisks(ctx, o.BaseDir, o.Sandbox.Limits); err != nil {
			return nil, nil, fmt.Errorf("vitehost/preview: every session's files live on a disk of bounded size, and none can be made here: %w "+
				"(run as root, with e2fsprogs and loop devices; or set Options.Sandbox.Limits.Disk to -1: then nothing bounds what a session writes)", err)
		}
		lim := o.Sandbox.Limits
		log.Info("vitehost/preview: sessions write to disks of their own",
			"bytes", cmp.Or(lim.Disk, sandbox.DefaultDisk), "inodes", cmp.Or(lim.Inodes, sandbox.DefaultInodes))
	} else {
		log.Warn("vitehost/preview: nothing bounds what a session writes (Options.Sandbox.Limits.Disk is negative)")
	}
	if o.Sandbox.UIDs != nil && os.Geteuid() == 0 {
		log.Info("vitehost/preview: each sandbox runs as a host user of its own", "uids", o.Sandbox.UIDs.String())
	}
	sb := o.Sandbox
	return &sb, ds, nil
}

// processUIDs is the range of host users of the sandboxes of every Manager
// of this process that was given none: two Managers that took users from
// two ranges of the same IDs would run sandboxes as one user.
var processUIDs = sync.OnceValue(func() *sandbox.UIDs {
	u, err := sandbox.NewUIDs(sandbox.DefaultUIDFirst, sandbox.DefaultUIDCount)
	if err != nil {
		panic(err) // the defaults are a valid range
	}
	return u
})

// reachable checks that every directory from the root to dir lets others
// search it, creating dir when it is missing.
func reachable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		info, err := os.Stat(d)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return errors.New(d + " is not searchable by other users (chmod o+x, or choose another directory)")
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

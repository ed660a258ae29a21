//go:build !linux

package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
)

// Cmd is a command prepared by Config.Command to run in a sandbox; see
// cmd.go for Linux, the only system where sandboxes run.
type Cmd struct {
	*exec.Cmd
}

// Close does nothing: no sandbox runs on this system.
func (c *Cmd) Close() error { return nil }

// LimitErr returns nil: no sandbox runs on this system.
func (c *Cmd) LimitErr() error { return nil }

// SetCPUWeight does nothing: no sandbox runs on this system.
func (c *Cmd) SetCPUWeight(int) error { return nil }

// Command fails with ErrUnavailable: bubblewrap runs on Linux only.
func (c *Config) Command(ctx context.Context, argv []string, files ...*os.File) (*Cmd, error) {
	return nil, fmt.Errorf("%w on %s", ErrUnavailable, runtime.GOOS)
}

// Check fails with ErrUnavailable: bubblewrap runs on Linux only.
func Check(ctx context.Context, bwrap string) error {
	return fmt.Errorf("%w on %s", ErrUnavailable, runtime.GOOS)
}

// CgroupSupport reports no cgroups: they are Linux's.
func CgroupSupport() (Cgroups, error) {
	return Cgroups{}, fmt.Errorf("%w on %s", ErrNoCgroups, runtime.GOOS)
}

// Disk is a file system of bounded size for a sandbox; see disk.go for
// Linux, the only system where sandboxes run.
type Disk struct{ dir string }

// Disks makes Disks; see disk.go for Linux.
type Disks struct{}

// NewDisks fails with ErrNoDisk: disks are Linux's.
func NewDisks(ctx context.Context, template string, lim Limits) (*Disks, error) {
	return nil, fmt.Errorf("%w on %s", ErrNoDisk, runtime.GOOS)
}

// Mount fails with ErrNoDisk: disks are Linux's.
func (ds *Disks) Mount(ctx context.Context, dir, image string) (*Disk, error) {
	return nil, fmt.Errorf("%w on %s", ErrNoDisk, runtime.GOOS)
}

// Close does nothing: no disk is made on this system.
func (ds *Disks) Close() error { return nil }

// Dir returns the directory the disk is mounted at.
func (d *Disk) Dir() string { return d.dir }

// Full returns nil: no disk is made on this system.
func (d *Disk) Full() error { return nil }

// Close does nothing: no disk is made on this system.
func (d *Disk) Close() error { return nil }

// Share fails with ErrNoDisk: mounts are Linux's.
func Share(dir string) error { return fmt.Errorf("%w on %s", ErrNoDisk, runtime.GOOS) }

// Attach fails with ErrNoDisk: mounts are Linux's.
func Attach(src, dir string) error { return fmt.Errorf("%w on %s", ErrNoDisk, runtime.GOOS) }

// Unmount does nothing: nothing is mounted on this system.
func Unmount(dir string) error { return nil }

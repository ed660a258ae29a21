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

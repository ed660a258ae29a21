//go:build !unix

package vite

import (
	"context"
	"errors"
	"os/exec"
	"time"
)

// errUnsupported is returned by Start on systems without process groups.
var errUnsupported = errors.New("vitehost/vite: not supported on this system (needs process groups)")

// child is one run of the dev server; see process.go.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	events  chan message
	exited  chan struct{}
	err     error
}

func startChild(name string, args []string, dir string, env []string, out *output, input []byte, waitDelay time.Duration) (*child, error) {
	return nil, errUnsupported
}

func (c *child) pid() int                                            { return 0 }
func (c *child) stop(ctx context.Context, grace time.Duration) error { return errUnsupported }

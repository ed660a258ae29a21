//go:build !unix

package vite

import (
	"context"
	"errors"
	"os/exec"
	"time"

	"github.com/vitehost/vitehost/sandbox"
)

// errUnsupported is returned by Start on systems without process groups.
var errUnsupported = errors.New("vitehost/vite: not supported on this system (needs process groups)")

// child is one run of the dev server; see process.go.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	events  chan message
	batches batches
	exited  chan struct{}
	err     error
	box     *sandbox.Cmd
	cleanup func()
}

func startChild(name string, args []string, dir string, env []string, out *output, input []byte, waitDelay time.Duration) (*child, error) {
	return nil, errUnsupported
}

func startCmd(cmd *exec.Cmd, cancel context.CancelFunc, out *output, input []byte, waitDelay time.Duration) (*child, error) {
	cancel()
	return nil, errUnsupported
}

func (c *child) send(line []byte) error                              { return errUnsupported }
func (c *child) pid() int                                            { return 0 }
func (c *child) limitErr() error                                     { return nil }
func (c *child) stop(ctx context.Context, grace time.Duration) error { return errUnsupported }

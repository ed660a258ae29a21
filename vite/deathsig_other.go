//go:build unix && !linux

package vite

import "syscall"

// dieWithParent does nothing where the kernel has no parent-death signal:
// the runner script still exits when its stdin closes.
func dieWithParent(*syscall.SysProcAttr) {}

package vite

import "syscall"

// dieWithParent makes the kernel kill the child when this process dies,
// even by SIGKILL, when no Stop runs: a dev server must not outlive the Go
// program that started it. The runner script also exits when its stdin
// closes, but nuxi and astro do not. The signal goes to the main process
// only; what it started (esbuild, rolldown) exits when its stdin from the
// main process closes.
func dieWithParent(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

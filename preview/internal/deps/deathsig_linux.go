package deps

import "syscall"

// dieWithParent makes the kernel kill an install when this process dies,
// even by SIGKILL: npm must not run on for minutes after the service is
// gone.
func dieWithParent(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

//go:build unix

package main

import "syscall"

// raiseFileLimit raises the soft limit on open files to the hard one and
// returns both: every connection and every proxied WebSocket is a file
// descriptor. Go raises it at start already (go.dev/issue/46279); this
// says so in the log, and does it where that did not happen.
func raiseFileLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
			return uint64(rl.Cur), uint64(rl.Max), err
		}
	}
	return uint64(rl.Cur), uint64(rl.Max), nil
}

//go:build unix

package preview

import "syscall"

// fileLimit returns the process's soft limit on open file descriptors, or
// 0 when it is unknown or unlimited.
func fileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	cur := uint64(rl.Cur) // int64 on some BSDs
	if cur > 1<<31 {
		return 0 // unlimited, or as good as
	}
	return cur
}

// Package flock takes advisory locks on files, so that processes that share
// a cache directory (test binaries, preview nodes) install each entry once,
// and remove no entry that another one uses.
package flock

import (
	"errors"
	"os"
	"syscall"
)

// Lock blocks until it holds an exclusive lock on the file at path, which it
// creates when missing, and returns the function that releases it.
func Lock(path string) (unlock func(), err error) { return lock(path, syscall.LOCK_EX) }

// RLock blocks until it holds a shared lock on the file at path, which it
// creates when missing, and returns the function that releases it. Any
// number of shared locks are held at once; an exclusive one waits for them
// all, and TryLock fails while one is held.
func RLock(path string) (unlock func(), err error) { return lock(path, syscall.LOCK_SH) }

func lock(path string, how int) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// ErrLocked is returned by TryLock when another holder has the lock.
var ErrLocked = errors.New("vitehost: locked by another process")

// TryLock takes the lock like Lock but fails at once with ErrLocked when
// another holder has it.
func TryLock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrLocked
		}
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

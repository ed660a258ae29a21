// Package safefs reads files that a tenant can write, from a host process
// that must not be led astray by them. Code in a sandbox can replace any
// file of its project at any moment: with a symbolic link to a host file
// that only root may read, a FIFO whose open blocks until someone writes to
// it, a directory, or a file too large to hold. ReadFile opens such a file
// through the project's os.Root, refuses a link rather than following it,
// never blocks on a FIFO, reads regular files only, and at most the bytes
// its caller allows.
package safefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

var (
	// ErrNotRegular: the file is a symbolic link, a FIFO, a directory, a
	// device or a socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: the file holds more bytes than the reader allows.
	ErrTooLarge = errors.New("too large")
)

// Error is a file that ReadFile refused. Its Reason names the file by its
// name in the root, which is how the tenant knows it, and no host path.
type Error struct {
	Name   string // the file's name, relative to the root
	Err    error  // ErrNotRegular or ErrTooLarge
	Detail string // what the file was instead ("a named pipe"), or the limit
}

// Error returns the reason with the package's prefix.
func (e *Error) Error() string { return "vitehost/safefs: " + e.Reason() }

// Reason says what was wrong with the file, without a prefix: "package.json
// is not a regular file (a named pipe)".
func (e *Error) Reason() string { return fmt.Sprintf("%s is %v (%s)", e.Name, e.Err, e.Detail) }

// Unwrap returns ErrNotRegular or ErrTooLarge.
func (e *Error) Unwrap() error { return e.Err }

// ReadFile returns the content of the regular file name in root, of at most
// max bytes. It does not follow a symbolic link at name (os.Root keeps the
// directories on the way inside root), and a FIFO, a device or a directory
// there gives an *Error wrapping ErrNotRegular without blocking, a longer
// file an *Error wrapping ErrTooLarge. A missing file gives an error
// wrapping fs.ErrNotExist.
func ReadFile(root *os.Root, name string, max int64) ([]byte, error) {
	f, err := Open(root, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() > max {
		return nil, tooLarge(name, max)
	}
	// The file may grow after the stat: the read stops one byte past max.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, tooLarge(name, max)
	}
	return data, nil
}

// ReadFileIn is ReadFile in a root opened on dir, for callers that hold a
// directory's path, not its root.
func ReadFileIn(dir, name string, max int64) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return ReadFile(root, name, max)
}

// Open opens the regular file name in root for reading, with ReadFile's
// guarantees but for the size: the caller bounds what it reads.
func Open(root *os.Root, name string) (*os.File, error) {
	// os.Root follows a link that stays inside the root, whatever the
	// flags say: Lstat says what is at name, and the open must find that
	// same file, so that a swap in between is refused, not followed.
	before, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, notRegular(name, before.Mode())
	}
	// O_NONBLOCK: a FIFO swapped in after the Lstat opens at once (a
	// read-only open of a FIFO otherwise waits for a writer), and the
	// check below refuses it.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	after, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !after.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(name, after.Mode())
	}
	if !os.SameFile(before, after) {
		f.Close()
		return nil, &Error{Name: name, Err: ErrNotRegular, Detail: "it was replaced while it was opened"}
	}
	return f, nil
}

func tooLarge(name string, max int64) error {
	return &Error{Name: name, Err: ErrTooLarge, Detail: fmt.Sprintf("more than %d bytes", max)}
}

func notRegular(name string, mode fs.FileMode) error {
	return &Error{Name: name, Err: ErrNotRegular, Detail: kind(mode)}
}

// kind names the type of a file that is not regular.
func kind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	}
	return "of type " + mode.Type().String()
}

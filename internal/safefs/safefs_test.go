//go:build unix

package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadFile puts each kind of swap a tenant can make in the place of a
// file and checks that ReadFile refuses it, at once, naming the file.
func TestReadFile(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("CANARY"), 0o600))
	cases := []struct {
		name   string
		make   func(t *testing.T, p string)
		want   error
		reason string
	}{
		{"regular", func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, []byte("{}"), 0o644)) }, nil, ""},
		{"missing", func(*testing.T, string) {}, fs.ErrNotExist, ""},
		{"symlink out of the root", func(t *testing.T, p string) { require.NoError(t, os.Symlink(outside, p)) },
			ErrNotRegular, "f.json is not a regular file (a symbolic link)"},
		{"symlink inside the root", func(t *testing.T, p string) {
			require.NoError(t, os.WriteFile(p+".real", []byte("{}"), 0o644))
			require.NoError(t, os.Symlink(filepath.Base(p)+".real", p))
		}, ErrNotRegular, "f.json is not a regular file (a symbolic link)"},
		{"fifo", func(t *testing.T, p string) { require.NoError(t, syscall.Mkfifo(p, 0o666)) },
			ErrNotRegular, "f.json is not a regular file (a named pipe)"},
		{"directory", func(t *testing.T, p string) { require.NoError(t, os.Mkdir(p, 0o755)) },
			ErrNotRegular, "f.json is not a regular file (a directory)"},
		{"huge", func(t *testing.T, p string) {
			f, err := os.Create(p)
			require.NoError(t, err)
			require.NoError(t, f.Truncate(1<<40)) // sparse: a terabyte that costs nothing
			require.NoError(t, f.Close())
		}, ErrTooLarge, "f.json is too large (more than 100 bytes)"},
		{"just the limit", func(t *testing.T, p string) { require.NoError(t, os.WriteFile(p, make([]byte, 100), 0o644)) }, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.make(t, filepath.Join(dir, "f.json"))
			root, err := os.OpenRoot(dir)
			require.NoError(t, err)
			defer root.Close()
			data, err := ReadFile(root, "f.json", 100)
			if c.want == nil {
				require.NoError(t, err)
				require.NotEmpty(t, data)
				return
			}
			require.ErrorIs(t, err, c.want)
			require.NotContains(t, err.Error(), "CANARY")
			if c.reason != "" {
				var fe *Error
				require.True(t, errors.As(err, &fe))
				require.Equal(t, c.reason, fe.Reason())
				require.Equal(t, "vitehost/safefs: "+c.reason, err.Error())
			}
		})
	}
}

// TestReadFileSubdirectory: a directory on the way that links out of the
// root is refused by os.Root.
func TestReadFileSubdirectory(t *testing.T) {
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "tsconfig.json"), []byte("CANARY"), 0o600))
	dir := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "sub")))
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()
	_, err = ReadFile(root, "sub/tsconfig.json", 100)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "CANARY")
}

func TestReadFileIn(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "package.json"), 0o666))
	_, err := ReadFileIn(dir, "package.json", 100)
	require.ErrorIs(t, err, ErrNotRegular)
	_, err = ReadFileIn(filepath.Join(dir, "missing"), "package.json", 100)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

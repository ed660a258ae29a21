package preview

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBlockedPathIsBadPath: files that code in the sandbox put in the way of
// a client's names make the write a 400 bad_path naming the file, never a
// 500; nothing lands outside the project.
func TestBlockedPathIsBadPath(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "out")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "missing"), filepath.Join(dir, "gone")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plain"), []byte("x"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "adir", "inner"), 0o755))
	root, err := os.OpenRoot(dir)
	require.NoError(t, err)
	defer root.Close()

	for _, name := range []string{"out/x.js", "out/deep/x.js", "gone/x.js", "plain/x.js", "adir"} {
		t.Run(name, func(t *testing.T) {
			err := writeFiles(root, []pendingFile{{name: name, data: []byte("secret-free")}}, owner{})
			var re *RequestError
			require.ErrorAs(t, err, &re)
			require.Equal(t, CodeBadPath, re.Code)
			require.Contains(t, re.Msg, name)
			if name[:4] == "out/" {
				require.Contains(t, re.Msg, "symbolic link out of the project")
			}
		})
	}
	_, err = removeFiles(root, []string{"adir"})
	var re *RequestError
	require.ErrorAs(t, err, &re)
	require.Equal(t, CodeBadPath, re.Code)

	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "a write followed a link out of the project")
}

// TestBlockedPathKeepsDiskErrors: a full disk is not the client's fault and
// stays an ENOSPC for the edge to answer 507.
func TestBlockedPathKeepsDiskErrors(t *testing.T) {
	err := blockedPath("a.js", &fs.PathError{Op: "write", Path: "a.js", Err: syscall.ENOSPC})
	require.ErrorIs(t, err, syscall.ENOSPC)
	require.False(t, errors.Is(err, ErrInvalid))
	require.NoError(t, blockedPath("a.js", nil))
}

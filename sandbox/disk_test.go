//go:build linux

package sandbox_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/sandbox"
)

// newDisk makes a disk of lim in a fresh directory, which becomes the
// project of a sandbox config; the test's cleanup removes it.
func newDisk(t *testing.T, lim sandbox.Limits) (*sandbox.Config, *sandbox.Disk) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a sandbox disk needs root")
	}
	testenv.LookPath(t, "mkfs.ext4")
	c := config(t)
	c.Limits = lim
	ds, err := sandbox.NewDisks(context.Background(), filepath.Join(t.TempDir(), "template"), lim)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, ds.Close()) })
	d, err := ds.Mount(context.Background(), c.Project, filepath.Join(filepath.Dir(c.Project), "disk.img"))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	return c, d
}

// freeBytes is what the host's file system of dir has free.
func freeBytes(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

// TestDiskBoundsBytes: a command that writes big files into its project as
// fast as it can stops at the disk's size with ENOSPC; the host loses no
// more than that, and the disk says it is full.
func TestDiskBoundsBytes(t *testing.T) {
	requireSandbox(t)
	const size = 64 << 20
	c, d := newDisk(t, sandbox.Limits{Disk: size, Inodes: 1024, FileSize: -1, Memory: -1, Pids: -1})
	before := freeBytes(t, filepath.Dir(c.Project))
	out := node(t, c, `
const fs = require('fs')
const chunk = Buffer.alloc(1 << 20, 1)
let n = 0, code = 'none'
try { for (let i = 0; ; i++) { const fd = fs.openSync('/project/big' + i, 'w'); for (let j = 0; j < 16; j++) { fs.writeSync(fd, chunk); n += chunk.length } fs.closeSync(fd) } } catch (e) { code = e.code }
console.log(code + ' ' + n)`)
	f := strings.Fields(out)
	require.Len(t, f, 2, out)
	assert.Equal(t, "ENOSPC", f[0])
	written, _ := strconv.ParseInt(f[1], 10, 64)
	t.Logf("written before ENOSPC: %d bytes of a %d-byte disk; host free space %d -> %d", written, size, before, freeBytes(t, filepath.Dir(c.Project)))
	assert.LessOrEqual(t, written, int64(size))
	assert.LessOrEqual(t, before-freeBytes(t, filepath.Dir(c.Project)), int64(size), "the host lost more than the disk's size")
	assert.ErrorIs(t, d.Full(), sandbox.ErrDiskLimit)
}

// TestDiskBoundsInodes: a command that creates small files until it cannot
// stops at the disk's inode count, and the disk says so.
func TestDiskBoundsInodes(t *testing.T) {
	requireSandbox(t)
	c, d := newDisk(t, sandbox.Limits{Disk: 64 << 20, Inodes: 2048, Memory: -1, Pids: -1})
	out := node(t, c, `
const fs = require('fs')
let n = 0, code = 'none'
try { for (;; n++) fs.writeFileSync('/project/f' + n, '') } catch (e) { code = e.code }
console.log(code + ' ' + n)`)
	f := strings.Fields(out)
	require.Len(t, f, 2, out)
	assert.Equal(t, "ENOSPC", f[0])
	n, _ := strconv.Atoi(f[1])
	t.Logf("files made before ENOSPC: %d", n)
	assert.Less(t, n, 8192)
	assert.ErrorIs(t, d.Full(), sandbox.ErrInodeLimit)
}

// TestUIDsOwnUser: sandboxes of a UIDs range run as users of their own,
// no more at once than the range holds; a sandbox of another user than the
// one before it on the same project rewrites what that one wrote.
func TestUIDsOwnUser(t *testing.T) {
	requireSandbox(t)
	if os.Geteuid() != 0 {
		testenv.Missing(t, "users of a range need root")
	}
	uids, err := sandbox.NewUIDs(200000, 2)
	require.NoError(t, err)
	c := config(t)
	c.UIDs = uids
	a := start(t, c, "node", "-e", `console.log('a'); process.stdin.resume()`)
	cb := *c
	cb.Project = reachable(t)
	b := start(t, &cb, "node", "-e", `fs.writeFileSync('/project/b', 'b'); console.log('b'); process.stdin.resume()`)
	ua, ub := owner(t, c.Project), owner(t, cb.Project)
	assert.NotEqual(t, ua, ub, "two sandboxes at once, one user")
	for _, u := range []int{ua, ub} {
		assert.True(t, u >= 200000 && u < 200002, "uid %d", u)
	}
	assert.Equal(t, ub, owner(t, filepath.Join(cb.Project, "b")))
	cc := *c
	cc.Project = reachable(t)
	_, err = cc.Command(context.Background(), []string{"true"})
	require.ErrorIs(t, err, sandbox.ErrNoUID)

	for _, s := range []*started{a, b} {
		s.stdin.Close()
		require.NoError(t, s.cmd.Close())
	}
	out := node(t, &cb, `fs.writeFileSync('/project/b', 'again'); console.log(fs.readFileSync('/project/b', 'utf8'))`)
	assert.Equal(t, "again\n", out)
	assert.NotEqual(t, ub, owner(t, cb.Project), "the same user again: the test proves nothing")
}

func owner(t *testing.T, p string) int {
	info, err := os.Stat(p)
	require.NoError(t, err)
	return int(info.Sys().(*syscall.Stat_t).Uid)
}

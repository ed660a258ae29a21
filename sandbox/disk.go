//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// This file is the disk of a sandbox: a file system of its own, in a sparse
// image file on the host, that holds what the sandbox may write (its
// project, and the caches inside it). Its size and inode count are fixed
// when it is made, so that the kernel refuses (ENOSPC) what goes beyond
// them, whoever writes, however fast; no quota is counted after the fact.

// fullShare is the share of a disk's blocks or inodes under which Disk.Full
// says the disk is full: a writer that ran into ENOSPC leaves less than one
// of its writes free, not exactly nothing.
const fullShare = 100

// Disk is a file system of bounded size and inode count mounted at a
// directory: an ext4 file system without a journal in a sparse image file,
// attached to a loop device. Only the blocks written take room on the
// host's disk, and the blocks freed inside go back to the host (the mount
// discards them). Making one needs root and mkfs.ext4 (e2fsprogs).
type Disk struct {
	dir, image string

	closeOnce sync.Once
	closeErr  error
}

// NewDisk makes a disk of lim.Disk bytes and at least lim.Inodes inodes
// (see Limits; 0 means the defaults) in the new image file image and mounts
// it at the existing empty directory dir, without set-user-ID programs and
// device files. Its root belongs to root; Command gives it to the
// sandbox's user when dir is Config.Project. The caller calls Close, which
// unmounts it and removes the image.
func NewDisk(ctx context.Context, dir, image string, lim Limits) (*Disk, error) {
	lim = lim.withDefaults()
	if lim.Disk <= 0 || lim.Inodes <= 0 {
		return nil, fmt.Errorf("vitehost/sandbox: a disk needs a size and an inode count (Limits.Disk %d, Limits.Inodes %d)", lim.Disk, lim.Inodes)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: mounting a disk needs root", ErrNoDisk)
	}
	f, err := os.OpenFile(image, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: disk image: %w", err)
	}
	d := &Disk{dir: dir, image: image}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(image)
		}
	}()
	if err := f.Truncate(lim.Disk); err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: disk image: %w", err)
	}
	// No journal: a disk does not outlive the host's crash (the next
	// service removes it). Lazy init: mkfs writes a few hundred KiB.
	mkfs := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
		"-N", strconv.FormatInt(lim.Inodes, 10), "-E", "lazy_itable_init=1,nodiscard", image)
	if out, err := mkfs.CombinedOutput(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%w: mkfs.ext4 is missing (apt-get install e2fsprogs)", ErrNoDisk)
		}
		return nil, fmt.Errorf("vitehost/sandbox: mkfs.ext4: %v: %s", err, bytes.TrimSpace(out))
	}
	dev, err := attachLoop(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDisk, err)
	}
	// The loop device clears itself at the unmount (LO_FLAGS_AUTOCLEAR):
	// once mounted, nothing of it is ours to release but the mount.
	err = unix.Mount(dev.Name(), dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, "discard")
	dev.Close()
	if err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: mount disk at %s: %w", dir, err)
	}
	ok = true
	return d, nil
}

// attachLoop attaches the image f to a free loop device and returns the
// device, open.
func attachLoop(f *os.File) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
	// Another process may take the free device between the two calls:
	// LOOP_CONFIGURE then says EBUSY, and the next free one is tried.
	for range 16 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("find a free loop device: %w", err)
		}
		name := "/dev/loop" + strconv.Itoa(n)
		dev, err := os.OpenFile(name, os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			// A /dev without devtmpfs (some containers) lacks the nodes
			// of devices the kernel adds on demand.
			if err = unix.Mknod(name, unix.S_IFBLK|0o660, int(unix.Mkdev(7, uint32(n)))); err == nil || errors.Is(err, os.ErrExist) {
				dev, err = os.OpenFile(name, os.O_RDWR, 0)
			}
		}
		if err != nil {
			return nil, err
		}
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("attach %s: %w", name, err)
		}
	}
	return nil, errors.New("no free loop device")
}

// Dir returns the directory the disk is mounted at.
func (d *Disk) Dir() string { return d.dir }

// Full reports whether the disk is full: nil, or an error wrapping
// ErrDiskLimit (less than 1% of its bytes are free) or ErrInodeLimit (less
// than 1% of its inodes).
func (d *Disk) Full() error {
	var st unix.Statfs_t
	if err := unix.Statfs(d.dir, &st); err != nil {
		return nil
	}
	if st.Blocks > 0 && st.Bavail < st.Blocks/fullShare {
		return fmt.Errorf("%w (%d bytes)", ErrDiskLimit, int64(st.Blocks)*st.Bsize)
	}
	if st.Files > 0 && st.Ffree < st.Files/fullShare {
		return fmt.Errorf("%w (%d files and directories)", ErrInodeLimit, st.Files)
	}
	return nil
}

// Close unmounts the disk (lazily: a sandbox that still holds it keeps it
// until its end) and removes its image; the directory stays. It is safe to
// call more than once.
func (d *Disk) Close() error {
	d.closeOnce.Do(func() {
		err := Unmount(d.dir)
		if rerr := os.Remove(d.image); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		d.closeErr = err
	})
	return d.closeErr
}

// Share makes dir a mount point of its own whose later mounts reach the
// sandboxes that hold dir: a sandbox started with dir as its project sees
// a disk that Attach mounts there afterwards, at the same path. Unmount
// undoes it.
func Share(dir string) error {
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("vitehost/sandbox: bind %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		Unmount(dir)
		return fmt.Errorf("vitehost/sandbox: share %s: %w", dir, err)
	}
	return nil
}

// Attach mounts the directory src (a Disk's) over dir too, where a
// sandbox started on dir (made a shared mount by Share) finds it.
func Attach(src, dir string) error {
	if err := unix.Mount(src, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("vitehost/sandbox: attach %s at %s: %w", src, dir, err)
	}
	// A bind mount takes none of the flags of its source's mount.
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return fmt.Errorf("vitehost/sandbox: attach %s at %s: %w", src, dir, err)
	}
	return nil
}

// Unmount detaches every mount at dir or below it (a Disk, what Share and
// Attach mounted there), and returns nil only once none is left: a caller
// that removes dir then removes nothing of a disk. Nothing mounted there is
// not an error.
func Unmount(dir string) error {
	dir = filepath.Clean(dir)
	for range 8 {
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return fmt.Errorf("vitehost/sandbox: unmount %s: %w", dir, err)
		}
		points := mountsUnder(mi, dir)
		if len(points) == 0 {
			return nil
		}
		for _, p := range points {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("vitehost/sandbox: unmount %s: %w", p, err)
			}
		}
	}
	return fmt.Errorf("vitehost/sandbox: unmount %s: still mounted", dir)
}

// mountsUnder returns the mount points of mountinfo at dir or below it,
// deepest and latest first, each as often as something is mounted there.
func mountsUnder(mountinfo []byte, dir string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		p := unescapeMount(f[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	slices.Reverse(out)
	slices.SortStableFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out
}

//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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

// Disk.Full says a disk is full when less than the larger of 1/fullShare
// of its blocks and fullBytes (but at most half of it) is free, or less
// than 1/fullShare of its inodes: a writer that ran into ENOSPC leaves
// less than one of its writes free, not exactly nothing.
const (
	fullShare = 100
	fullBytes = 8 << 20
)

// Disk is a file system of bounded size and inode count mounted at a
// directory: an ext4 file system without a journal in a sparse image file,
// attached to a loop device. Only the blocks written take room on the
// host's disk, and the blocks freed inside go back to the host (the mount
// discards them). Disks makes them.
type Disk struct {
	dir, image string

	closeOnce sync.Once
	closeErr  error
}

// Disks makes Disks of one size and inode count. It formats one template
// image when it is made; each Disk starts as a copy of the few hundred KiB
// that the template holds, which costs less than formatting (mkfs.ext4 of
// a 1 GiB image takes tens of milliseconds on a busy host). Making Disks
// needs root, mkfs.ext4 (e2fsprogs) and loop devices; the error then wraps
// ErrNoDisk. A Disks is safe for concurrent use.
type Disks struct {
	template string
	size     int64
}

// NewDisks formats the template of Disks of lim.Disk bytes and at least
// lim.Inodes inodes (0 means the defaults) into the new file template,
// which Close removes.
func NewDisks(ctx context.Context, template string, lim Limits) (*Disks, error) {
	lim = lim.withDefaults()
	if lim.Disk <= 0 || lim.Inodes <= 0 {
		return nil, fmt.Errorf("vitehost/sandbox: a disk needs a size and an inode count (Limits.Disk %d, Limits.Inodes %d)", lim.Disk, lim.Inodes)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: mounting a disk needs root", ErrNoDisk)
	}
	f, err := os.OpenFile(template, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: disk template: %w", err)
	}
	err = f.Truncate(lim.Disk)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(template)
		return nil, fmt.Errorf("vitehost/sandbox: disk template: %w", err)
	}
	// No journal: a disk does not outlive the host's crash (the next
	// service removes it). Lazy inode tables: mkfs writes a few hundred
	// KiB, and the mount (noinit_itable) never zeroes what a sparse file
	// reads as zeros anyway.
	mkfs := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
		"-N", strconv.FormatInt(lim.Inodes, 10), "-E", "lazy_itable_init=1,nodiscard", template)
	if out, err := mkfs.CombinedOutput(); err != nil {
		os.Remove(template)
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%w: mkfs.ext4 is missing (apt-get install e2fsprogs)", ErrNoDisk)
		}
		return nil, fmt.Errorf("vitehost/sandbox: mkfs.ext4: %v: %s", err, bytes.TrimSpace(out))
	}
	return &Disks{template: template, size: lim.Disk}, nil
}

// Close removes the template; the Disks made stay.
func (ds *Disks) Close() error {
	if err := os.Remove(ds.template); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Mount makes a Disk in the new image file image and mounts it at the
// existing empty directory dir, without set-user-ID programs and device
// files. Its root belongs to root; Command gives it to the sandbox's user
// when dir is Config.Project. The caller calls the Disk's Close, which
// unmounts it and removes the image.
func (ds *Disks) Mount(ctx context.Context, dir, image string) (*Disk, error) {
	f, err := os.OpenFile(image, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: disk image: %w", err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(image)
		}
	}()
	if err := ds.copyTemplate(f); err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: disk image: %w", err)
	}
	dev, err := attachLoop(f)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDisk, err)
	}
	// The loop device clears itself at the unmount (LO_FLAGS_AUTOCLEAR):
	// once mounted, nothing of it is ours to release but the mount.
	err = unix.Mount(dev.Name(), dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, "discard,noinit_itable")
	dev.Close()
	if err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: mount disk at %s: %w", dir, err)
	}
	// The project is the disk's root: mkfs's lost+found (root's, for a
	// file system check that never runs on a disk this short-lived) has no
	// place in it.
	os.Remove(filepath.Join(dir, "lost+found"))
	ok = true
	return &Disk{dir: dir, image: image}, nil
}

// copyTemplate makes f a copy of the template: its data, and holes where
// the template has holes.
func (ds *Disks) copyTemplate(f *os.File) error {
	src, err := os.Open(ds.template)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := f.Truncate(ds.size); err != nil {
		return err
	}
	in, out := int(src.Fd()), int(f.Fd())
	for off := int64(0); off < ds.size; {
		data, err := unix.Seek(in, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // only a hole is left
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(in, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		for r, w := data, data; r < hole; {
			n, err := unix.CopyFileRange(in, &r, out, &w, int(hole-r), 0)
			if err != nil {
				return err
			}
			if n == 0 {
				return io.ErrUnexpectedEOF
			}
		}
		off = hole
	}
	return nil
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
// ErrDiskLimit (less than 1% of its bytes, or 8 MiB, are free) or
// ErrInodeLimit (less than 1% of its inodes).
func (d *Disk) Full() error {
	var st unix.Statfs_t
	if err := unix.Statfs(d.dir, &st); err != nil {
		return nil
	}
	margin := max(st.Blocks/fullShare, uint64(fullBytes/max(st.Bsize, 1)))
	if st.Blocks > 0 && st.Bavail < min(margin, st.Blocks/2) {
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

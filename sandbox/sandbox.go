// Package sandbox runs a command, such as the Node runner of a dev server,
// inside bubblewrap (bwrap), so that code the command runs on behalf of a
// tenant reaches nothing of the host.
//
// A sandbox has its own user, mount, PID, IPC, UTS, cgroup and network
// namespaces (the network has a loopback interface only), an unprivileged
// user without capabilities, a new session (no terminal to inject input
// into), and a clean environment: [Config.Env] and nothing inherited. Its
// file system holds the read-only system directories (/usr and the /bin,
// /lib, ... that lead there), a generated /etc with the sandbox's user and
// localhost and nothing of the host's, its own /proc and /dev, a private /tmp
// of bounded size, the project read-write at [ProjectDir], the dependency
// install read-only at [ModulesDir], and the read-only mounts the caller
// names. Nothing else of the host is there: no other project, no host /proc,
// no host /etc/passwd. bwrap.go builds it; that file is the sandbox.
//
// Memory, processes and CPU are limited through a cgroup of the sandbox's own
// (cgroup v2 where its controllers are available, else v1), and the size of
// each file written through RLIMIT_FSIZE. [CgroupSupport] says what the host
// offers; without cgroups the sandbox still isolates, but does not limit.
// What the sandbox writes in all is bounded when its project is a [Disk]
// ([Disks] makes them): a file system of its own of fixed size and inode
// count. With [UIDs], each sandbox runs as a host user of its own, and so
// has the kernel's per-user budgets, such as inotify's, to itself.
//
// The sandbox never runs as the host's root: a service that runs as root
// starts bwrap as an unprivileged user ([Config.UID]), so that the files
// the tenant makes are not root's and root-only files stay unreadable. It
// dies with its parent: a Go process killed by SIGKILL leaves no process of
// it behind.
//
// Requirements: Linux, bubblewrap 0.8 or later (Debian 12's bubblewrap
// package), and user namespaces that an unprivileged user may create (the
// Debian and Fedora default); [Check] tells whether sandboxes run here.
//
// The command talks to the host through its standard streams and through the
// open files it is given, such as listening sockets: a file the host opened
// cannot be replaced by the tenant's code, while a socket created inside a
// directory that the tenant can write could be swapped for a symbolic link
// that the host's connect(2) would follow.
//
// The sandbox does not defend against kernel exploits: a fleet that runs
// hostile tenants should also run its nodes in virtual machines.
package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
)

// Fixed paths inside every sandbox. Being the same in every sandbox, they
// make the same project produce the same Vite dependency-cache key.
const (
	// ProjectDir is where Config.Project is mounted, read-write; it is the
	// command's working directory.
	ProjectDir = "/project"
	// ModulesDir is where Config.Modules is mounted, read-only. Node finds
	// packages there from anything under ProjectDir, since /node_modules is
	// on the parent chain of /project.
	ModulesDir = "/node_modules"
)

// The user and group the command runs as inside; on the host they are the
// user bwrap runs as (Config.UID and GID).
const (
	sandboxUID = 1000
	sandboxGID = 1000
)

// DefaultUID and DefaultGID are the host user and group of a sandbox started
// by root when Config leaves them zero: nobody and nogroup.
const (
	DefaultUID = 65534
	DefaultGID = 65534
)

// maxFileData bounds the content of a File: it reaches bwrap through a pipe
// filled before the start (1 MiB is what Linux lets any user make a pipe
// hold, /proc/sys/fs/pipe-max-size).
const maxFileData = 1 << 20

// Defaults for the zero values of Limits.
const (
	DefaultMemory   = 1 << 30   // bytes
	DefaultPids     = 1024      // processes and threads
	DefaultFileSize = 256 << 20 // bytes
	DefaultTmp      = 64 << 20  // bytes
	DefaultDisk     = 1 << 30   // bytes
	DefaultInodes   = 1 << 16   // files and directories
)

// Errors that callers may check with errors.Is.
var (
	// ErrUnavailable: bubblewrap is missing or cannot create a sandbox here
	// (user namespaces disabled, an old version); returned by Check and
	// Command, wrapped with the details.
	ErrUnavailable = errors.New("vitehost/sandbox: bubblewrap is not available")
	// ErrNoCgroups: the host offers no cgroup through which the memory and
	// process limits can be enforced; returned by CgroupSupport.
	ErrNoCgroups = errors.New("vitehost/sandbox: no cgroup for the memory and process limits")
	// ErrMemoryLimit: the kernel ended a process of the sandbox because the
	// sandbox reached Limits.Memory; returned by Cmd.LimitErr.
	ErrMemoryLimit = errors.New("vitehost/sandbox: memory limit reached")
	// ErrPidsLimit: the sandbox tried to run more than Limits.Pids processes
	// and threads, and the kernel refused; returned by Cmd.LimitErr.
	ErrPidsLimit = errors.New("vitehost/sandbox: process limit reached")
	// ErrDiskLimit: the sandbox's Disk is full (Limits.Disk); returned by
	// Disk.Full.
	ErrDiskLimit = errors.New("vitehost/sandbox: disk limit reached")
	// ErrInodeLimit: the sandbox's Disk has no inode left for another
	// file or directory (Limits.Inodes); returned by Disk.Full.
	ErrInodeLimit = errors.New("vitehost/sandbox: inode limit reached")
	// ErrNoDisk: a Disk cannot be made here (not root, no mkfs.ext4, no
	// loop device); returned by NewDisk, wrapped with the details.
	ErrNoDisk = errors.New("vitehost/sandbox: no disk for the sandbox")
	// ErrNoUID: every user ID of a UIDs range runs a sandbox; returned by
	// Command.
	ErrNoUID = errors.New("vitehost/sandbox: no free user ID in the range")
)

// Mount is a host path (a file or a directory) mounted read-only at Dst
// inside the sandbox.
type Mount struct {
	Src, Dst string
}

// File is a read-only file that the sandbox gets at Path with the content
// Data (at most 1 MiB), such as a script the command runs: no host path is
// involved.
type File struct {
	Path string
	Data []byte
}

// Limits bound what one sandbox may use. Memory, Pids and CPU need cgroups
// (see CgroupSupport); FileSize and Tmp always apply.
type Limits struct {
	// Memory is the most memory, in bytes, that the sandbox's processes use
	// together, its /tmp included; at the limit the kernel's OOM killer ends
	// a process of the sandbox, and of no other. 0 means DefaultMemory, a
	// negative value no limit.
	Memory int64
	// Pids is the most processes and threads that run in the sandbox at a
	// time (Node alone runs about a dozen threads); beyond it fork and
	// thread creation fail. 0 means DefaultPids, a negative value no limit.
	Pids int
	// CPU is the most CPU time the sandbox gets, in cores (1.5 means one and
	// a half). 0 means no quota; even then each sandbox gets an equal share
	// of a contended CPU where the cpu controller is available, however
	// many threads it runs.
	CPU float64
	// CPUWeight is the sandbox's share of a contended CPU against the other
	// sandboxes and this process, as the cgroup's cpu.weight (1 to 10000;
	// cpu.shares scaled alike on cgroup v1). 0 means the kernel's default,
	// 100, every sandbox's; a sandbox doing background work for later (a
	// spare runner) takes less, so that the ones serving now go first.
	// Cmd.SetCPUWeight changes it while the sandbox runs.
	CPUWeight int
	// FileSize is the largest file, in bytes, that a process of the sandbox
	// may write (RLIMIT_FSIZE). 0 means DefaultFileSize, a negative value no
	// limit.
	FileSize int64
	// Tmp is the size, in bytes, of the sandbox's private /tmp. 0 means
	// DefaultTmp, a negative value the kernel's default for a tmpfs (half of
	// the memory).
	Tmp int64
	// Disk is the size, in bytes, of a Disk that NewDisk makes: the most
	// that the sandbox writes into it, its project's files and caches
	// together. 0 means DefaultDisk, a negative value no Disk (the caller
	// decides; Command mounts the project as it is given).
	Disk int64
	// Inodes is the least number of files and directories a Disk holds
	// (mkfs rounds it up to whole block groups). 0 means DefaultInodes.
	Inodes int64
}

// withDefaults returns l with the zero values replaced by the defaults.
func (l Limits) withDefaults() Limits {
	if l.Memory == 0 {
		l.Memory = DefaultMemory
	}
	if l.Pids == 0 {
		l.Pids = DefaultPids
	}
	if l.FileSize == 0 {
		l.FileSize = DefaultFileSize
	}
	if l.Tmp == 0 {
		l.Tmp = DefaultTmp
	}
	if l.Disk == 0 {
		l.Disk = DefaultDisk
	}
	if l.Inodes == 0 {
		l.Inodes = DefaultInodes
	}
	return l
}

// needCgroup reports whether the limits l (with defaults) need a cgroup.
func (l Limits) needCgroup() bool { return l.Memory > 0 || l.Pids > 0 || l.CPU > 0 }

// Config describes a sandbox. A zero Config is valid: a sandbox with no
// project, no dependencies and the default limits. Command never modifies
// the Config it is called on.
type Config struct {
	// Bwrap is the bubblewrap binary; "" means bwrap on PATH.
	Bwrap string
	// Project is the host directory mounted read-write at ProjectDir, the
	// command's working directory; "" means none (the command runs in /).
	Project string
	// Modules is the host directory mounted read-only at ModulesDir, a
	// node_modules directory shared by sandboxes with the same
	// dependencies; "" means none.
	Modules string
	// ReadOnly are more host paths to mount read-only.
	ReadOnly []Mount
	// Files are more read-only files, with content given here.
	Files []File
	// Env is the command's environment, on top of PATH (the system
	// directories) and HOME=/tmp; nothing of the host's environment reaches
	// the sandbox.
	Env []string
	// Limits bound what the sandbox may use.
	Limits Limits
	// UID and GID are the host user and group that bwrap, and so the
	// sandbox, run as when this process runs as root; 0 means DefaultUID and
	// DefaultGID, and a user of its own (UIDs) is better. A sandbox never runs as
	// the host's root: its files would belong to root (a set-user-ID
	// program in the project would be one of root's), and the kernel trusts
	// root's user ID where no namespace reaches (the sysctl files of /proc).
	// Command makes Project's directory (not what is in it) theirs; Project,
	// Modules, the sources of ReadOnly and the program must be reachable by
	// them (directories on the way searchable by others, at least 0711).
	// When this process is not root, the sandbox runs as its user, and UID
	// and GID are ignored.
	UID, GID int
	// UIDs, when not nil and this process is root, gives the sandbox a host
	// user of its own, whose ID is also its group's: Command takes a free
	// one of the range, Cmd.Close returns it once no process of the
	// sandbox runs, and UID and GID are ignored. Command then gives Project
	// and everything in it to that user, since a sandbox before it on the
	// same project ran as another.
	UIDs *UIDs
	// Name labels the sandbox's cgroup (vitehost-<Name>-<random>), so that
	// an operator can tell whose it is; "" means no label.
	Name string
	// Logger receives the sandbox's warnings (limits that cannot be
	// enforced) and debug events; nil means slog.Default().
	Logger *slog.Logger
}

// check validates what Command cannot leave to bwrap to report.
func (c *Config) check() error {
	for _, m := range c.ReadOnly {
		if !path.IsAbs(m.Dst) || path.Clean(m.Dst) != m.Dst || m.Dst == "/" {
			return fmt.Errorf("vitehost/sandbox: mount destination %q is not a clean absolute path below /", m.Dst)
		}
		if m.Src == "" {
			return fmt.Errorf("vitehost/sandbox: mount at %s has no source", m.Dst)
		}
	}
	for _, f := range c.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return fmt.Errorf("vitehost/sandbox: file path %q is not a clean absolute path below /", f.Path)
		}
		if len(f.Data) > maxFileData {
			return fmt.Errorf("vitehost/sandbox: file %s holds %d bytes, more than %d", f.Path, len(f.Data), maxFileData)
		}
	}
	if c.UID < 0 || c.GID < 0 {
		return fmt.Errorf("vitehost/sandbox: negative UID or GID")
	}
	for _, kv := range c.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsRune(kv, 0) {
			return fmt.Errorf("vitehost/sandbox: environment entry %q is not KEY=value", kv)
		}
	}
	if strings.ContainsAny(c.Name, "/\x00") || c.Name == "." || c.Name == ".." || len(c.Name) > 64 {
		return fmt.Errorf("vitehost/sandbox: Name %q cannot name a cgroup", c.Name)
	}
	return nil
}

// Cgroups says through which cgroups the sandboxes of this process are
// limited.
type Cgroups struct {
	// Version is 2 or 1, or 0 when no controller is usable.
	Version int
	// Controllers are the usable controllers among memory, pids and cpu.
	Controllers []string
}

// String describes c for logs and status pages, such as "cgroup v1
// (memory, pids, cpu)" or "none".
func (c Cgroups) String() string {
	if c.Version == 0 {
		return "none"
	}
	return fmt.Sprintf("cgroup v%d (%s)", c.Version, strings.Join(c.Controllers, ", "))
}

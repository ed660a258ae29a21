//go:build linux

package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// This file is the sandbox: every namespace, mount and limit of it is set
// here, in args and in the shell line that starts bwrap.

// systemDirs are the host directories a sandbox sees read-only besides /usr:
// where they are symbolic links (merged /usr, as on Debian 12: /bin ->
// usr/bin), the sandbox gets the same link; where they are directories, a
// read-only mount; where they are missing, nothing.
var systemDirs = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// defaultPath is PATH inside: the system directories only.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// The generated /etc: the sandbox's user and group, localhost, and the
// lookup order for them. Nothing of the host's /etc is mounted.
var etcFiles = []struct{ name, data string }{
	{"passwd", fmt.Sprintf("sandbox:x:%d:%d:sandbox:/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", sandboxUID, sandboxGID)},
	{"group", fmt.Sprintf("sandbox:x:%d:\nnogroup:x:65534:\n", sandboxGID)},
	{"hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
	{"nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n"},
}

// startLine is the shell line that starts bwrap: it limits the size of the
// files that its processes write, moves itself into the sandbox's cgroups
// (cgroup v1; with v2 the kernel starts it inside) and only then becomes
// bwrap, so that no process of the sandbox ever runs outside them.
//
//	sh -c startLine sh <RLIMIT_FSIZE in 512-byte blocks or "unlimited"> <cgroup.procs files...> -- bwrap args...
const startLine = `ulimit -f "$1" || exit 125; shift
while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift
exec "$@"`

// dataFile is a file of the sandbox whose content bwrap reads from a pipe:
// fd is the pipe's descriptor number in bwrap.
type dataFile struct {
	fd   int
	path string
}

// args returns bwrap's arguments for running prog with argv[1:] in the
// sandbox c: files are the generated /etc and c.Files, infoFD the
// descriptor of the pipe on which bwrap reports the sandbox's init process.
func (c *Config) args(lim Limits, prog string, argv []string, files []dataFile, infoFD int) []string {
	a := []string{
		// Every namespace: user, mount, PID, IPC, UTS, cgroup, and network
		// (loopback only). --unshare-all only tries the user namespace:
		// insist.
		"--unshare-all", "--unshare-user",
		// No user namespaces inside: each one would give the tenant the
		// capabilities of its own root and more of the kernel to attack.
		"--disable-userns",
		// SIGKILL for the command when bwrap or bwrap's parent dies.
		"--die-with-parent",
		// No controlling terminal to push input into (TIOCSTI).
		"--new-session",
		"--uid", strconv.Itoa(sandboxUID), "--gid", strconv.Itoa(sandboxGID),
		"--cap-drop", "ALL",
		"--hostname", "sandbox",
		"--clearenv",
	}
	for _, kv := range environ(c.Env) {
		k, v, _ := strings.Cut(kv, "=")
		a = append(a, "--setenv", k, v)
	}

	a = append(a, "--ro-bind", "/usr", "/usr")
	for _, d := range systemDirs {
		info, err := os.Lstat(d)
		switch {
		case err != nil:
		case info.Mode()&fs.ModeSymlink != 0:
			if target, err := os.Readlink(d); err == nil {
				a = append(a, "--symlink", target, d)
			}
		case info.IsDir():
			a = append(a, "--ro-bind", d, d)
		}
	}
	if !visible(prog) {
		a = append(a, "--ro-bind", prog, prog)
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev")
	if lim.Tmp > 0 {
		a = append(a, "--size", strconv.FormatInt(lim.Tmp, 10))
	}
	a = append(a, "--tmpfs", "/tmp", "--dir", "/etc")
	if c.Modules != "" {
		a = append(a, "--ro-bind", c.Modules, ModulesDir)
	}
	workdir := "/"
	if c.Project != "" {
		a = append(a, "--bind", c.Project, ProjectDir)
		workdir = ProjectDir
	}
	for _, m := range c.ReadOnly {
		a = append(a, "--ro-bind", m.Src, m.Dst)
	}
	for _, f := range files {
		a = append(a, "--ro-bind-data", strconv.Itoa(f.fd), f.path)
	}
	// The root and /dev are tmpfs mounts that bwrap fills: read-only, so
	// that the tenant can neither fill memory through them (/dev/shm
	// included) nor add files beside the generated /etc. /proc read-only:
	// nothing of the kernel's settings is the tenant's to change.
	a = append(a, "--remount-ro", "/proc", "--remount-ro", "/dev", "--remount-ro", "/")
	a = append(a, "--chdir", workdir)
	a = append(a, "--info-fd", strconv.Itoa(infoFD))
	a = append(a, "--", prog)
	return append(a, argv[1:]...)
}

// environ returns the environment inside: the defaults, then env, a later
// entry replacing an earlier one of the same name.
func environ(env []string) []string {
	all := append([]string{"PATH=" + defaultPath, "HOME=/tmp"}, env...)
	var out []string
	at := map[string]int{}
	for _, kv := range all {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := at[k]; ok {
			out[i] = kv
			continue
		}
		at[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// visible reports whether the host path p is inside a system directory that
// every sandbox mounts.
func visible(p string) bool {
	if strings.HasPrefix(p, "/usr/") {
		return true
	}
	for _, d := range systemDirs {
		if info, err := os.Lstat(d); err == nil && info.IsDir() && strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// program returns the real path of the program named by name: looked up on
// the host's PATH when it has no slash, with every symbolic link resolved,
// since the links may lead through directories the sandbox does not have
// (Debian's /usr/bin/node -> /etc/alternatives/node).
func program(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	if p, err = filepath.Abs(p); err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(p)
}

// bwrapPath returns the bubblewrap binary to run.
func (c *Config) bwrapPath() (string, error) {
	name := c.Bwrap
	if name == "" {
		name = "bwrap"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return p, nil
}

// Command prepares argv to run in the sandbox c, as exec.CommandContext
// does; files are open files, such as listening sockets, that the command
// inherits as descriptors 3, 4, and so on. The program argv[0] is looked up
// on the host's PATH and run by its real path; outside the system
// directories, it is mounted read-only at that path (its shared libraries
// must be in the system directories). ctx kills the sandbox as
// exec.CommandContext kills its process.
//
// When this process is root, Command makes Project's directory belong to
// UID and GID (see Config). When the limits need a cgroup and the host
// offers none, the command runs without those limits and a warning goes to
// the Logger. The caller starts and waits for the returned Cmd and then
// calls its Close, which also releases what Command prepared when the Cmd
// never started.
func (c *Config) Command(ctx context.Context, argv []string, files ...*os.File) (*Cmd, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("vitehost/sandbox: no command")
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	bwrap, err := c.bwrapPath()
	if err != nil {
		return nil, err
	}
	prog, err := program(argv[0])
	if err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: %w", err)
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	lim := c.Limits.withDefaults()
	attr := &syscall.SysProcAttr{
		// SIGKILL when the thread that started it dies: bwrap's own
		// --die-with-parent only begins once bwrap runs. Go keeps its
		// threads alive unless a goroutine exits while locked to one
		// (https://github.com/golang/go/issues/27505).
		Pdeathsig: syscall.SIGKILL,
	}
	sc := &Cmd{log: log}
	ok := false
	defer func() {
		if !ok {
			sc.Close()
		}
	}()
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = cmp.Or(c.UID, DefaultUID), cmp.Or(c.GID, DefaultGID)
		if c.UIDs != nil {
			if uid, err = c.UIDs.take(); err != nil {
				return nil, err
			}
			gid = uid
			sc.uids, sc.uid = c.UIDs, uid
		}
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		if c.Project != "" {
			chown := os.Chown
			if c.UIDs != nil {
				chown = Chown
			}
			if err := chown(c.Project, uid, gid); err != nil {
				return nil, fmt.Errorf("vitehost/sandbox: give the project to the sandbox's user: %w", err)
			}
		}
	}
	// Descriptors 3... are the caller's files, then the content of the
	// generated /etc and of c.Files, then bwrap's info pipe.
	var data []dataFile
	fd := 3 + len(files)
	add := func(path string, content []byte) error {
		r, err := dataPipe(content)
		if err != nil {
			return fmt.Errorf("vitehost/sandbox: %s: %w", path, err)
		}
		sc.parentFiles = append(sc.parentFiles, r)
		data = append(data, dataFile{fd: fd, path: path})
		fd++
		return nil
	}
	for _, f := range etcFiles {
		if err := add("/etc/"+f.name, []byte(f.data)); err != nil {
			return nil, err
		}
	}
	for _, f := range c.Files {
		if err := add(f.Path, f.Data); err != nil {
			return nil, err
		}
	}
	sc.info, sc.infoW, err = os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("vitehost/sandbox: %w", err)
	}
	sc.parentFiles = append(sc.parentFiles, sc.infoW)
	infoFD := fd

	var procs []string
	if lim.needCgroup() {
		cg, err := newCgroup(c.Name, lim)
		if err != nil {
			log.Warn("vitehost/sandbox: limits not enforced", "err", err)
		}
		if cg != nil {
			sc.cg = cg
			if procs, err = cg.join(attr, uid, gid); err != nil {
				return nil, err
			}
		}
	}

	fsize := "unlimited"
	if lim.FileSize > 0 {
		fsize = strconv.FormatInt((lim.FileSize+511)/512, 10) // sh's ulimit -f counts 512-byte blocks (POSIX)
	}
	shArgs := append([]string{"-c", startLine, "sh", fsize}, procs...)
	shArgs = append(shArgs, "--", bwrap)
	shArgs = append(shArgs, c.args(lim, prog, argv, data, infoFD)...)

	cmd := exec.CommandContext(ctx, "/bin/sh", shArgs...)
	// bwrap's own environment is what the sandbox gets: the init process
	// inside is a fork of bwrap, and its /proc/1/environ would show the
	// tenant the environment bwrap started with.
	cmd.Env = environ(c.Env)
	cmd.Dir = "/"
	cmd.ExtraFiles = append(append([]*os.File(nil), files...), sc.parentFiles...)
	cmd.SysProcAttr = attr
	sc.Cmd = cmd
	ok = true
	log.Debug("vitehost/sandbox: prepared", "argv", argv, "project", c.Project, "uid", uid, "cgroup", sc.cg.String())
	return sc, nil
}

// dataPipe returns the read end of a pipe that holds data and then EOF.
// The pipe is grown to hold all of data (at most maxFileData), so that
// nothing has to write while bwrap reads.
func dataPipe(data []byte) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	if len(data) > 64<<10 {
		if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), syscall.F_SETPIPE_SZ, uintptr(len(data))); e != 0 {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("grow pipe to %d bytes: %w", len(data), e)
		}
	}
	_, err = w.Write(data)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// checkTimeout bounds Check's sandbox when ctx has no deadline.
const checkTimeout = 30 * time.Second

// Check starts an empty sandbox with the bubblewrap binary bwrap ("" means
// bwrap on PATH) and runs true in it: an error wrapping ErrUnavailable, with
// bwrap's message, says that sandboxes cannot run here.
func Check(ctx context.Context, bwrap string) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	c := Config{Bwrap: bwrap, Limits: Limits{Memory: -1, Pids: -1}}
	p, err := c.bwrapPath()
	if err != nil {
		return err
	}
	c.Bwrap = p
	cmd, err := c.Command(ctx, []string{"true"})
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	cmd.Close()
	if err != nil {
		return fmt.Errorf("%w: %s: %v: %s", ErrUnavailable, p, err, strings.TrimSpace(out.String()))
	}
	return nil
}

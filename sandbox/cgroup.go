//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The controllers the limits use: memory and pids are what make a session
// fail alone; cpu shares a contended CPU fairly and enforces Limits.CPU.
var controllers = []string{"memory", "pids", "cpu"}

// cpuPeriod is the CFS period, in microseconds, of a CPU quota.
const cpuPeriod = 100000

// hierarchy is where this process creates the sandboxes' cgroups: for each
// usable controller, the directory of this process's own cgroup in the
// hierarchy that has the controller (one directory for all of them with
// cgroup v2).
type hierarchy struct {
	version int
	parents map[string]string // controller -> parent directory
	err     error             // why memory or pids is missing; nil when both are there
}

// support describes h for CgroupSupport.
func (h *hierarchy) support() Cgroups {
	c := Cgroups{Version: h.version}
	for _, ctl := range controllers {
		if _, ok := h.parents[ctl]; ok {
			c.Controllers = append(c.Controllers, ctl)
		}
	}
	if len(c.Controllers) == 0 {
		c.Version = 0
	}
	return c
}

// hostHierarchy is found once per process: a process does not move between
// cgroups under a running service.
var hostHierarchy = sync.OnceValue(func() *hierarchy {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return &hierarchy{err: fmt.Errorf("%w: %v", ErrNoCgroups, err)}
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return &hierarchy{err: fmt.Errorf("%w: %v", ErrNoCgroups, err)}
	}
	return discover(mountinfo, self)
})

// CgroupSupport reports through which cgroup version and controllers the
// sandboxes of this process get their limits. The error wraps ErrNoCgroups
// and says why when memory or pids is missing; the sandboxes then run
// without those limits.
func CgroupSupport() (Cgroups, error) {
	h := hostHierarchy()
	return h.support(), h.err
}

// discover finds the hierarchies of this process from its mountinfo and its
// /proc/self/cgroup, preferring cgroup v2 when it offers memory and pids,
// and checks that it may create cgroups there.
func discover(mountinfo, self []byte) *hierarchy {
	mounts := parseMountinfo(mountinfo)
	paths := parseSelfCgroup(self)

	var reasons []string
	if v2, ok := paths[""]; ok {
		h, err := discoverV2(mounts, v2)
		if err == nil {
			return h
		}
		reasons = append(reasons, err.Error())
	}
	h := &hierarchy{version: 1, parents: map[string]string{}}
	for _, ctl := range controllers {
		p, ok := paths[ctl]
		if !ok {
			reasons = append(reasons, "cgroup v1: no "+ctl+" hierarchy")
			continue
		}
		dir, ok := cgroupDir(mounts, "cgroup", ctl, p)
		if !ok {
			reasons = append(reasons, "cgroup v1: "+ctl+" is not mounted")
			continue
		}
		if err := probe(dir); err != nil {
			reasons = append(reasons, fmt.Sprintf("cgroup v1: %s: %v", ctl, err))
			continue
		}
		h.parents[ctl] = dir
	}
	if h.parents["memory"] == "" || h.parents["pids"] == "" {
		h.err = fmt.Errorf("%w: %s", ErrNoCgroups, strings.Join(reasons, "; "))
	}
	return h
}

// discoverV2 returns the cgroup v2 hierarchy when this process's cgroup can
// delegate memory and pids to child cgroups. The kernel lets a cgroup
// enable controllers for its children only while it has no processes of
// its own (except the root): a service must then run in a leaf of a
// delegated subtree (systemd: Delegate=yes) and see its parent here.
func discoverV2(mounts []mount, self string) (*hierarchy, error) {
	dir, ok := cgroupDir(mounts, "cgroup2", "", self)
	if !ok {
		return nil, errors.New("cgroup v2: not mounted")
	}
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup v2: %v", err)
	}
	have := strings.Fields(string(avail))
	if !slices.Contains(have, "memory") || !slices.Contains(have, "pids") {
		return nil, fmt.Errorf("cgroup v2: %s offers no memory and pids controllers (controllers: %q)", dir, strings.TrimSpace(string(avail)))
	}
	var enable []string
	for _, ctl := range controllers {
		if slices.Contains(have, ctl) {
			enable = append(enable, "+"+ctl)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0); err != nil {
		return nil, fmt.Errorf("cgroup v2: enable %s for child cgroups of %s: %v (a cgroup with processes of its own cannot; run the service in a leaf of a delegated subtree)", strings.Join(enable, " "), dir, err)
	}
	if err := probe(dir); err != nil {
		return nil, fmt.Errorf("cgroup v2: %v", err)
	}
	h := &hierarchy{version: 2, parents: map[string]string{}}
	for _, e := range enable {
		h.parents[e[1:]] = dir
	}
	return h, nil
}

// probe creates and removes a child cgroup of dir: the permission to do so
// is what matters, and only trying tells.
func probe(dir string) error {
	p := filepath.Join(dir, "vitehost-probe-"+strconv.Itoa(os.Getpid())+"-"+randomHex(4))
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	return os.Remove(p)
}

// mount is a cgroup file system of /proc/self/mountinfo.
type mount struct {
	fstype string   // cgroup or cgroup2
	root   string   // the cgroup at the mount point
	point  string   // the mount point
	opts   []string // super options: the controllers of a v1 hierarchy
}

// parseMountinfo returns the cgroup mounts of a mountinfo file (proc(5)):
// "id parent major:minor root point options [optional...] - fstype source super-options".
func parseMountinfo(b []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 5 || len(f) < sep+3 {
			continue
		}
		fstype := f[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		var opts []string
		if len(f) > sep+3 {
			opts = strings.Split(f[sep+3], ",")
		}
		out = append(out, mount{fstype: fstype, root: unescapeMount(f[3]), point: unescapeMount(f[4]), opts: opts})
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseSelfCgroup returns the cgroup path of each controller of a
// /proc/self/cgroup file ("id:controllers:path"); the cgroup v2 path is
// under the key "".
func parseSelfCgroup(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			out[""] = f[2]
			continue
		}
		for _, ctl := range strings.Split(f[1], ",") {
			out[ctl] = f[2]
		}
	}
	return out
}

// cgroupDir returns the directory of the cgroup path p in the mount of type
// fstype that has the controller ctl ("" for cgroup2).
func cgroupDir(mounts []mount, fstype, ctl, p string) (string, bool) {
	for _, m := range mounts {
		if m.fstype != fstype || (ctl != "" && !slices.Contains(m.opts, ctl)) {
			continue
		}
		rel, ok := strings.CutPrefix(p, m.root)
		if !ok || (rel != "" && !strings.HasPrefix(rel, "/") && m.root != "/") {
			continue // the mount shows another part of the tree
		}
		dir := filepath.Join(m.point, rel)
		if info, err := os.Stat(dir); err == nil && info.IsDir() {
			return dir, true
		}
	}
	return "", false
}

// cgroup is one sandbox's cgroup: a directory in each hierarchy (one with
// cgroup v2).
type cgroup struct {
	version int
	dirs    map[string]string // controller -> directory
	limits  Limits
	fd      *os.File // cgroup v2: the directory, for CLONE_INTO_CGROUP
}

// newCgroup creates a cgroup for one sandbox under this process's own and
// sets the limits in it. With an error it may still return a cgroup: one
// that lacks a controller the error names.
func newCgroup(label string, lim Limits) (*cgroup, error) {
	h := hostHierarchy()
	if h.version == 0 || len(h.parents) == 0 {
		return nil, h.err
	}
	cg, err := h.create(label, lim)
	if err != nil {
		return nil, err
	}
	return cg, h.err
}

// create makes the cgroup directories of a sandbox, named after label, and
// writes the limits into them.
func (h *hierarchy) create(label string, lim Limits) (*cgroup, error) {
	name := "vitehost-" + randomHex(6)
	if label != "" {
		name = "vitehost-" + label + "-" + randomHex(6)
	}
	cg := &cgroup{version: h.version, dirs: map[string]string{}, limits: lim}
	made := map[string]bool{}
	for _, ctl := range controllers {
		parent, ok := h.parents[ctl]
		if !ok {
			continue
		}
		dir := filepath.Join(parent, name)
		if !made[dir] {
			if err := os.Mkdir(dir, 0o755); err != nil {
				cg.remove()
				return nil, fmt.Errorf("vitehost/sandbox: create cgroup: %w", err)
			}
			made[dir] = true
		}
		cg.dirs[ctl] = dir
	}
	if err := cg.setLimits(); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// setLimits writes the limits into the cgroup's files.
func (cg *cgroup) setLimits() error {
	l := cg.limits
	type setting struct {
		ctl, file, value string
		optional         bool // missing or refused where the kernel does not account it
	}
	var set []setting
	if cg.version == 2 {
		if l.Memory > 0 {
			set = append(set,
				setting{"memory", "memory.max", strconv.FormatInt(l.Memory, 10), false},
				setting{"memory", "memory.swap.max", "0", true},
				// The OOM killer ends the whole sandbox, rather than one
				// process of it that leaves the rest half-working.
				setting{"memory", "memory.oom.group", "1", true})
		}
		if l.Pids > 0 {
			set = append(set, setting{"pids", "pids.max", strconv.Itoa(l.Pids), false})
		}
		if l.CPU > 0 {
			set = append(set, setting{"cpu", "cpu.max", fmt.Sprintf("%d %d", cpuQuota(l.CPU), cpuPeriod), false})
		}
		if l.CPUWeight > 0 {
			set = append(set, setting{"cpu", "cpu.weight", strconv.Itoa(cpuWeight(l.CPUWeight)), false})
		}
	} else {
		if l.Memory > 0 {
			m := strconv.FormatInt(l.Memory, 10)
			set = append(set,
				setting{"memory", "memory.limit_in_bytes", m, false},
				// Memory plus swap: no swap beyond the limit.
				setting{"memory", "memory.memsw.limit_in_bytes", m, true})
		}
		if l.Pids > 0 {
			set = append(set, setting{"pids", "pids.max", strconv.Itoa(l.Pids), false})
		}
		if l.CPU > 0 {
			set = append(set,
				setting{"cpu", "cpu.cfs_period_us", strconv.Itoa(cpuPeriod), false},
				setting{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(cpuQuota(l.CPU), 10), false})
		}
		if l.CPUWeight > 0 {
			set = append(set, setting{"cpu", "cpu.shares", strconv.Itoa(cpuShares(l.CPUWeight)), false})
		}
	}
	for _, s := range set {
		dir, ok := cg.dirs[s.ctl]
		if !ok {
			continue // the controller is missing: CgroupSupport says so
		}
		if err := os.WriteFile(filepath.Join(dir, s.file), []byte(s.value), 0); err != nil && !s.optional {
			return fmt.Errorf("vitehost/sandbox: set %s: %w", s.file, err)
		}
	}
	return nil
}

// setCPUWeight sets the cgroup's share of a contended CPU (Limits.CPUWeight;
// 0 for the default).
func (cg *cgroup) setCPUWeight(w int) error {
	dir, ok := cg.dirs["cpu"]
	if !ok {
		return nil // the controller is missing: CgroupSupport says so
	}
	file, value := "cpu.weight", strconv.Itoa(cpuWeight(w))
	if cg.version == 1 {
		file, value = "cpu.shares", strconv.Itoa(cpuShares(w))
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("vitehost/sandbox: set %s: %w", file, err)
	}
	return nil
}

// cpuWeight returns the cgroup v2 cpu.weight of Limits.CPUWeight w.
func cpuWeight(w int) int {
	if w <= 0 {
		return 100
	}
	return min(w, 10000)
}

// cpuShares returns the cgroup v1 cpu.shares of Limits.CPUWeight w: 1024
// is v1's default as 100 is v2's.
func cpuShares(w int) int { return max(cpuWeight(w)*1024/100, 2) }

// cpuQuota returns the CFS quota, in microseconds per cpuPeriod, of cores.
func cpuQuota(cores float64) int64 {
	return max(int64(cores*cpuPeriod), 1000) // the kernel's minimum is 1 ms
}

// join arranges for the sandbox's first process to start inside the
// cgroup: with cgroup v2 the kernel starts it there (clone3's
// CLONE_INTO_CGROUP, through attr); with v1 it returns the cgroup.procs files
// into which the start line writes its PID, made writable for uid and gid,
// the user the start line runs as.
func (cg *cgroup) join(attr *syscall.SysProcAttr, uid, gid int) ([]string, error) {
	if cg.version == 2 {
		f, err := os.Open(cg.uniqueDirs()[0])
		if err != nil {
			return nil, fmt.Errorf("vitehost/sandbox: open cgroup: %w", err)
		}
		cg.fd = f
		attr.UseCgroupFD, attr.CgroupFD = true, int(f.Fd())
		return nil, nil
	}
	procs := cg.procsFiles()
	if os.Geteuid() == 0 && uid != 0 {
		for _, p := range procs {
			// What this grants: moving the user's own processes into this
			// cgroup. The limits stay root's to change.
			if err := os.Chown(p, uid, gid); err != nil {
				return nil, fmt.Errorf("vitehost/sandbox: cgroup: %w", err)
			}
		}
	}
	return procs, nil
}

// procsFiles returns the cgroup.procs file of each directory of the cgroup.
func (cg *cgroup) procsFiles() []string {
	var out []string
	for _, dir := range cg.uniqueDirs() {
		out = append(out, filepath.Join(dir, "cgroup.procs"))
	}
	return out
}

func (cg *cgroup) uniqueDirs() []string {
	var out []string
	for _, ctl := range controllers {
		if d, ok := cg.dirs[ctl]; ok && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// pids returns the processes in the cgroup.
func (cg *cgroup) pids() []int {
	var out []int
	for _, dir := range cg.uniqueDirs() {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && !slices.Contains(out, pid) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// kill sends SIGKILL to every process of the cgroup.
func (cg *cgroup) kill() {
	if cg.version == 2 {
		// cgroup.kill (Linux 5.14) also catches processes forked meanwhile.
		if os.WriteFile(filepath.Join(cg.uniqueDirs()[0], "cgroup.kill"), []byte("1"), 0) == nil {
			return
		}
	}
	for _, pid := range cg.pids() {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// empty reports whether no process is left in the cgroup.
func (cg *cgroup) empty() bool { return len(cg.pids()) == 0 }

// remove removes the cgroup's directories (a cgroup directory goes with
// rmdir, although it looks full of files).
func (cg *cgroup) remove() error {
	if cg.fd != nil {
		cg.fd.Close()
	}
	var errs []error
	for _, dir := range cg.uniqueDirs() {
		if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// limitErr reads the cgroup's counters of OOM kills and refused forks.
func (cg *cgroup) limitErr() error {
	var errs []error
	if dir, ok := cg.dirs["memory"]; ok && cg.limits.Memory > 0 {
		file := "memory.events"
		if cg.version == 1 {
			file = "memory.oom_control"
		}
		if n := counter(filepath.Join(dir, file), "oom_kill"); n > 0 {
			errs = append(errs, fmt.Errorf("%w (%d MiB): the kernel killed %d process(es) of the sandbox", ErrMemoryLimit, cg.limits.Memory>>20, n))
		}
	}
	if dir, ok := cg.dirs["pids"]; ok && cg.limits.Pids > 0 {
		if n := counter(filepath.Join(dir, "pids.events"), "max"); n > 0 {
			errs = append(errs, fmt.Errorf("%w (%d): %d fork(s) or thread(s) refused", ErrPidsLimit, cg.limits.Pids, n))
		}
	}
	return errors.Join(errs...)
}

// counter returns the value of key in a flat-keyed cgroup file ("key N"
// lines), 0 when either is missing.
func counter(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// String names the cgroup for logs: its directories.
func (cg *cgroup) String() string {
	if cg == nil {
		return "none"
	}
	return strings.Join(cg.uniqueDirs(), ",")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

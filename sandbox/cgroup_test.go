//go:build linux

package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// fakeCgroupfs lays out directories under a temporary root and returns the
// root; dirs are relative to it, files map a relative path to content.
func fakeCgroupfs(t *testing.T, dirs []string, files map[string]string) string {
	root := t.TempDir()
	for _, d := range dirs {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for f, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(root, f), []byte(content), 0o644))
	}
	return root
}

// mountinfo returns mountinfo lines for cgroup mounts: each entry is
// "fstype point super-options" with point relative to root.
func mountinfo(root string, mounts ...string) []byte {
	var b strings.Builder
	b.WriteString("22 1 0:21 / /proc rw,nosuid - proc proc rw\n")
	for i, m := range mounts {
		f := strings.Fields(m)
		fmt.Fprintf(&b, "%d 23 0:%d / %s rw,relatime shared:%d - %s cgroup %s\n", 30+i, 30+i, filepath.Join(root, f[1]), i, f[0], f[2])
	}
	return []byte(b.String())
}

// The layout of the machines this was written on: cgroup v1 controllers
// and a cgroup2 mount without controllers; the process's memory cgroup is
// a child of the root.
func TestDiscoverV1(t *testing.T) {
	root := fakeCgroupfs(t, []string{"memory/svc/x", "pids", "cpu", "unified"},
		map[string]string{"unified/cgroup.controllers": "\n"})
	mi := mountinfo(root, "cgroup2 unified rw", "cgroup memory rw,memory", "cgroup pids rw,pids", "cgroup cpu rw,cpu")
	self := "9:name=systemd:/\n8:pids:/\n4:memory:/svc/x\n1:cpu:/\n0::/\n"
	h := discover(mi, []byte(self))
	require.NoError(t, h.err)
	assert.Equal(t, Cgroups{Version: 1, Controllers: []string{"memory", "pids", "cpu"}}, h.support())
	assert.Equal(t, filepath.Join(root, "memory/svc/x"), h.parents["memory"])
	assert.Equal(t, filepath.Join(root, "pids"), h.parents["pids"])
	assert.Equal(t, "cgroup v1 (memory, pids, cpu)", h.support().String())

	cg, err := h.create("s1", Limits{Memory: 64 << 20, Pids: 32, CPU: 0.5})
	require.NoError(t, err)
	dir := cg.dirs["memory"]
	assert.True(t, strings.HasPrefix(filepath.Base(dir), "vitehost-s1-"), dir)
	for file, want := range map[string]string{
		"memory/svc/x/" + filepath.Base(dir) + "/memory.limit_in_bytes": "67108864",
		"pids/" + filepath.Base(dir) + "/pids.max":                      "32",
		"cpu/" + filepath.Base(dir) + "/cpu.cfs_quota_us":               "50000",
		"cpu/" + filepath.Base(dir) + "/cpu.cfs_period_us":              "100000",
	} {
		b, err := os.ReadFile(filepath.Join(root, file))
		require.NoError(t, err, file)
		assert.Equal(t, want, string(b), file)
	}
	assert.Len(t, cg.procsFiles(), 3)
	assert.NoError(t, cg.limitErr())

	require.NoError(t, os.WriteFile(filepath.Join(cg.dirs["memory"], "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(cg.dirs["pids"], "pids.events"), []byte("max 7\n"), 0o644))
	err = cg.limitErr()
	assert.ErrorIs(t, err, ErrMemoryLimit)
	assert.ErrorIs(t, err, ErrPidsLimit)
	assert.Contains(t, err.Error(), "64 MiB")
	assert.Contains(t, err.Error(), "7 fork(s)")
}

// cgroup v2 with memory and pids delegated: one directory, controllers
// enabled for the children.
func TestDiscoverV2(t *testing.T) {
	root := fakeCgroupfs(t, []string{"cg/system.slice/app"},
		map[string]string{"cg/system.slice/app/cgroup.controllers": "cpuset cpu io memory pids\n"})
	mi := mountinfo(root, "cgroup2 cg rw")
	h := discover(mi, []byte("0::/system.slice/app\n"))
	require.NoError(t, h.err)
	assert.Equal(t, Cgroups{Version: 2, Controllers: []string{"memory", "pids", "cpu"}}, h.support())
	b, err := os.ReadFile(filepath.Join(root, "cg/system.slice/app/cgroup.subtree_control"))
	require.NoError(t, err)
	assert.Equal(t, "+memory +pids +cpu", string(b))

	cg, err := h.create("", Limits{Memory: 1 << 30, Pids: 100, CPU: 2})
	require.NoError(t, err)
	dir := cg.dirs["pids"]
	assert.Equal(t, dir, cg.dirs["memory"], "one directory for every controller")
	assert.Len(t, cg.procsFiles(), 1)
	for file, want := range map[string]string{"memory.max": "1073741824", "pids.max": "100", "cpu.max": "200000 100000", "memory.oom.group": "1", "memory.swap.max": "0"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err, file)
		assert.Equal(t, want, string(b), file)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "memory.events"), []byte("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n"), 0o644))
	assert.ErrorIs(t, cg.limitErr(), ErrMemoryLimit)
}

// A cgroup v2 mount whose controllers are all taken by v1 hierarchies, and
// a cgroup namespace whose root is the process's cgroup (mount root not /).
func TestDiscoverFallbacks(t *testing.T) {
	t.Run("v2 without controllers, v1 in a cgroup namespace", func(t *testing.T) {
		root := fakeCgroupfs(t, []string{"unified", "memory", "pids"},
			map[string]string{"unified/cgroup.controllers": ""})
		var b strings.Builder
		fmt.Fprintf(&b, "30 23 0:30 / %s rw - cgroup2 cgroup2 rw\n", filepath.Join(root, "unified"))
		fmt.Fprintf(&b, "31 23 0:31 /ns %s rw - cgroup cgroup rw,memory\n", filepath.Join(root, "memory"))
		fmt.Fprintf(&b, "32 23 0:32 / %s rw - cgroup cgroup rw,pids\n", filepath.Join(root, "pids"))
		h := discover([]byte(b.String()), []byte("4:memory:/ns\n3:pids:/\n0::/\n"))
		require.NoError(t, h.err)
		assert.Equal(t, 1, h.version)
		assert.Equal(t, filepath.Join(root, "memory"), h.parents["memory"])
		assert.Equal(t, []string{"memory", "pids"}, h.support().Controllers)
	})
	t.Run("v1 without pids", func(t *testing.T) {
		root := fakeCgroupfs(t, []string{"memory"}, nil)
		h := discover(mountinfo(root, "cgroup memory rw,memory"), []byte("4:memory:/\n"))
		require.ErrorIs(t, h.err, ErrNoCgroups)
		assert.Contains(t, h.err.Error(), "pids")
		assert.Equal(t, Cgroups{Version: 1, Controllers: []string{"memory"}}, h.support())
	})
	t.Run("none", func(t *testing.T) {
		h := discover(mountinfo(t.TempDir()), []byte("0::/\n"))
		require.ErrorIs(t, h.err, ErrNoCgroups)
		assert.Equal(t, "none", h.support().String())
	})
}

func TestParseMountinfo(t *testing.T) {
	m := parseMountinfo([]byte("40 31 0:37 / /sys/fs/cgroup/my\\040dir rw,relatime shared:9 master:2 - cgroup cgroup rw,cpu,cpuacct\n" +
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n" +
		"short line\n"))
	require.Len(t, m, 2)
	assert.Equal(t, "/sys/fs/cgroup/my dir", m[0].point)
	assert.Equal(t, []string{"rw", "cpu", "cpuacct"}, m[0].opts)
	assert.Equal(t, "cgroup2", m[1].fstype)
}

func TestEnviron(t *testing.T) {
	assert.Equal(t, []string{"PATH=" + defaultPath, "HOME=/tmp"}, environ(nil))
	assert.Equal(t, []string{"PATH=/bin", "HOME=/tmp", "A=2", "B="}, environ([]string{"A=1", "PATH=/bin", "A=2", "B="}))
}

func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"relative mount", Config{ReadOnly: []Mount{{Src: "/a", Dst: "opt"}}}, "clean absolute"},
		{"mount at root", Config{ReadOnly: []Mount{{Src: "/a", Dst: "/"}}}, "clean absolute"},
		{"unclean mount", Config{ReadOnly: []Mount{{Src: "/a", Dst: "/opt/../etc"}}}, "clean absolute"},
		{"mount without source", Config{ReadOnly: []Mount{{Dst: "/opt"}}}, "no source"},
		{"file path", Config{Files: []File{{Path: "x"}}}, "clean absolute"},
		{"large file", Config{Files: []File{{Path: "/x", Data: make([]byte, maxFileData+1)}}}, "more than"},
		{"env without =", Config{Env: []string{"A"}}, "KEY=value"},
		{"env with NUL", Config{Env: []string{"A=\x00"}}, "KEY=value"},
		{"name with slash", Config{Name: "a/b"}, "cgroup"},
		{"negative uid", Config{UID: -1}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.check()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.NoError(t, (&Config{Env: []string{"A="}, ReadOnly: []Mount{{Src: "/a", Dst: "/opt/a"}}}).check())
}

// TestJoinV2 starts a process, as the sandbox's user, straight into a
// cgroup v2 cgroup (CLONE_INTO_CGROUP) on this host's cgroup2 mount, which
// needs no controllers for that: the mechanism the sandbox uses with v2.
func TestJoinV2(t *testing.T) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	self, err := os.ReadFile("/proc/self/cgroup")
	require.NoError(t, err)
	own, ok := parseSelfCgroup(self)[""]
	if !ok {
		testenv.Missing(t, "a cgroup v2 path for this process (/proc/self/cgroup has no 0:: line)")
	}
	dir, ok := cgroupDir(parseMountinfo(mi), "cgroup2", "", own)
	if !ok || probe(dir) != nil {
		testenv.Missing(t, "a writable cgroup2 mount")
	}
	h := &hierarchy{version: 2, parents: map[string]string{"pids": dir}}
	cg, err := h.create("joinv2", Limits{})
	require.NoError(t, err)
	defer func() { require.NoError(t, cg.remove()) }()

	cmd := exec.Command("/bin/cat", "/proc/self/cgroup")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	uid, gid := os.Getuid(), os.Getgid()
	if os.Geteuid() == 0 {
		uid, gid = DefaultUID, DefaultGID
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
	}
	procs, err := cg.join(cmd.SysProcAttr, uid, gid)
	require.NoError(t, err)
	assert.Empty(t, procs, "nothing for the start line to write")
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Contains(t, string(out), "0::"+filepath.Join(own, filepath.Base(cg.dirs["pids"]))+"\n")
}

// TestCPUWeight: a cgroup's share of a contended CPU is written as v2's
// cpu.weight or v1's cpu.shares, at creation and while it runs, and 0 puts
// the kernel's default back.
func TestCPUWeight(t *testing.T) {
	v1 := fakeCgroupfs(t, []string{"memory", "pids", "cpu"}, nil)
	h1 := discover(mountinfo(v1, "cgroup memory rw,memory", "cgroup pids rw,pids", "cgroup cpu rw,cpu"), []byte("8:pids:/\n4:memory:/\n1:cpu:/\n"))
	require.NoError(t, h1.err)
	v2 := fakeCgroupfs(t, []string{"cg/app"}, map[string]string{"cg/app/cgroup.controllers": "cpu memory pids\n"})
	h2 := discover(mountinfo(v2, "cgroup2 cg rw"), []byte("0::/app\n"))
	require.NoError(t, h2.err)
	for _, c := range []struct {
		h           *hierarchy
		file        string
		low, normal string
	}{{h1, "cpu.shares", "102", "1024"}, {h2, "cpu.weight", "10", "100"}} {
		cg, err := c.h.create("w", Limits{CPUWeight: 10})
		require.NoError(t, err)
		read := func() string {
			b, err := os.ReadFile(filepath.Join(cg.dirs["cpu"], c.file))
			require.NoError(t, err)
			return string(b)
		}
		assert.Equal(t, c.low, read(), c.file)
		require.NoError(t, cg.setCPUWeight(0))
		assert.Equal(t, c.normal, read(), c.file)
	}

	// This host's kernel takes them.
	if _, err := CgroupSupport(); err != nil {
		testenv.Missing(t, "cgroups for the sandbox's limits: "+err.Error())
	}
	h := hostHierarchy()
	if _, ok := h.parents["cpu"]; !ok {
		testenv.Missing(t, "the cgroup cpu controller")
	}
	cg, err := h.create("weight", Limits{CPUWeight: 10})
	require.NoError(t, err)
	defer func() { require.NoError(t, cg.remove()) }()
	file, low, normal := "cpu.weight", "10\n", "100\n"
	if cg.version == 1 {
		file, low, normal = "cpu.shares", "102\n", "1024\n"
	}
	b, err := os.ReadFile(filepath.Join(cg.dirs["cpu"], file))
	require.NoError(t, err)
	assert.Equal(t, low, string(b))
	require.NoError(t, cg.setCPUWeight(0))
	b, err = os.ReadFile(filepath.Join(cg.dirs["cpu"], file))
	require.NoError(t, err)
	assert.Equal(t, normal, string(b))
}

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// memory is what a set of processes holds, from /proc/<pid>/smaps_rollup:
// resident (Rss), proportional (Pss: shared pages divided among the
// processes that map them) and private (Private_Clean + Private_Dirty:
// pages no other process maps).
type memory struct {
	rss, pss, private int64 // bytes
	procs             int
}

func (m memory) add(o memory) memory {
	return memory{rss: m.rss + o.rss, pss: m.pss + o.pss, private: m.private + o.private, procs: m.procs + o.procs}
}

// String formats m in MiB.
func (m memory) String() string {
	return fmt.Sprintf("%s RSS / %s PSS / %s private", mib(m.rss), mib(m.pss), mib(m.private))
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// procTable is a snapshot of the processes of the machine: each one's
// parent and command name.
type procTable struct {
	parent map[int]int
	comm   map[int]string
}

func readProcs() procTable {
	t := procTable{parent: map[int]int{}, comm: map[int]string{}}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
		i, j := bytes.LastIndexByte(b, ')'), bytes.IndexByte(b, '(')
		if i < 0 || j < 0 || i+2 > len(b) {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		t.parent[pid], _ = strconv.Atoi(f[1])
		t.comm[pid] = string(b[j+1 : i])
	}
	return t
}

// tree returns root and all its descendants.
func (t procTable) tree(root int) []int {
	kids := map[int][]int{}
	for pid, pp := range t.parent {
		kids[pp] = append(kids[pp], pid)
	}
	out := []int{}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, ok := t.parent[p]; !ok {
			continue
		}
		out = append(out, p)
		queue = append(queue, kids[p]...)
	}
	return out
}

// children returns the children of pid named comm, in pid order.
func (t procTable) children(pid int, comm string) []int {
	var out []int
	for p, pp := range t.parent {
		if pp == pid && t.comm[p] == comm {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// treeMemory sums the memory of root's process tree.
func treeMemory(root int) memory {
	var m memory
	for _, pid := range readProcs().tree(root) {
		m = m.add(processMemory(pid))
	}
	return m
}

// sandbox is a sandbox this process started: a bwrap child of this
// process, with the processes inside it.
type sandbox struct {
	mem     memory
	project string // the host directory it mounted at /project, as named then
	spare   bool   // a spare runner no session took yet
}

// sandboxes returns the sandboxes this process started whose project was
// under dir.
func sandboxes(dir string) []sandbox {
	t := readProcs()
	var out []sandbox
	for _, pid := range t.children(os.Getpid(), "bwrap") {
		project := boundProject(pid)
		if !strings.HasPrefix(project, dir+string(filepath.Separator)) {
			continue
		}
		sb := sandbox{project: project}
		// A session that takes a spare either gives the spare's directory
		// its own name or, on a disk of its own, mounts that disk over it:
		// a spare's directory that still exists on its parent's device is
		// one nobody took.
		if strings.HasPrefix(filepath.Base(project), "spare-") {
			sb.spare = sameDevice(project, filepath.Dir(project))
		}
		for _, p := range t.tree(pid) {
			sb.mem = sb.mem.add(processMemory(p))
		}
		out = append(out, sb)
	}
	return out
}

// sessions returns the memory of each sandbox under dir that runs a
// session (not an idle spare).
func sessions(dir string) []memory {
	var out []memory
	for _, sb := range sandboxes(dir) {
		if !sb.spare {
			out = append(out, sb.mem)
		}
	}
	return out
}

// boundProject returns the host directory that the bwrap process pid
// mounts at /project.
func boundProject(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return ""
	}
	args := strings.Split(string(b), "\x00")
	for i := 0; i+2 < len(args); i++ {
		if args[i] == "--bind" && args[i+2] == "/project" {
			return args[i+1]
		}
	}
	return ""
}

// selfAndChildren sums the memory of this process and everything it
// started.
func selfAndChildren() memory { return treeMemory(os.Getpid()) }

func processMemory(pid int) memory {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return memory{}
	}
	defer f.Close()
	m := memory{procs: 1}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "Rss:":
			m.rss += kb << 10
		case "Pss:":
			m.pss += kb << 10
		case "Private_Clean:", "Private_Dirty:":
			m.private += kb << 10
		}
	}
	return m
}

// medianMemory returns the element of ms with the median RSS.
func medianMemory(ms []memory) memory {
	if len(ms) == 0 {
		return memory{}
	}
	s := append([]memory(nil), ms...)
	sort.Slice(s, func(i, j int) bool { return s[i].rss < s[j].rss })
	return s[len(s)/2]
}

// sameDevice reports whether a and b both exist on one device (a is no
// mount point below b).
func sameDevice(a, b string) bool {
	var sa, sb syscall.Stat_t
	if syscall.Stat(a, &sa) != nil || syscall.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

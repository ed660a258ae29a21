package preview

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"time"
)

// This file decides how many spare runners the Manager keeps: the demand
// for them, within a memory budget.

// spareCost is what one spare runner is counted for, its sandbox's
// processes included: an idle spare (Node with Vite imported, warmed up by
// a page load of the React template) held 125-156 MiB resident (70-99 MiB
// PSS, /proc/<pid>/smaps_rollup) here, and a session in one 180 MiB after
// its page load (the README's density table).
const spareCost = 200 << 20

// maxArrivals bounds the arrivals the demand remembers.
const maxArrivals = 1024

// defaultMakeTime is what a spare is expected to take to start until one
// has: a fresh runner's start and one page load of the template.
const defaultMakeTime = 1500 * time.Millisecond

// demand is how many spare runners the stock should hold: at least min,
// and as many as sessions arrived within the time that making one takes,
// at the peak of the last idle, never more than max. The zero value keeps
// none.
type demand struct {
	min, max int
	idle     time.Duration // the window the peak is taken over, and how long an unasked-for spare waits
	makeTime time.Duration // a moving average of the spares' start times

	arrivals []time.Time // the sessions that asked for a spare, oldest first
}

// newDemand returns the demand for spares of Options.Spares (min),
// SpareMemory and SpareIdle, already defaulted. The budget wins over min.
func newDemand(minimum int, memory int64, idle time.Duration) demand {
	most := int(memory / spareCost)
	return demand{min: max(0, min(minimum, most)), max: most, idle: idle, makeTime: defaultMakeTime}
}

// arrive counts a session that asked for a spare at now.
func (d *demand) arrive(now time.Time) {
	d.forget(now)
	if len(d.arrivals) == maxArrivals {
		d.arrivals = d.arrivals[1:]
	}
	d.arrivals = append(d.arrivals, now)
}

// made notes that a spare took took to start: the next ones are expected
// to take about as long.
func (d *demand) made(took time.Duration) {
	d.makeTime = (7*d.makeTime + 3*took) / 10
}

// forget drops the arrivals older than the window at now.
func (d *demand) forget(now time.Time) {
	i := 0
	for i < len(d.arrivals) && now.Sub(d.arrivals[i]) > d.idle {
		i++
	}
	d.arrivals = d.arrivals[i:]
}

// target returns how many spares the stock should hold at now: the most
// sessions that arrived within one spare's making time during the window
// (a burst of ten at once asks for ten; one a second, with spares made in
// 1.5 s, for two), at least min, at most max.
func (d *demand) target(now time.Time) int {
	d.forget(now)
	peak, i := 0, 0
	for j, t := range d.arrivals {
		for t.Sub(d.arrivals[i]) > d.makeTime {
			i++
		}
		peak = max(peak, j-i+1)
	}
	return min(max(peak, d.min), d.max)
}

// tick is how often the stock checks for spares it no longer needs.
func (d *demand) tick() time.Duration {
	return min(max(d.idle/4, 50*time.Millisecond), 15*time.Second)
}

// spareMemoryShare is the share of the machine's memory that the spares'
// budget is by default: one eighth. A burst of twenty sessions at once
// asked for twenty spares (4 GiB at spareCost) here; an eighth of this
// 24 GiB machine holds fifteen, and leaves the rest to the sessions, which
// hold 150-300 MiB each once they run.
const spareMemoryShare = 8

// defaultSpareMemory returns the spares' memory budget on a machine of
// memory bytes (0: not known): its spareMemoryShare, at least
// DefaultSpareMemory.
func defaultSpareMemory(memory int64) int64 {
	return max(memory/spareMemoryShare, DefaultSpareMemory)
}

// machineMemory returns the memory of the machine, or the limit of the
// memory cgroup that this process's namespace sees when that is lower (a
// container's), in bytes; 0 when not known (not Linux).
func machineMemory() int64 {
	total := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total = kb << 10
				break
			}
		}
	}
	// cgroup v2, then v1; "max" or a huge v1 value means no limit.
	for _, name := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		if limit, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && limit > 0 && limit < total {
			total = limit
		}
		break
	}
	return total
}

package preview

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestDemand is the arithmetic of the spares' stock: a burst asks for as
// many spares as it has sessions, a steady rate for what arrives while one
// is made, the budget bounds both and Spares, and the demand is forgotten
// after the window.
func TestDemand(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var ts []time.Time
		for _, m := range ms {
			ts = append(ts, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return ts
	}
	for _, tc := range []struct {
		name     string
		min      int
		budget   int64
		arrivals []time.Time
		now      time.Time
		want     int
	}{
		{"nothing asked: Spares", 1, 5 * spareCost, nil, t0, 1},
		{"a burst of four at once", 1, 5 * spareCost, at(0, 1, 2, 3), t0.Add(time.Second), 4},
		{"a burst beyond the budget", 1, 5 * spareCost, at(0, 0, 0, 0, 0, 0, 0, 0, 0, 0), t0, 5},
		{"one a second, made in 1.5 s", 1, 5 * spareCost, at(0, 1000, 2000, 3000, 4000), t0.Add(5 * time.Second), 2},
		{"one every two seconds", 0, 5 * spareCost, at(0, 2000, 4000), t0.Add(5 * time.Second), 1},
		{"the burst is forgotten after the window", 1, 5 * spareCost, at(0, 0, 0), t0.Add(time.Minute + time.Millisecond), 1},
		{"Spares beyond the budget", 8, 3 * spareCost, nil, t0, 3},
		{"a budget below one spare", 1, spareCost - 1, at(0, 0), t0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDemand(tc.min, tc.budget, time.Minute)
			for _, a := range tc.arrivals {
				d.arrive(a)
			}
			assert.Equal(t, tc.want, d.target(tc.now))
		})
	}
}

// TestDemandBounded: a flood of arrivals keeps at most maxArrivals of
// them, and the stock at most the budget.
func TestDemandBounded(t *testing.T) {
	d := newDemand(1, 4*spareCost, time.Minute)
	now := time.Now()
	for range 100 * maxArrivals {
		d.arrive(now)
	}
	assert.Len(t, d.arrivals, maxArrivals)
	assert.Equal(t, 4, d.target(now))
}

// TestDefaultSpareMemory: the spares' budget is an eighth of the machine's
// memory, never less than DefaultSpareMemory, which is also the budget
// when the machine's memory is not known.
func TestDefaultSpareMemory(t *testing.T) {
	for _, tc := range []struct {
		memory, want int64
	}{
		{0, DefaultSpareMemory},
		{4 << 30, DefaultSpareMemory},
		{8 << 30, 1 << 30},
		{24 << 30, 3 << 30},
		{256 << 30, 32 << 30},
	} {
		assert.Equal(t, tc.want, defaultSpareMemory(tc.memory), "memory %d", tc.memory)
	}
	if runtime.GOOS == "linux" {
		// /proc/meminfo is there on Linux.
		m := machineMemory()
		assert.Greater(t, m, int64(64<<20))
		assert.Equal(t, max(m/8, DefaultSpareMemory), defaultSpareMemory(m))
	}
}

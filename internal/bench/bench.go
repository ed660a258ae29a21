// Package bench holds the measurements behind go run ./internal/cmd/bench:
// each file registers one section (proxy overhead, launcher start, preview
// sessions, ...) that measures on this machine and returns rows for the one
// table the command prints. Nothing here is asserted; everything is printed.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Row is one line of the benchmark table.
type Row struct {
	Section string // filled in by Run from the registered name
	What    string // what was measured, e.g. "module fetch via ssrproxy"
	Value   string // the figure with its unit, e.g. "1.23 ms p50 / 4.5 ms p99"
	Ratio   string // a pairwise ratio where there is a baseline, e.g. "0.93x direct"
	Note    string // sample size, conditions
}

// Env is what a section gets to work with.
type Env struct {
	// Dir is a scratch directory that the command removes afterwards.
	Dir string
	// Log receives progress lines (stderr).
	Log *slog.Logger
	// Quick asks for fewer iterations (a smoke run).
	Quick bool
}

// Func measures one section.
type Func func(ctx context.Context, env *Env) ([]Row, error)

var (
	mu       sync.Mutex
	sections = map[string]Func{}
	order    = map[string]int{}
)

// Register adds a section; prio orders the table (lower first).
func Register(name string, prio int, f Func) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := sections[name]; dup {
		panic("bench: section registered twice: " + name)
	}
	sections[name] = f
	order[name] = prio
}

// Sections returns the registered section names in table order.
func Sections() []string {
	mu.Lock()
	defer mu.Unlock()
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if order[names[i]] != order[names[j]] {
			return order[names[i]] < order[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}

// Run measures one section and labels its rows.
func Run(ctx context.Context, name string, env *Env) ([]Row, error) {
	mu.Lock()
	f := sections[name]
	mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("bench: no section %q", name)
	}
	rows, err := f(ctx, env)
	for i := range rows {
		rows[i].Section = name
	}
	return rows, err
}

// Print writes rows as a Markdown table.
func Print(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| section | measured | value | ratio | note |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.Section, r.What, r.Value, r.Ratio, r.Note)
	}
}

// Stats summarises a sample of durations.
type Stats struct {
	N             int
	P50, P99, Max time.Duration
	Mean          time.Duration
}

// Summarize computes Stats; it sorts a copy of d.
func Summarize(d []time.Duration) Stats {
	if len(d) == 0 {
		return Stats{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	return Stats{
		N:    len(s),
		P50:  Percentile(s, 0.50),
		P99:  Percentile(s, 0.99),
		Max:  s[len(s)-1],
		Mean: sum / time.Duration(len(s)),
	}
}

// Percentile returns the q-quantile (nearest rank) of sorted.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

// Ms formats a duration in milliseconds with two decimals.
func Ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

// Ratio formats a/b as "1.23x".
func Ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

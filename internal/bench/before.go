package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func init() { Register("before", 100, runBefore) }

// BaseRev is the commit the before section measures beside this tree: the
// code right before this round's architecture step, after its hardening,
// the step that was to leave the benchmarks unchanged. fce6ce3, before the
// hardening too, measures the whole round (VITEHOST_BENCH_BASE=fce6ce3).
const BaseRev = "0e90143"

// beforeSections are the sections measured on both trees.
var beforeSections = []string{"preview"}

// runBefore measures the preview section of the code at BaseRev
// (VITEHOST_BENCH_BASE overrides it) and of this tree, one after the other,
// three times each, within this one run, and returns each row the two
// share, the median of each side's p50 beside the other: how much this
// tree's changes moved the figures. Every other round runs the sides in
// the other order (before, now, now, before, before, now), so that a load
// that rises or falls over the run weighs on both sides alike: on a shared
// machine, the other work moves every row of one phase of a run together
// (all the unsandboxed rows of a side by 12-16% in one run, and not in the
// next), and a median of three leaves out the one run it hit. Each row's
// note gives every run's figure, so that a gap within the spread of one
// side's runs reads as such. The old tree is taken from git (git archive),
// its fixtures installed by its own scripts/deps.sh, and its bench built.
func runBefore(ctx context.Context, env *Env) ([]Row, error) {
	rev := BaseRev
	if v := os.Getenv("VITEHOST_BENCH_BASE"); v != "" {
		rev = v
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	old, err := buildBase(ctx, env, rev)
	if err != nil {
		return nil, fmt.Errorf("build the bench at %s: %w", rev, err)
	}
	only := strings.Join(beforeSections, ",")
	rounds := 3
	if env.Quick {
		rounds = 1
	}
	type side struct {
		bin, dir string
		out      *[][]figure
	}
	var before, now [][]figure
	for round := range rounds {
		sides := []side{{old.bin, old.dir, &before}, {self, "", &now}}
		if round%2 == 1 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			args := []string{"-only", only}
			if env.Quick {
				args = append(args, "-quick")
			}
			env.Log.Info("bench before: run", "bin", side.bin, "args", args)
			figs, err := runTable(ctx, side.dir, side.bin, args...)
			if err != nil {
				return nil, err
			}
			*side.out = append(*side.out, figs)
		}
	}
	order := "interleaved"
	if rounds > 1 {
		order = "interleaved (before, now, now, before, ...)"
	}
	var rows []Row
	for _, f := range now[0] {
		b, n := medianOf(before, f.what), medianOf(now, f.what)
		if b == 0 || n == 0 {
			continue // not in both trees
		}
		rows = append(rows, Row{
			What:  only + ": " + f.what,
			Value: fmt.Sprintf("%.2f %s now, %.2f %s before", n, f.unit, b, f.unit),
			Ratio: Ratio(n, b) + " before",
			Note:  fmt.Sprintf("%s and now, median of %d runs a side, %s; runs now %s, before %s", rev, rounds, order, runsOf(now, f.what), runsOf(before, f.what)),
		})
	}
	return rows, nil
}

// base is the bench of another tree, built.
type base struct{ dir, bin string }

// buildBase extracts rev into a directory under env.Dir, installs its
// fixtures and builds its bench command.
func buildBase(ctx context.Context, env *Env, rev string) (base, error) {
	root, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return base{}, fmt.Errorf("git rev-parse: %w", err)
	}
	dir := filepath.Join(env.Dir, "before-"+rev)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return base{}, err
	}
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", strings.TrimSpace(string(root)), rev, dir)
	if out, err := archive.CombinedOutput(); err != nil {
		return base{}, fmt.Errorf("git archive: %w: %s", err, out)
	}
	for _, c := range [][]string{{"./scripts/deps.sh"}, {"go", "build", "-o", "bench-before", "./internal/cmd/bench"}} {
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return base{}, fmt.Errorf("%s: %w: %s", strings.Join(c, " "), err, lastLines(out, 20))
		}
	}
	return base{dir: dir, bin: filepath.Join(dir, "bench-before")}, nil
}

// figure is the first figure of a table row, with its unit.
type figure struct {
	what  string
	value float64
	unit  string
}

// runTable runs a bench command in dir and returns the first figure of
// each row of the table it prints, in the table's order.
func runTable(ctx context.Context, dir, bin string, args ...string) ([]figure, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, lastLines(errOut.Bytes(), 20))
	}
	var figs []figure
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) < 6 {
			continue
		}
		fields := strings.Fields(cells[3])
		for i, f := range fields {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				continue
			}
			unit := ""
			if i+1 < len(fields) {
				unit = fields[i+1]
			}
			figs = append(figs, figure{what: strings.TrimSpace(cells[2]), value: v, unit: unit})
			break
		}
	}
	return figs, nil
}

// medianOf returns the median of row what's figure over runs, 0 when a run
// lacks it.
func medianOf(runs [][]figure, what string) float64 {
	var vs []float64
	for _, figs := range runs {
		i := slices.IndexFunc(figs, func(f figure) bool { return f.what == what })
		if i < 0 {
			return 0
		}
		vs = append(vs, figs[i].value)
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// runsOf returns row what's figure of each run, in the order they ran.
func runsOf(runs [][]figure, what string) string {
	var vs []string
	for _, figs := range runs {
		if i := slices.IndexFunc(figs, func(f figure) bool { return f.what == what }); i >= 0 {
			vs = append(vs, strconv.FormatFloat(figs[i].value, 'f', -1, 64))
		}
	}
	return strings.Join(vs, " ")
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

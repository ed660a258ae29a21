// Command bench measures vitehost on this machine and prints one table:
//
//	go run ./internal/cmd/bench            # every section
//	go run ./internal/cmd/bench -only proxy,launch
//
// Each section lives in internal/bench. Figures are measured, never typed.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/vitehost/vitehost/internal/bench"
)

func main() {
	only := flag.String("only", "", "comma-separated sections to run (default: all): "+strings.Join(bench.Sections(), ","))
	quick := flag.Bool("quick", false, "fewer iterations (a smoke run)")
	serveSPA := flag.String("serve-spa", "", "internal: serve this dist with vite.SPA in this process (bench.StartSPAProcess)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *serveSPA != "" {
		if err := bench.ServeSPA(ctx, *serveSPA, os.Stdout); err != nil {
			log.Error("bench: serve-spa", "err", err)
			os.Exit(1)
		}
		return
	}

	dir, err := os.MkdirTemp("", "vitehost-bench-")
	if err != nil {
		log.Error("bench", "err", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	// The sandboxes' user mounts the sessions below it.
	if err := os.Chmod(dir, 0o755); err != nil {
		log.Error("bench", "err", err)
		os.Exit(1)
	}

	names := bench.Sections()
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	start := time.Now()
	var rows []bench.Row
	failed := false
	for _, name := range names {
		log.Info("bench: section", "name", name)
		env := &bench.Env{Dir: dir, Log: log.With("section", name), Quick: *quick}
		r, err := bench.Run(ctx, name, env)
		rows = append(rows, r...)
		if err != nil {
			failed = true
			rows = append(rows, bench.Row{Section: name, What: "FAILED", Note: err.Error()})
			log.Error("bench: section failed", "name", name, "err", err)
		}
	}
	fmt.Printf("\nvitehost benchmark, %s: %d cores, %s memory, %s, total %s\n\n",
		time.Now().Format("2006-01-02"), runtime.NumCPU(), memTotal(), runtime.Version(), time.Since(start).Round(time.Second))
	bench.Print(os.Stdout, rows)
	if failed {
		os.Exit(1)
	}
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			var kb float64
			fmt.Sscan(f[1], &kb)
			return fmt.Sprintf("%.1f GiB", kb/1024/1024)
		}
	}
	return "unknown"
}

// Command hotwatch watches a hot file and its .hmr companion and prints the
// dev server's targets each time they change: the smallest look at what the
// hotfile package sees.
//
//	go run ./examples/hotwatch -hot public/hot
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vitehost/vitehost/hotfile"
)

func main() {
	hot := flag.String("hot", "public/hot", "path of the hot file (its HMR companion is the same path plus .hmr)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	w, err := hotfile.Watch(*hot, &hotfile.WatchOptions{Logger: log})
	if err != nil {
		log.Error("watch", "err", err)
		os.Exit(1)
	}
	defer w.Close()
	changes, cancel := w.Subscribe()
	defer cancel()

	fmt.Printf("watching %s and %s\n", w.Path(), hotfile.HMRPath(w.Path()))
	report(w.Targets())
	for {
		select {
		case <-ctx.Done():
			return
		case t, ok := <-changes:
			if !ok {
				return
			}
			report(t)
		}
	}
}

func report(t hotfile.Targets) {
	fmt.Printf("http=%s hmr=%s\n", show(t.HTTP), show(t.HMR))
}

func show(u *url.URL) string {
	if u == nil {
		return "(none)"
	}
	return u.String()
}

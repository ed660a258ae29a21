package deps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vitehost/vitehost/internal/flock"
)

// This file resolves and installs a set through the package store in one
// pnpm run: pnpm resolves the set (from the lockfile of a set like it,
// storeseed.go), fetches what the store lacks and links the set into a
// private stage directory, writing the lockfile; the lockfile names the set
// (its key), and the stage becomes the set, or is discarded when another
// declared set that resolves alike installed it first. A resolve run
// (--lockfile-only) and an install run of its frozen lockfile took 3.4 s
// here for the template plus one package, 2.6 s of it the resolve; the one
// run takes 0.9 s (a cold Lovable-style set: 18 s against 15 s). --offline, when the metadata cache holds every package,
// gains nothing over --prefer-offline (which then asks the registry
// nothing either).

// runStore is run for the store: it resolves and installs the declared set
// spec, starting from the installed set like (which may be nil).
func (c *Cache) runStore(ctx context.Context, spec string, deps, like Set, report progressFunc) error {
	argv, err := c.pnpm.installArgv(ctx)
	if err != nil {
		return errNoTool(err)
	}
	stage, err := c.workDir(deps) // out of sets() until it is renamed
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	seed := c.seed(like)
	if seed != "" {
		if err := c.seedLockfile(seed, stage); err != nil {
			seed = ""
		}
	}
	start := time.Now()
	report.report(Progress{Phase: PhaseResolving})
	// The store's pruning waits: a file it removed could be one this run
	// is about to link.
	unlockStore, err := flock.RLock(c.pnpm.storeLock())
	if err != nil {
		return err
	}
	err = c.command(ctx, argv, stage, "install")
	unlockStore()
	if err != nil {
		return err
	}
	lock, err := os.ReadFile(filepath.Join(stage, pnpmLockfile))
	if err != nil {
		return fmt.Errorf("%w: pnpm wrote no %s", ErrInstall, pnpmLockfile)
	}
	res, err := parsePNPMLockfile(lock)
	if err != nil {
		return fmt.Errorf("%w: reading the resolved lockfile: %v", ErrInstall, err)
	}
	if _, err := os.Stat(filepath.Join(stage, "node_modules")); err != nil {
		return fmt.Errorf("%w: pnpm made no node_modules", ErrInstall)
	}
	if err := c.remember(spec, res); err != nil {
		return err
	}
	if err := CheckViteVersion(res.vite, c.floor, deps); err != nil {
		return err
	}
	// The steps of pnpm's run, told once it is over: its output names
	// the packages it fetched from the registry, not those new to the
	// set.
	packages := res.packages
	if seed != "" {
		packages = c.newPackages(seed, lock)
	}
	report.report(Progress{Phase: PhaseDownloading, Packages: packages})
	report.report(Progress{Phase: PhaseLinking})
	ran := time.Since(start)

	modules := filepath.Join(c.dir, res.key, "node_modules")
	if _, err := os.Stat(modules); err == nil {
		return nil // a set that resolves alike is installed
	}
	unlock, err := lockContext(ctx, filepath.Join(c.dir, res.key+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(modules); err == nil {
		return nil // another process installed it while this one ran
	}
	size, err := c.place(stage, res.key)
	if err != nil {
		return err
	}
	c.log.Info("vitehost/preview: installed dependencies", "spec", spec, "key", res.key, "vite", res.vite, "bytes", size,
		"pnpm", ran.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

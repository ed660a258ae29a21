package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vitehost/vitehost/internal/testenv"
)

func init() { Register("realproject", 35, runRealProject) }

// realProjectDir is the Lovable-shaped project of the preview tests: Vite
// 5.4, @vitejs/plugin-react-swc 3, lovable-tagger, shadcn/ui, Tailwind 3.
func realProjectDir() string {
	return filepath.Join(testenv.ModuleRoot(), "preview", "testdata", "realprojects", "lovable")
}

// runRealProject measures a Lovable-style project's create until its page
// is served (the API answers then) with a cold dependency cache and with a
// warm one, beside npm's own install of the same package.json into an
// empty directory (npm's download cache warm, as on a developer's machine
// after the cold create).
func runRealProject(ctx context.Context, env *Env) ([]Row, error) {
	files, pkg, err := testenv.ReadProject(realProjectDir())
	if err != nil {
		return nil, err
	}
	body := map[string]any{"files": files, "packageJson": pkg}
	cache := filepath.Join(env.Dir, "realproject-deps") // fresh: the cold run installs
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	svc, err := startPreviewService(env, "realproject", cache, false)
	if err != nil {
		return nil, err
	}
	defer svc.close()

	create := func() (time.Duration, error) {
		start := time.Now()
		a, err := svc.post(ctx, "", body)
		if err != nil {
			return 0, err
		}
		took := time.Since(start)
		svc.delete(ctx, a.SessionID)
		return took, nil
	}
	env.Log.Info("bench realproject: create with a cold dependency cache")
	cold, err := create()
	if err != nil {
		return nil, fmt.Errorf("cold create: %w", err)
	}
	runs := 3
	if env.Quick {
		runs = 1
	}
	var warm []time.Duration
	for range runs {
		d, err := create()
		if err != nil {
			return nil, fmt.Errorf("warm create: %w", err)
		}
		warm = append(warm, d)
	}
	ws := Summarize(warm)

	npmDir := filepath.Join(env.Dir, "realproject-npm")
	if err := os.MkdirAll(npmDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(npmDir, "package.json"), pkg, 0o644); err != nil {
		return nil, err
	}
	env.Log.Info("bench realproject: npm install of the same set")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = npmDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("npm install: %v: %s", err, out)
	}
	npm := time.Since(start)

	return []Row{
		{What: "Lovable-style project: create until the page is served, cold dependency cache", Value: Ms(cold),
			Note: "Vite 5.4, plugin-react-swc 3, lovable-tagger, shadcn/ui, Tailwind 3; resolve + install + start, sandboxed"},
		{What: "Lovable-style project: create until the page is served, warm dependency cache", Value: Ms(ws.P50) + " p50",
			Ratio: Ratio(float64(ws.P50), float64(cold)) + " cold", Note: fmt.Sprintf("%d creates of the same package.json", len(warm))},
		{What: "Lovable-style project: npm install of the same package.json", Value: Ms(npm),
			Ratio: Ratio(float64(ws.P50), float64(npm)) + " (warm create / npm install)", Note: "empty directory, npm's download cache warm; no dev server started"},
	}, nil
}

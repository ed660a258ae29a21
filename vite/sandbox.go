package vite

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vitehost/vitehost/internal/runner"
	"github.com/vitehost/vitehost/sandbox"
)

// sandboxRunnerDir is where the runner's files are inside a sandbox: files
// of their own, whose content this process gives (no host path is
// mounted); sandboxRunner is the script among them.
const (
	sandboxRunnerDir = "/opt/vitehost"
	sandboxRunner    = sandboxRunnerDir + "/runner.mjs"
)

// checkSandbox validates Options.Sandbox against the project dir and puts
// the paths the runner gets into the sandbox's terms.
func checkSandbox(dir string, o *Options) error {
	sb := o.Sandbox
	if sb.Project != "" {
		p, err := filepath.Abs(sb.Project)
		if err != nil || p != dir {
			return fmt.Errorf("%w: Sandbox.Project %q is not the project directory %s", ErrInvalidOptions, sb.Project, dir)
		}
	}
	sb.Project = dir
	if o.ConfigFile != "" && filepath.IsAbs(o.ConfigFile) {
		rel, err := filepath.Rel(dir, o.ConfigFile)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%w: ConfigFile %s is outside the project, which is all the sandbox sees", ErrInvalidOptions, o.ConfigFile)
		}
		o.ConfigFile = path.Join(sandbox.ProjectDir, filepath.ToSlash(rel))
	}
	return nil
}

// sandboxHasVite reports whether the sandbox's dependencies, or the
// project's own node_modules, hold vite. The dependencies come first: they
// are the host's, while the project is the sandbox's to write.
func (l *launcher) sandboxHasVite() bool {
	if m := l.opts.Sandbox.Modules; m != "" {
		if _, err := os.Stat(filepath.Join(m, "vite", "package.json")); err == nil {
			return true
		}
	}
	_, ok := findPackage(l.dir, "vite")
	return ok
}

// sandboxCommand prepares the runner to run in the sandbox, with the
// listening sockets files as its descriptors 3 and 4.
func (l *launcher) sandboxCommand(ctx context.Context, files []*os.File) (*sandbox.Cmd, error) {
	cfg := *l.opts.Sandbox
	cfg.Files = append([]sandbox.File(nil), cfg.Files...)
	for _, f := range runner.Files() {
		cfg.Files = append(cfg.Files, sandbox.File{Path: path.Join(sandboxRunnerDir, f.Name), Data: f.Data})
	}
	// NODE_ENV first, so that the operator's Env may replace it.
	env := append([]string{"NODE_ENV=development"}, cfg.Env...)
	cfg.Env = append(env, l.opts.Env...)
	if cfg.Logger == nil {
		cfg.Logger = l.log
	}
	return cfg.Command(ctx, []string{l.opts.Node, sandboxRunner, sandbox.ProjectDir}, files...)
}

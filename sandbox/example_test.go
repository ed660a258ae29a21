package sandbox_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/vitehost/vitehost/sandbox"
)

// A command runs with a project of its own, read-write at /project, and a
// dependency install shared read-only at /node_modules; Close ends what it
// left running and removes its cgroup.
func ExampleConfig_Command() {
	c := sandbox.Config{
		Project: "/srv/previews/abc",
		Modules: "/srv/deps/3f2a9c/node_modules",
		Env:     []string{"NODE_ENV=development"},
		Limits:  sandbox.Limits{Memory: 512 << 20, Pids: 256},
		Name:    "abc",
	}
	cmd, err := c.Command(context.Background(), []string{"node", "-e", "console.log(process.cwd())"})
	if err != nil {
		log.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	if cerr := cmd.Close(); err == nil {
		err = cerr
	}
	if lerr := cmd.LimitErr(); lerr != nil {
		err = lerr // sandbox.ErrMemoryLimit or sandbox.ErrPidsLimit
	}
	if err != nil {
		log.Fatal(err)
	}
}

// A service checks at start that sandboxes can run, and says on its status
// page whether their limits are enforced.
func ExampleCgroupSupport() {
	if err := sandbox.Check(context.Background(), ""); err != nil {
		log.Fatal(err) // errors.Is(err, sandbox.ErrUnavailable)
	}
	cg, err := sandbox.CgroupSupport()
	if err != nil {
		log.Printf("sandboxes run without memory and process limits: %v", err)
	}
	fmt.Println("limits:", cg) // limits: cgroup v1 (memory, pids, cpu)
}

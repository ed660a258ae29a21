package preview_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
	"github.com/vitehost/vitehost/preview/storetest"
	"github.com/vitehost/vitehost/sandbox"
)

// nodeEnv holds, in the environment of a re-executed test binary, the JSON
// config of a preview node to run instead of the tests (see runTestNode).
const nodeEnv = "VITEHOST_TEST_NODE"

// testNode is the config of a node run in a process of its own, so that a
// test can stop it with SIGSTOP as an operator's machine might hang.
type testNode struct {
	Redis, NodeID, BaseDir, CacheDir, PublicURL string
	LeaseTTL, ForwardTimeout                    time.Duration
}

// runTestNode runs the node of $VITEHOST_TEST_NODE until SIGTERM and
// reports whether it did: TestMain then exits instead of running tests. The
// node prints its address on its first stdout line.
func runTestNode() bool {
	raw := os.Getenv(nodeEnv)
	if raw == "" {
		return false
	}
	var cfg testNode
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		panic(err)
	}
	store, err := redisstore.New(cfg.Redis, nil)
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	m, err := preview.New(&preview.Options{
		PublicURL: cfg.PublicURL, BaseDir: cfg.BaseDir, CacheDir: cfg.CacheDir, Store: store,
		NodeID: cfg.NodeID, NodeAddr: ln.Addr().String(), LeaseTTL: cfg.LeaseTTL, ForwardTimeout: cfg.ForwardTimeout,
		Sandbox: sandbox.Config{Env: []string{testenv.OwnerEnv()}},
		Spares:  -1, // the test counts the session's node processes
	})
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: m.Router(m.API())}
	go srv.Serve(ln)
	fmt.Println(ln.Addr().String())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	<-stop
	m.Close(context.Background())
	srv.Close()
	store.Close()
	return true
}

// startNodeProcess runs a node of the cluster on redis in a process of its
// own and returns its address and process.
func startNodeProcess(t *testing.T, redis *storetest.RedisServer, cfg testNode) (string, *os.Process) {
	t.Helper()
	cfg.Redis = redis.URL("", 0)
	cfg.BaseDir = testenv.TempDir(t)
	cfg.CacheDir = depsCache(t)
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(raw))
	cmd.Stderr = testenv.Writer(t)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	addr, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "the node process did not start")
	go io.Copy(io.Discard, out)
	return strings.TrimSpace(addr), cmd.Process
}

// TestFencingOfHungOwner hangs the node that runs a session (SIGSTOP: its
// port still accepts connections, nothing answers). Requests through the
// other node are served once the hung node's lease has run out: the other
// node takes the session over. The hung node is then resumed and sent an
// update at once: the update it acknowledges is not lost (the hung node's
// writes are fenced, and it hands the update to the new owner), and one
// dev server remains.
func TestFencingOfHungOwner(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	t.Cleanup(func() { assert.Empty(t, testenv.NodeProcesses(), "no node process outlives the nodes") })
	redis := storetest.Redis(t)
	const lease, forwardTimeout = 1500 * time.Millisecond, 2 * time.Second
	addrA, procA := startNodeProcess(t, redis, testNode{NodeID: "a", PublicURL: clusterPublic, LeaseTTL: lease, ForwardTimeout: forwardTimeout})
	store, err := redisstore.New(redis.URL("", 0), nil)
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	b := startNode(t, preview.Options{
		PublicURL: clusterPublic, NodeID: "b", Store: store, LeaseTTL: lease, ForwardTimeout: forwardTimeout,
	}, true)
	a := &service{addr: addrA, public: clusterPublic, client: clientFor(addrA)}

	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("v1 on A")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	status, app := b.get(t, created.PreviewURL+"/src/App.tsx")
	require.Equal(t, 200, status, "through B, forwarded to A: %s", app)
	assert.Contains(t, app, "v1 on A")
	require.Len(t, testenv.NodeProcesses(), 1)

	require.NoError(t, procA.Signal(syscall.SIGSTOP))
	hung := time.Now()
	require.Eventually(t, func() bool {
		status, app, err := b.tryGet(created.PreviewURL + "/src/App.tsx")
		return err == nil && status == 200 && strings.Contains(app, "v1 on A")
	}, wait, pollEvery, "B serves the session of the hung node")
	t.Logf("B served the hung node's session %v after the hang (lease %v, forward timeout %v)", time.Since(hung).Round(time.Millisecond), lease, forwardTimeout)
	assert.Equal(t, 1, b.m.NumSessions(), "B took the session over")

	status, upd := b.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("v2 on B")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)

	// Resume A and send it an update at once: it still holds its copy of
	// the session, and its lease has just run out.
	require.NoError(t, procA.Signal(syscall.SIGCONT))
	status, late := a.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("v3 sent to A after the takeover")}})
	t.Logf("A answered the late update with %d: %s", status, late.Raw)
	require.Contains(t, []int{200, 503}, status, "A applies the update through the new owner, or refuses it: %s", late.Raw)
	want := "v2 on B"
	if status == 200 {
		want = "v3 sent to A after the takeover" // acknowledged: it must not be lost
	}
	for _, n := range []*service{a, b} {
		require.Eventually(t, func() bool {
			status, app, err := n.tryGet(created.PreviewURL + "/src/App.tsx")
			return err == nil && status == 200 && strings.Contains(app, want)
		}, wait, pollEvery, "every node serves the last acknowledged update")
	}
	stored, err := store.LoadFiles(context.Background(), id)
	require.NoError(t, err)
	assert.Contains(t, string(stored["src/App.tsx"]), want, "the store holds it too")
	require.Eventually(t, func() bool { return len(testenv.NodeProcesses()) == 1 }, wait, pollEvery,
		"A stopped its copy: one dev server remains")
	rec, err := store.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, "b", rec.Owner)
	_, err = os.Stat(filepath.Join(b.base, "preview-"+id, "src", "App.tsx"))
	assert.NoError(t, err)
}

// clientFor returns an HTTP client that sends every host name to addr.
func clientFor(addr string) *http.Client {
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 2 * wait}
}

// TestUpdateDiskFailure makes the disk write of an update fail half way (a
// file where the update needs a directory): the client gets the error, and
// neither the disk nor the store holds any file of the update, so that a
// node that takes the session over later restores what the client was told
// had been written, and nothing else.
func TestUpdateDiskFailure(t *testing.T) {
	store := &preview.MemoryStore{}
	svc := startService(t, preview.Options{Store: store, NodeAddr: "127.0.0.1:9", NodeID: "a"})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("v1")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID

	status, resp := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{
		appTSX("v2 never written"),
		map[string]any{"name": "src/App.tsx/inside-a-file.ts", "content": "export {}"},
	}})
	// The client's own file stands where its new name needs a directory:
	// the client's to fix (400), found only when the write is under way.
	assert.Equal(t, 400, status, "body: %s", resp.Raw)
	assert.Equal(t, "bad_path", resp.Error.Code)
	assert.False(t, resp.Success)

	dir := filepath.Join(svc.base, "preview-"+id)
	onDisk, err := os.ReadFile(filepath.Join(dir, "src", "App.tsx"))
	require.NoError(t, err)
	assert.Contains(t, string(onDisk), "v1", "the disk keeps the old file")
	entries, err := os.ReadDir(filepath.Join(dir, "src"))
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".vitehost-tmp-", "no staged file is left")
	}
	stored, err := store.LoadFiles(context.Background(), id)
	require.NoError(t, err)
	assert.Contains(t, string(stored["src/App.tsx"]), "v1", "the store keeps the old file")
	assert.NotContains(t, stored, "src/App.tsx/inside-a-file.ts")

	status, upd := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("v3")}})
	require.Equal(t, 200, status, "the session still works: %s", upd.Raw)
	stored, err = store.LoadFiles(context.Background(), id)
	require.NoError(t, err)
	assert.Contains(t, string(stored["src/App.tsx"]), "v3")
}

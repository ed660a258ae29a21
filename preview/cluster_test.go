package preview_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
	"github.com/vitehost/vitehost/preview/storetest"
)

// clusterPublic is the public URL every node of a test cluster shares, as
// nodes behind one load balancer do. Nothing listens there: each node's
// client dials that node's own listener.
const clusterPublic = "http://localhost:8080"

// startCluster starts one node per name, each with its own listener, base
// directory and Redis client, all on redis.
func startCluster(t *testing.T, redis *storetest.RedisServer, names ...string) []*service {
	t.Helper()
	return startClusterWith(t, redis, preview.Options{}, names...)
}

// startClusterWith is startCluster with more options for every node. A nil
// redis makes the nodes share one MemoryStore instead (nodes in one
// process).
func startClusterWith(t *testing.T, redis *storetest.RedisServer, opts preview.Options, names ...string) []*service {
	t.Helper()
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	t.Cleanup(func() { assert.Empty(t, testenv.NodeProcesses(), "no node process outlives the nodes") })
	memory := &preview.MemoryStore{}
	nodes := make([]*service, 0, len(names))
	for _, name := range names {
		o := opts
		o.PublicURL, o.NodeID, o.Logger, o.Store = clusterPublic, name, testenv.Logger(t), memory
		if redis != nil {
			store, err := redisstore.New(redis.URL("", 0), &redisstore.Options{Logger: o.Logger})
			require.NoError(t, err)
			t.Cleanup(func() { store.Close() }) // after the node's Close
			o.Store = store
		}
		nodes = append(nodes, startNode(t, o, true))
	}
	return nodes
}

// tryGet is get for goroutines and Eventually conditions: it fails nothing.
func (s *service) tryGet(u string) (int, string, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Accept", "text/html,*/*")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// fileOf reads a file of session id in node n's base directory.
func fileOf(n *service, id, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(n.base, "preview-"+id, name))
	return string(b), err
}

// TestClusterForwarding creates a session on node A and uses it only
// through node B: the page, the HMR socket, status, an update that reaches
// the socket, and the delete that ends it on A.
func TestClusterForwarding(t *testing.T) {
	testenv.Short(t)
	redis := storetest.Redis(t)
	nodes := startCluster(t, redis, "a", "b")
	a, b := nodes[0], nodes[1]

	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("Hello from A")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	assert.Equal(t, 1, a.m.NumSessions(), "a create runs on the node that got it")
	assert.Equal(t, 0, b.m.NumSessions())

	status, page := b.get(t, created.PreviewURL+"/")
	require.Equal(t, 200, status, "page through B: %s", page)
	assert.Contains(t, page, `<div id="root">`)
	status, app := b.get(t, created.PreviewURL+"/src/App.tsx")
	require.Equal(t, 200, status)
	assert.Contains(t, app, "Hello from A")

	status, st := b.api(t, "GET", "/"+id, nil)
	require.Equal(t, 200, status, "body: %s", st.Raw)
	assert.Equal(t, "active", st.Status)
	assert.Equal(t, created.ExpiresAt, st.ExpiresAt)

	conn := b.hmrSocket(t, created)   // through B to A's Vite: "connected"
	stream := b.openEvents(t, id, "") // through B to A's event log
	assert.Equal(t, "installing", stream.next(t, ofType("status")).Data["status"])
	status, upd := b.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("Hello via B")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	e := stream.next(t, ofType("update"))
	assert.Equal(t, []any{"src/App.tsx"}, e.Data["updated"], "the stream forwarded by B goes on as it happens")
	assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
	assert.Equal(t, []string{"src/App.tsx"}, upd.Updated)
	msg := readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "update" })
	assert.Contains(t, fmt.Sprint(msg["updates"]), "/src/App.tsx", "the socket opened through B saw the update")
	onA, err := fileOf(a, id, "src/App.tsx")
	require.NoError(t, err)
	assert.Contains(t, onA, "Hello via B", "A wrote the file")

	// A create that names the session goes to its node as an update.
	status, again := b.api(t, "POST", "", map[string]any{"sessionId": id, "files": []any{appTSX("Hello again via B")}})
	require.Equal(t, 200, status, "body: %s", again.Raw)
	assert.Equal(t, id, again.SessionID)
	_, app = b.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Contains(t, app, "Hello again via B")
	assert.Equal(t, 0, b.m.NumSessions(), "B never ran the session")

	// A request that a node forwarded is never forwarded again.
	req, err := http.NewRequest("GET", created.PreviewURL+"/", nil)
	require.NoError(t, err)
	req.Header.Set(preview.ForwardedHeader, "a")
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "B does not run the session and does not forward twice")

	status, del := b.api(t, "DELETE", "/"+id, nil)
	require.Equal(t, 200, status, "body: %s", del.Raw)
	assert.Equal(t, "stopped", stream.next(t, ofType("status")).Data["status"])
	assert.Equal(t, 0, a.m.NumSessions(), "the delete through B ended the session on A")
	assert.NoDirExists(t, filepath.Join(a.base, "preview-"+id))
	assert.Empty(t, testenv.NodeProcesses(), "no node process after the delete")
	for _, n := range nodes {
		status, gone := n.api(t, "GET", "/"+id, nil)
		assert.Equal(t, 404, status, "body: %s", gone.Raw)
		status, _ = n.get(t, created.PreviewURL+"/")
		assert.Equal(t, 404, status)
	}
}

// TestClusterTakeover kills the node that runs a session: the next
// requests, on two other nodes at once, make exactly one of them take the
// session over from the files in Redis, with the latest update in them.
func TestClusterTakeover(t *testing.T) {
	testenv.Short(t)
	redis := storetest.Redis(t)
	nodes := startCluster(t, redis, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]

	notes := map[string]any{"name": "src/notes.txt", "content": "deleted later"}
	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("v1"), notes}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	status, upd := b.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("v2 before the crash")}, "delete": []string{"src/notes.txt"}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	require.Len(t, testenv.NodeProcesses(), 1)

	a.kill() // no clean-up: the record and files stay in Redis, naming A
	require.Empty(t, testenv.NodeProcesses())

	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, n := range []*service{b, c} {
		wg.Go(func() {
			<-start
			status, _, err := n.tryGet(created.PreviewURL + "/")
			if assert.NoError(t, err) {
				assert.Contains(t, []int{200, 503}, status, "the page, or the page that waits for it")
			}
		})
	}
	close(start)
	wg.Wait()

	for _, n := range []*service{b, c} {
		require.Eventually(t, func() bool {
			status, app, err := n.tryGet(created.PreviewURL + "/src/App.tsx")
			return err == nil && status == 200 && strings.Contains(app, "v2 before the crash")
		}, wait, pollEvery, "the page through every node, with the content of the last update")
	}
	assert.Equal(t, 1, b.m.NumSessions()+c.m.NumSessions(), "exactly one node took the session over")
	assert.Len(t, testenv.NodeProcesses(), 1, "exactly one Vite runs the session")

	winner, loser := b, c
	if c.m.NumSessions() == 1 {
		winner, loser = c, b
	}
	_, err := fileOf(winner, id, "src/notes.txt")
	assert.ErrorIs(t, err, os.ErrNotExist, "the deletion of the last update holds")
	require.Eventually(t, func() bool {
		_, body, err := loser.tryGet(clusterPublic + "/kontext/preview/" + id)
		return err == nil && strings.Contains(body, `"status":"active"`)
	}, wait, pollEvery, "the status says active once the new Vite is warm")
	status, st := loser.api(t, "GET", "/"+id, nil)
	require.Equal(t, 200, status, "body: %s", st.Raw)
	assert.Equal(t, created.ExpiresAt, st.ExpiresAt, "a takeover keeps the session's expiry")

	conn := loser.hmrSocket(t, created)
	status, upd = loser.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("v3 after the takeover")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
	readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "update" })
}

// TestClusterRedisRestart stops Redis under two nodes: each keeps serving
// the pages of the sessions it runs, the calls that need Redis answer 503
// "unavailable" and change nothing, and once Redis is back (empty) the
// nodes write their sessions into it again and everything works.
func TestClusterRedisRestart(t *testing.T) {
	testenv.Short(t)
	redis := storetest.Redis(t)
	nodes := startCluster(t, redis, "a", "b")
	a, b := nodes[0], nodes[1]

	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("before the restart")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	status, _ = b.get(t, created.PreviewURL+"/")
	require.Equal(t, 200, status)

	redis.Stop()

	status, app := a.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Equal(t, 200, status, "A serves its own session without Redis")
	assert.Contains(t, app, "before the restart")
	status, st := a.api(t, "GET", "/"+id, nil)
	assert.Equal(t, 200, status, "A answers the status of its own session without Redis: %s", st.Raw)

	unavailable := func(name string, status int, resp apiResponse) {
		t.Helper()
		assert.Equal(t, 503, status, "%s: %s", name, resp.Raw)
		if assert.NotNil(t, resp.Error, "%s: %s", name, resp.Raw) {
			assert.Equal(t, "unavailable", resp.Error.Code, name)
			assert.Contains(t, resp.Error.Message, "session store", name)
		}
	}
	status, resp := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("new")}})
	unavailable("create", status, resp)
	status, resp = a.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("lost")}})
	unavailable("update on the owner", status, resp)
	status, resp = b.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("lost")}})
	unavailable("update through B", status, resp)
	status, resp = b.api(t, "GET", "/"+id, nil)
	unavailable("status through B", status, resp)
	status, resp = a.api(t, "DELETE", "/"+id, nil)
	unavailable("delete", status, resp)
	onA, err := fileOf(a, id, "src/App.tsx")
	require.NoError(t, err)
	assert.Contains(t, onA, "before the restart", "a failed update writes nothing")
	assert.Equal(t, 1, a.m.NumSessions(), "a failed delete removes nothing")
	status, _ = b.get(t, created.PreviewURL+"/")
	assert.Equal(t, 503, status, "B cannot find the node of the session")

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, redis.Start(ctx))

	require.Eventually(t, func() bool {
		status, _, err := b.tryGet(clusterPublic + "/kontext/preview/" + id)
		return err == nil && status == 200
	}, wait, 100*time.Millisecond, "A writes the record of its session into the new Redis")
	conn := b.hmrSocket(t, created)
	status, upd := b.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("after the restart")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.True(t, upd.HMRTriggered)
	readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "update" })
	status, created2 := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("created after the restart")}})
	require.Equal(t, 200, status, "body: %s", created2.Raw)
	status, page := b.get(t, created2.PreviewURL+"/src/App.tsx")
	assert.Equal(t, 200, status)
	assert.Contains(t, page, "created after the restart")

	// The files went back into Redis too: a takeover now finds them all.
	a.kill()
	require.Eventually(t, func() bool {
		status, app, err := b.tryGet(created.PreviewURL + "/src/App.tsx")
		return err == nil && status == 200 && strings.Contains(app, "after the restart")
	}, wait, pollEvery)
	status, page = b.get(t, created.PreviewURL+"/")
	assert.Equal(t, 200, status)
	assert.Contains(t, page, `<div id="root">`, "the template's files were written back too")
}

// TestClusterQuotaAcrossTakeover checks that the session quotas hold over a
// session's life in both stores, and across a takeover: the node that takes
// the session over counts the files it restores, so that the files in the
// store never outgrow the quota.
func TestClusterQuotaAcrossTakeover(t *testing.T) {
	testenv.Short(t)
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			var redis *storetest.RedisServer
			if kind == "redis" {
				redis = storetest.Redis(t)
			}
			// The template gives 4 files in 1 directory (src).
			limits := preview.Limits{MaxSessionFiles: 6, MaxSessionDirs: 2}
			nodes := startClusterWith(t, redis, preview.Options{Limits: limits}, "a", "b")
			a, b := nodes[0], nodes[1]
			file := func(name string) map[string]any { return map[string]any{"name": name, "content": "export {}\n"} }
			status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("quota")}})
			require.Equal(t, 200, status, "body: %s", created.Raw)
			id := created.SessionID
			update := func(n *service, files []any, deletes ...string) (int, apiResponse) {
				return n.api(t, "POST", "/"+id+"/update", map[string]any{"files": files, "delete": deletes})
			}
			refused := func(limit string, status int, resp apiResponse) {
				t.Helper()
				assert.Equal(t, 413, status, "body: %s", resp.Raw)
				if assert.NotNil(t, resp.Error, "body: %s", resp.Raw) {
					assert.Equal(t, "quota_exceeded", resp.Error.Code)
					assert.Contains(t, string(resp.Raw), `"limit":"`+limit+`"`)
				}
			}
			status, resp := update(a, []any{file("src/a.ts")})
			require.Equal(t, 200, status, "5 files: body: %s", resp.Raw)
			status, resp = update(a, []any{file("src/b.ts"), file("src/c.ts")})
			refused("files", status, resp)

			a.kill() // b takes the session over from the store at its next request
			status, resp = update(b, []any{file("src/b.ts"), file("src/c.ts")})
			refused("files", status, resp)
			require.Equal(t, 1, b.m.NumSessions(), "b took the session over")
			status, resp = update(b, []any{file("src/b.ts")})
			require.Equal(t, 200, status, "6 files: body: %s", resp.Raw)
			status, resp = update(b, []any{file("lib/x.ts")})
			refused("files", status, resp)
			status, resp = update(b, []any{file("lib/x.ts")}, "src/a.ts")
			require.Equal(t, 200, status, "a file moved to a second directory: body: %s", resp.Raw)
			status, resp = update(b, []any{file("deep/er/y.ts")}, "src/b.ts")
			refused("directories", status, resp)
			status, resp = update(b, nil, "lib/x.ts")
			require.Equal(t, 200, status, "body: %s", resp.Raw)
			assert.NoDirExists(t, filepath.Join(b.base, "preview-"+id, "lib"), "a directory emptied by a delete goes")
			status, resp = update(b, []any{file("deep/y.ts")})
			require.Equal(t, 200, status, "lib's place is free again: body: %s", resp.Raw)

			var names []string
			filepath.WalkDir(filepath.Join(b.base, "preview-"+id), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() && !strings.Contains(p, "/.vite-cache/") && filepath.Base(p) != "package.json" {
					names = append(names, p)
				}
				return nil
			})
			assert.Len(t, names, 6, "the disk holds what the quota counted: %v", names)
		})
	}
}

// gatedGets is a MemoryStore whose reads of one session's record hang,
// once armed, until open is closed (held is closed when the first does).
type gatedGets struct {
	preview.MemoryStore
	held chan struct{}
	open chan struct{}

	mu    sync.Mutex
	armed string
	first bool
}

func (g *gatedGets) arm(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = id
}

func (g *gatedGets) Get(ctx context.Context, id string) (preview.Record, error) {
	g.mu.Lock()
	gate := id == g.armed
	if gate && !g.first {
		g.first = true
		close(g.held)
	}
	g.mu.Unlock()
	if gate {
		<-g.open
	}
	return g.MemoryStore.Get(ctx, id)
}

// TestClusterRecordCheckHeldAtTheStore: the node's check of a session's
// record (the janitor's) holds nothing of the session while the store
// answers: with that read hanging, the session takes an update and answers
// its status.
func TestClusterRecordCheckHeldAtTheStore(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	t.Cleanup(func() { assert.Empty(t, testenv.NodeProcesses(), "no node process outlives the node") })
	store := &gatedGets{held: make(chan struct{}), open: make(chan struct{})}
	a := startNode(t, preview.Options{PublicURL: clusterPublic, NodeID: "a", Store: store}, true)
	defer close(store.open) // before the node closes (the cleanup)

	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("checked")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	store.arm(id)
	select {
	case <-store.held:
	case <-time.After(wait):
		t.Fatal("the node never checked the session's record")
	}

	status, st := a.api(t, "GET", "/"+id, nil)
	require.Equal(t, 200, status, "body: %s", st.Raw)
	assert.Equal(t, string(preview.StatusActive), st.Status)
	conn := a.hmrSocket(t, created)
	status, upd := a.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("updated while checked")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
	readHMR(t, conn, func(m map[string]any) bool { return m["type"] == "update" })
	got, err := fileOf(a, id, "src/App.tsx")
	require.NoError(t, err)
	assert.Contains(t, got, "updated while checked")
}

package preview_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/storetest"
)

// TestHibernation lets a session sleep after a short IdleTimeout, three
// times, and wakes it each time another way: a page request, a vite-ping
// from an open tab, an update; each wake starts a runner of its own, or
// takes the spare runner when one is ready.
func TestHibernation(t *testing.T) {
	t.Run("fresh runners", func(t *testing.T) { testHibernation(t, -1) })
	t.Run("spare runners", func(t *testing.T) { testHibernation(t, 1) })
}

func testHibernation(t *testing.T, spares int) {
	svc := startService(t, preview.Options{IdleTimeout: time.Second, Spares: spares})
	if spares > 0 {
		// The template's optimized dependencies, which a spare needs.
		require.NoError(t, svc.m.Prepare(context.Background()))
	}
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("before the sleep")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	dir := filepath.Join(svc.base, "preview-"+id)
	conn := svc.hmrSocket(t, created) // sends nothing: it keeps nothing awake

	svc.awaitStatus(t, id, preview.StatusHibernated)
	conn.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break // the browser's HMR socket closed with the dev server
		}
	}
	assert.LessOrEqual(t, len(testenv.NodeProcesses()), max(spares, 0), "a hibernated session runs no process (a spare may wait)")
	assert.FileExists(t, filepath.Join(dir, "src", "App.tsx"), "its files stay")
	assert.FileExists(t, filepath.Join(dir, ".vite-cache", "deps", "_metadata.json"), "its optimized dependencies stay")
	assert.Equal(t, 1, svc.m.NumSessions())

	// A page request wakes it; the page comes back (a browser follows the
	// "starting" page, should the wake take longer than a navigation waits).
	status, page := svc.getUntilServed(t, created.PreviewURL+"/")
	require.Equal(t, 200, status)
	assert.Contains(t, page, "/@vite/client")
	status, app := svc.get(t, created.PreviewURL+"/src/App.tsx")
	require.Equal(t, 200, status)
	assert.Contains(t, app, "before the sleep")

	// A vite-ping, as an open tab's Vite client sends it after its socket
	// closed, wakes it and opens only once the dev server is back.
	svc.awaitStatus(t, id, preview.StatusHibernated)
	ping := *svc.dialer
	ping.Subprotocols = []string{"vite-ping"}
	pc, res, err := ping.Dial(created.WSURL, http.Header{"Origin": {created.PreviewURL}})
	require.NoError(t, err, "the ping opens once the dev server is back")
	res.Body.Close()
	pc.Close()
	_, st := svc.api(t, "GET", "/"+id, nil)
	assert.Contains(t, []string{"starting", "active"}, st.Status, "the ping opened on a running dev server")

	// An update wakes it and answers as for a running session.
	svc.awaitStatus(t, id, preview.StatusHibernated)
	status, upd := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("after the sleep")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	assert.True(t, upd.HMRTriggered, "body: %s", upd.Raw)
	assert.Equal(t, preview.HMRUpdate, upd.HMR.Type)
	_, app = svc.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Contains(t, app, "after the sleep")
}

// awaitStatus polls the status endpoint, which wakes nothing, until it
// reports want.
func (s *service) awaitStatus(t *testing.T, id string, want preview.Status) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, st := s.api(t, "GET", "/"+id, nil)
		return st.Status == string(want)
	}, wait, pollEvery, "session %s never %s", id, want)
}

// getUntilServed gets u as a browser's navigation does, following the
// "starting" page (a 503 that reloads itself) until the page is served.
func (s *service) getUntilServed(t *testing.T, u string) (int, string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		status, body := s.get(t, u)
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return status, body
		}
	}
}

// TestHibernatedSessionTakenOver lets a session of node A hibernate, then
// A dies: a page request at B wakes the session on B, from the files in
// the store.
func TestHibernatedSessionTakenOver(t *testing.T) {
	testenv.Short(t)
	nodes := startClusterWith(t, storetest.Redis(t), preview.Options{IdleTimeout: time.Second}, "a", "b")
	a, b := nodes[0], nodes[1]
	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("asleep on A")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID
	b.awaitStatus(t, id, preview.StatusHibernated) // B reads it through A
	require.Empty(t, testenv.NodeProcesses())

	a.kill() // the record and files stay in Redis, naming A
	require.Eventually(t, func() bool {
		status, app, err := b.tryGet(created.PreviewURL + "/src/App.tsx")
		return err == nil && status == 200 && strings.Contains(app, "asleep on A")
	}, wait, pollEvery, "B serves the session, woken from the files in the store")
	assert.Equal(t, 1, b.m.NumSessions())
}

// gatedHibernation is a MemoryStore that holds the first hibernated status
// any session stores until open is closed, as a store that hangs would
// (held is closed when it does); it keeps the statuses the held session
// stored, in order, and counts the writes that came without a deadline.
type gatedHibernation struct {
	preview.MemoryStore
	held chan struct{}
	open chan struct{}

	mu             sync.Mutex
	gated          string // the session held, once one is
	statuses       []preview.Status
	withoutTimeout int
}

func (g *gatedHibernation) Put(ctx context.Context, r preview.Record) error {
	g.mu.Lock()
	if _, ok := ctx.Deadline(); !ok {
		g.withoutTimeout++
	}
	gate := g.gated == "" && r.Status == preview.StatusHibernated
	if gate {
		g.gated = r.ID
	}
	if r.ID == g.gated {
		g.statuses = append(g.statuses, r.Status)
	}
	g.mu.Unlock()
	if gate {
		close(g.held)
		<-g.open
	}
	return g.MemoryStore.Put(ctx, r)
}

func (g *gatedHibernation) state() (gated string, statuses []preview.Status, withoutTimeout int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gated, slices.Clone(g.statuses), g.withoutTimeout
}

// TestHibernationHeldAtTheStore: a hibernation whose status write hangs at
// the store holds up neither a status request of its session nor another
// session's update; an update of the hibernating session waits for the
// hibernation to end, then wakes the session and applies as for a running
// one; and the store got every status with a deadline.
func TestHibernationHeldAtTheStore(t *testing.T) {
	store := &gatedHibernation{held: make(chan struct{}), open: make(chan struct{})}
	waking := make(chan struct{})
	log := slog.New(&onMessage{Handler: testenv.Logger(t).Handler(), msg: "vitehost/preview: waking the session", seen: waking, once: new(sync.Once)})
	svc := startService(t, preview.Options{IdleTimeout: time.Second, Store: store, Logger: log})
	opened := false
	openGate := func() {
		if !opened {
			opened = true
			close(store.open)
		}
	}
	defer openGate() // before the service closes (the cleanup)

	ids := map[string]string{}
	previews := map[string]string{}
	for _, text := range []string{"one", "two"} {
		status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX(text)}})
		require.Equal(t, 200, status, "body: %s", created.Raw)
		ids[created.SessionID] = text
		previews[created.SessionID] = created.PreviewURL
	}
	select {
	case <-store.held:
	case <-time.After(wait):
		t.Fatal("no session hibernated")
	}
	held, _, _ := store.state()
	var other string
	for id := range ids {
		if id != held {
			other = id
		}
	}
	require.NotEmpty(t, other)

	// The status of the held session answers: it says what the session
	// itself knows.
	status, st := svc.api(t, "GET", "/"+held, nil)
	require.Equal(t, 200, status, "body: %s", st.Raw)
	assert.Equal(t, string(preview.StatusHibernated), st.Status)

	// The other session takes an update (waking it, should it sleep too).
	status, upd := svc.api(t, "POST", "/"+other+"/update", map[string]any{"files": []any{appTSX("two, updated")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	_, app := svc.get(t, previews[other]+"/src/App.tsx")
	assert.Contains(t, app, "two, updated")

	// An update of the held session waits for its hibernation to end.
	type answer struct {
		status int
		resp   apiResponse
	}
	done := make(chan answer, 1)
	go func() {
		status, resp := svc.api(t, "POST", "/"+held+"/update", map[string]any{"files": []any{appTSX("one, updated")}})
		done <- answer{status, resp}
	}()
	select { // the update reached the session, which it wakes
	case <-waking:
	case <-time.After(wait):
		t.Fatal("the update did not wake the held session")
	}
	_, statuses, _ := store.state()
	require.Equal(t, preview.StatusHibernated, statuses[len(statuses)-1], "nothing is stored after the held status: %v", statuses)
	select {
	case a := <-done:
		t.Fatalf("the update answered while the hibernation was held: %d %s", a.status, a.resp.Raw)
	default:
	}
	openGate()
	a := <-done
	require.Equal(t, 200, a.status, "body: %s", a.resp.Raw)
	assert.True(t, a.resp.HMRTriggered, "body: %s", a.resp.Raw)
	_, app = svc.get(t, previews[held]+"/src/App.tsx")
	assert.Contains(t, app, "one, updated")

	_, statuses, withoutTimeout := store.state()
	i := slices.Index(statuses, preview.StatusHibernated)
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, []preview.Status{preview.StatusHibernated, preview.StatusStarting, preview.StatusActive}, statuses[i:min(i+3, len(statuses))],
		"the wake's statuses come after the hibernation's: %v", statuses)
	assert.Zero(t, withoutTimeout, "status writes without a deadline")
}

// onMessage is a log handler that closes seen, once, when a record with
// the message msg is logged.
type onMessage struct {
	slog.Handler
	msg  string
	seen chan struct{}
	once *sync.Once
}

func (h *onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h *onMessage) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithAttrs(attrs)
	return &c
}

func (h *onMessage) WithGroup(name string) slog.Handler {
	c := *h
	c.Handler = h.Handler.WithGroup(name)
	return &c
}

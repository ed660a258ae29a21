package preview_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
)

// seen is what a fake owner node received.
type seen struct {
	method, host, path, forwardedBy, auth, body string
}

// fakeOwner is a node that answers every request itself and records it.
func fakeOwner(t *testing.T) (addr string, requests func() []seen) {
	var (
		mu  sync.Mutex
		got []seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.Host, r.URL.Path, r.Header.Get(preview.ForwardedHeader), r.Header.Get("Authorization"), string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"success":true,"from":"owner"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), got...)
	}
}

// deadAddr is an address where nothing accepts connections.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// putRecord creates rec in store, as the node that owns it did, and returns
// its epoch.
func putRecord(t *testing.T, store preview.Store, rec preview.Record) int64 {
	t.Helper()
	epoch, ok, err := store.Claim(context.Background(), 0, rec)
	require.NoError(t, err)
	require.True(t, ok)
	return epoch
}

func clusterManager(t *testing.T, store preview.Store, id string) *preview.Manager {
	m, err := preview.New(&preview.Options{
		PublicURL: "http://localhost:8080", BaseDir: testenv.TempDir(t), Store: store, Token: "s3cret",
		NodeID: id, NodeAddr: "127.0.0.1:9", Logger: quietLogger(),
		InstallCommand: []string{"false"}, // nothing here may install
	})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func serve(h http.Handler, method, host, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = host
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Accept", "text/html")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestForwardToOwner checks what a node sends to the node that runs a
// session: every kind of request, with the preview host, the body and the
// client's token kept, marked as forwarded.
func TestForwardToOwner(t *testing.T) {
	store := &preview.MemoryStore{}
	addr, requests := fakeOwner(t)
	m := clusterManager(t, store, "b")
	h := m.Router(m.API())
	id := preview.NewID()
	putRecord(t, store, preview.Record{
		ID: id, Status: preview.StatusActive, Owner: "a", OwnerAddr: addr, ExpiresAt: time.Now().Add(time.Hour),
	})
	require.NoError(t, store.RenewLease(context.Background(), "a", time.Hour)) // node a is alive
	host := "preview-" + id + ".localhost:8080"

	body := `{"files":[{"name":"src/App.tsx","content":"x"}]}`
	for _, tt := range []struct{ method, host, path, body string }{
		{"GET", host, "/src/App.tsx", ""},
		{"POST", "localhost:8080", "/kontext/preview/" + id + "/update", body},
		{"GET", "localhost:8080", "/kontext/preview/" + id, ""},
		{"DELETE", "localhost:8080", "/kontext/preview/" + id, ""},
		{"POST", "localhost:8080", "/kontext/preview", `{"sessionId":"` + id + `","files":[]}`},
		// A body is decoded and checked where the session runs, once:
		// this node sends on what it would have refused.
		{"POST", "localhost:8080", "/kontext/preview/" + id + "/update", `{"files":[{"name":"../outside","content":"x"}]}`},
		{"POST", "localhost:8080", "/kontext/preview/" + id + "/update", `{"files":[`},
		{"POST", "localhost:8080", "/kontext/preview", `{"sessionId":"` + id + `","files":[{"name":"/etc/passwd","content":"x"}]}`},
	} {
		rec := serve(h, tt.method, tt.host, tt.path, tt.body)
		assert.Equal(t, 200, rec.Code, "%s %s: %s", tt.method, tt.path, rec.Body)
		assert.Contains(t, rec.Body.String(), `"from":"owner"`, "%s %s", tt.method, tt.path)
		got := requests()
		require.NotEmpty(t, got)
		last := got[len(got)-1]
		assert.Equal(t, seen{tt.method, tt.host, tt.path, "b", "Bearer s3cret", tt.body}, last)
	}
	assert.Equal(t, 0, m.NumSessions())

	// A forwarded request is never forwarded again.
	n := len(requests())
	req := httptest.NewRequest("GET", "/", nil)
	req.Host = host
	req.Header.Set(preview.ForwardedHeader, "c")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, 404, rec.Code)
	assert.Len(t, requests(), n)

	// An unknown session is not forwarded anywhere.
	rec = serve(h, "GET", "preview-"+preview.NewID()+".localhost:8080", "/", "")
	assert.Equal(t, 404, rec.Code)
	assert.Len(t, requests(), n)
}

// TestTakeoverWithoutFiles has the node of a session vanish when the store
// holds no files for it: the node that finds out claims the session, cannot
// start it, and removes it everywhere.
func TestTakeoverWithoutFiles(t *testing.T) {
	store := &preview.MemoryStore{}
	m := clusterManager(t, store, "b")
	h := m.Router(m.API())
	ctx := context.Background()
	for _, owner := range []struct{ name, id, addr string }{
		{"node gone", "a", deadAddr(t)},
		{"this node before a restart (same id)", "b", deadAddr(t)},
		{"this node before a restart (same address)", "x", "127.0.0.1:9"},
	} {
		t.Run(owner.name, func(t *testing.T) {
			id := preview.NewID()
			putRecord(t, store, preview.Record{ID: id, Owner: owner.id, OwnerAddr: owner.addr, ExpiresAt: time.Now().Add(time.Hour)})
			rec := serve(h, "GET", "preview-"+id+".localhost:8080", "/", "")
			assert.Equal(t, 404, rec.Code, "body: %s", rec.Body)
			_, err := store.Get(ctx, id)
			assert.ErrorIs(t, err, preview.ErrNotFound, "the session that cannot come back is removed")
			assert.Equal(t, 0, m.NumSessions())
		})
	}
	assert.Empty(t, testenv.Processes())
}

// TestDeleteOfLostSession deletes a session whose node is gone: the node
// claims the record and removes it with the files, without starting it.
func TestDeleteOfLostSession(t *testing.T) {
	store := &preview.MemoryStore{}
	m := clusterManager(t, store, "b")
	api := m.API()
	ctx := context.Background()
	id := preview.NewID()
	expires := time.Now().Add(time.Hour)
	epoch := putRecord(t, store, preview.Record{ID: id, Owner: "a", OwnerAddr: deadAddr(t), ExpiresAt: expires})
	require.NoError(t, store.SaveFiles(ctx, id, epoch, map[string][]byte{"package.json": []byte(`{}`), "index.html": nil}, nil))

	status, resp := call(t, api, "DELETE", "/kontext/preview/"+id, "s3cret", nil)
	assert.Equal(t, 200, status, "body: %s", resp.Raw)
	_, err := store.Get(ctx, id)
	assert.ErrorIs(t, err, preview.ErrNotFound)
	_, err = store.LoadFiles(ctx, id)
	assert.ErrorIs(t, err, preview.ErrNotFound)
	assert.Equal(t, 0, m.NumSessions())
	assert.Empty(t, testenv.Processes(), "nothing was started for a delete")
}

// failingStore is a store that cannot be reached.
type failingStore struct{ preview.MemoryStore }

var errDown = errors.Join(preview.ErrUnavailable, errors.New("dial tcp 10.0.0.5:6379: connection refused"))

func (*failingStore) Get(context.Context, string) (preview.Record, error) {
	return preview.Record{}, errDown
}

func (*failingStore) Claim(context.Context, int64, preview.Record) (int64, bool, error) {
	return 0, false, errDown
}

// TestStoreUnavailable checks the answers of a node whose store cannot be
// reached: 503 "unavailable" without the internal cause, for the API and
// the preview pages alike.
func TestStoreUnavailable(t *testing.T) {
	m := clusterManager(t, &failingStore{}, "b")
	h := m.Router(m.API())
	id := preview.NewID()
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/kontext/preview", `{"files":[]}`},
		{"POST", "/kontext/preview/" + id + "/update", `{"files":[]}`},
		{"GET", "/kontext/preview/" + id, ""},
		{"DELETE", "/kontext/preview/" + id, ""},
	} {
		status, resp := call(t, h, tt.method, tt.path, "s3cret", tt.body)
		assert.Equal(t, 503, status, "%s %s: %s", tt.method, tt.path, resp.Raw)
		if assert.NotNil(t, resp.Error) {
			assert.Equal(t, "unavailable", resp.Error.Code)
			assert.Contains(t, resp.Error.Message, "session store")
			assert.NotContains(t, resp.Error.Message, "10.0.0.5", "the cause is for the log")
		}
	}
	rec := serve(h, "GET", "preview-"+id+".localhost:8080", "/", "")
	assert.Equal(t, 503, rec.Code)
	assert.Contains(t, rec.Body.String(), "session store")
	assert.Empty(t, testenv.Processes())
}

// TestForwardFailures checks what becomes of a request whose session's node
// cannot serve it: a node that is gone (nothing listens, or it answers as a
// closing node does), a node that hangs until its lease runs out, is
// counted dead and its session is handled here (a delete removes the
// record); a node that hangs while its lease lives is 503 "unavailable";
// a node that breaks the connection is 502.
func TestForwardFailures(t *testing.T) {
	closing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Vitehost-Closed", "1") // a Manager that is closing
		http.Error(w, "the service is shutting down", http.StatusServiceUnavailable)
	}))
	defer closing.Close()
	hung := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
		}
	}))
	defer silent.Close()
	defer close(hung)
	breaking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	}))
	defer breaking.Close()

	for _, tt := range []struct {
		name, addr string
		lease      time.Duration // of the node that owns the session
		status     int
		code       string // of an API error
		removed    bool   // the delete removed the record
	}{
		{name: "nothing listens", addr: deadAddr(t), lease: time.Hour, status: 200, removed: true},
		{name: "closing", addr: closing.Listener.Addr().String(), lease: time.Hour, status: 200, removed: true},
		{name: "hangs until its lease ends", addr: silent.Listener.Addr().String(), lease: time.Second, status: 200, removed: true},
		{name: "hangs with a live lease", addr: silent.Listener.Addr().String(), lease: time.Hour, status: 503, code: "unavailable"},
		{name: "breaks the connection", addr: breaking.Listener.Addr().String(), lease: time.Hour, status: 502},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &preview.MemoryStore{}
			m, err := preview.New(&preview.Options{
				PublicURL: "http://localhost:8080", BaseDir: testenv.TempDir(t), Store: store, Token: "s3cret",
				NodeID: "b", NodeAddr: "127.0.0.1:9", Logger: quietLogger(),
				InstallCommand: []string{"false"},
				ForwardTimeout: 100 * time.Millisecond, LeaseTTL: 3 * time.Second, // awaits a lease end 3 s at most
			})
			require.NoError(t, err)
			defer m.Close(context.Background())
			ctx := context.Background()
			id := preview.NewID()
			putRecord(t, store, preview.Record{ID: id, Owner: "a", OwnerAddr: tt.addr, ExpiresAt: time.Now().Add(time.Hour)})
			require.NoError(t, store.RenewLease(ctx, "a", tt.lease))

			rec := serve(m.API(), "DELETE", "localhost:8080", "/kontext/preview/"+id, "")
			assert.Equal(t, tt.status, rec.Code, "body: %s", rec.Body)
			if tt.code != "" {
				assert.Contains(t, rec.Body.String(), `"code":"`+tt.code+`"`)
			}
			if tt.status == 502 {
				assert.Contains(t, rec.Body.String(), "the session's node failed")
				assert.NotContains(t, rec.Body.String(), tt.addr, "the node's address is for the log")
			}
			_, err = store.Get(ctx, id)
			if tt.removed {
				assert.ErrorIs(t, err, preview.ErrNotFound, "the record of the dead node's session is gone")
			} else {
				assert.NoError(t, err, "the record stays")
			}
			assert.Equal(t, 0, m.NumSessions())
		})
	}
}

// TestForwardWebSocket opens a WebSocket to a preview through the node that
// does not run it: the other node's 101 reaches the client, bytes go both
// ways through the tunnel, and the node's Close ends the tunnel.
func TestForwardWebSocket(t *testing.T) {
	got := make(chan http.Header, 1)
	owner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: vite-hmr\r\n\r\n")
		io.Copy(c, rw) // echo
	}))
	defer owner.Close()

	store := &preview.MemoryStore{}
	m := clusterManager(t, store, "b")
	id := preview.NewID()
	putRecord(t, store, preview.Record{ID: id, Status: preview.StatusActive, Owner: "a", OwnerAddr: owner.Listener.Addr().String(), ExpiresAt: time.Now().Add(time.Hour)})
	require.NoError(t, store.RenewLease(context.Background(), "a", time.Hour))
	node := httptest.NewServer(m.Router(nil))
	defer node.Close()

	c, err := net.Dial("tcp", node.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	io.WriteString(c, "GET /hmr?token=t HTTP/1.1\r\nHost: preview-"+id+".localhost:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: vite-hmr\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	assert.Equal(t, 101, res.StatusCode)
	assert.Equal(t, "vite-hmr", res.Header.Get("Sec-WebSocket-Protocol"))
	h := <-got
	assert.Equal(t, "b", h.Get(preview.ForwardedHeader))
	assert.Equal(t, "websocket", h.Get("Upgrade"))

	io.WriteString(c, "through the tunnel\n")
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "through the tunnel\n", line)

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(t, m.Close(ctx), "Close ends the tunnel and waits for it")
	_, err = br.ReadString('\n')
	assert.ErrorIs(t, err, io.EOF, "the client's side of the tunnel is closed")
}

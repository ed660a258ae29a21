package preview_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview/storetest"
)

// closedMarkConfig is a project's vite.config.ts whose dev server answers
// /closed-mark as a closing node would: 503 with the marks that nodes read
// from one another.
const closedMarkConfig = `export default defineConfig({ plugins: [react(), {
  name: 'closed-mark',
  configureServer(server) {
    server.middlewares.use((req, res, next) => {
      if (!req.url || !req.url.startsWith('/closed-mark')) return next()
      res.statusCode = 503
      res.setHeader('X-Vitehost-Closed', '1')
      res.setHeader('X-Vitehost-Forwarded', 'tenant')
      res.end('closing')
    })
  },
}] })`

// TestHostileClosedMark: a tenant's dev server that answers with the mark of
// a node that is closing cannot make another node take the session over
// from its live owner (with the mark, the forwarding node claimed it at
// once, fencing the owner), and no answer of a dev server carries the
// service's headers.
func TestHostileClosedMark(t *testing.T) {
	testenv.Short(t)
	testenv.LookPath(t, "bwrap")
	redis := storetest.Redis(t)
	nodes := startCluster(t, redis, "a", "b")
	a, b := nodes[0], nodes[1]

	status, created := a.api(t, "POST", "", map[string]any{"files": []any{appTSX("Owned by A"), configTS(closedMarkConfig)}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID

	get := func(n *service) *http.Response {
		req, err := http.NewRequest("GET", created.PreviewURL+"/closed-mark", nil)
		require.NoError(t, err)
		res, err := n.client.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	res := get(a)
	require.Equal(t, 503, res.StatusCode, "the tenant's middleware answers on the owner")
	for k := range res.Header {
		assert.False(t, strings.HasPrefix(k, "X-Vitehost-"), "a dev server's answer carries %s", k)
	}
	for range 3 {
		res := get(b)
		assert.Equal(t, 503, res.StatusCode, "B relays the dev server's answer")
		assert.Empty(t, res.Header.Get("X-Vitehost-Closed"))
	}
	assert.Equal(t, 1, a.m.NumSessions(), "A still runs the session")
	assert.Equal(t, 0, b.m.NumSessions(), "B took nothing over")

	// The session still works from both nodes: A was not fenced.
	status, upd := b.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("Still A")}})
	require.Equal(t, 200, status, "body: %s", upd.Raw)
	onA, err := fileOf(a, id, "src/App.tsx")
	require.NoError(t, err)
	assert.Contains(t, onA, "Still A")
	status, st := a.api(t, "GET", "/"+id, nil)
	require.Equal(t, 200, status, "body: %s", st.Raw)
	assert.Equal(t, "active", st.Status)
}

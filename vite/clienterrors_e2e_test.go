package vite_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/vite"
)

// TestClientErrorsPerSocket floods runtime error reports on one HMR socket:
// it gets its own burst through, far from all of them, and a report that a
// page sends on another socket meanwhile still arrives (issue 19, finding
// 7: one socket used to use up a budget that every page shared).
func TestClientErrorsPerSocket(t *testing.T) {
	testenv.Short(t)
	dir := testenv.Fixture(t, "vite8-react")
	evs := newEvents()
	s := start(t, dir, &vite.Options{ClientErrors: true, OnEvent: evs.add})
	tg := s.Targets()
	report := func(message string) []byte {
		b, err := json.Marshal(map[string]any{"type": "custom", "event": "vitehost:error", "data": map[string]any{
			"kind": "error", "message": message, "page": tg.HTTP.String() + "/",
		}})
		require.NoError(t, err)
		return b
	}

	// One socket floods without pause while a page's report comes in.
	flooder := dialHMR(t, tg.HMR, "/", s.Token())
	stop := make(chan struct{})
	sent := make(chan int, 1)
	flooding := make(chan struct{}) // closed once 300 reports are out
	go func() {
		n := 0
		defer func() { sent <- n }()
		for {
			if n == 300 {
				close(flooding)
			}
			select {
			case <-stop:
				return
			default:
			}
			if flooder.conn.WriteMessage(1, report(fmt.Sprintf("flood %d", n))) != nil {
				return
			}
			n++
		}
	}()
	evs.wait(t, func(e vite.Event) bool { return e.Type == vite.EventClientError && e.Client.Message == "flood 29" })
	select {
	case <-flooding:
	case n := <-sent:
		t.Fatalf("the flooding socket failed after %d reports", n)
	}
	page := dialHMR(t, tg.HMR, "/", s.Token())
	require.NoError(t, page.conn.WriteMessage(1, report("the page's own")))
	evs.wait(t, func(e vite.Event) bool {
		return e.Type == vite.EventClientError && e.Client.Message == "the page's own"
	})
	close(stop)
	n := <-sent
	require.NoError(t, page.conn.WriteMessage(1, report("done")))
	evs.wait(t, func(e vite.Event) bool { return e.Type == vite.EventClientError && e.Client.Message == "done" })

	flooded := 0
	for _, e := range evs.all() {
		if e.Type == vite.EventClientError && strings.HasPrefix(e.Client.Message, "flood ") {
			flooded++
		}
	}
	t.Logf("%d of %d flooded reports passed", flooded, n)
	assert.Less(t, flooded, n/2, "a socket that floods is limited")
}

package preview_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// sseEvent is one Server-Sent Event of a session's stream.
type sseEvent struct {
	ID   string
	Type string
	Data map[string]any
}

// sseStream reads a session's event stream in a goroutine.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	done   chan struct{} // closed when the stream has ended
}

// openEvents opens session id's event stream through s's listener, with
// lastID as Last-Event-ID unless it is "".
func (s *service) openEvents(t *testing.T, id, lastID string) *sseStream {
	t.Helper()
	req, err := http.NewRequest("GET", s.public+"/kontext/preview/"+id+"/events", nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// The client's Timeout would cut the stream: this client has none.
	client := &http.Client{Transport: s.client.Transport}
	resp, err := client.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	st := &sseStream{resp: resp, events: make(chan sseEvent, 4096), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.Type != "" {
					st.events <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				e.Type = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e.Data)
			}
		}
	}()
	t.Cleanup(st.close)
	return st
}

func (st *sseStream) close() {
	st.resp.Body.Close()
	<-st.done
}

// next returns the next event that match accepts, skipping the others.
func (st *sseStream) next(t *testing.T, match func(sseEvent) bool) sseEvent {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e := <-st.events:
			if match(e) {
				return e
			}
		case <-st.done:
			select {
			case e := <-st.events:
				if match(e) {
					return e
				}
				continue
			default:
			}
			t.Fatal("the stream ended")
		case <-deadline:
			t.Fatal("no such event on the stream")
		}
	}
}

func ofType(typ string) func(sseEvent) bool {
	return func(e sseEvent) bool { return e.Type == typ }
}

// TestEventStream follows a session's event stream: its start, an update
// whose new module does not compile (in the answer and in the stream), a
// reconnect with Last-Event-ID that replays only what was missed, and the
// delete that ends the stream.
func TestEventStream(t *testing.T) {
	svc := startService(t, preview.Options{})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("Hello events")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	id := created.SessionID

	first := svc.openEvents(t, id, "")
	for _, want := range []string{"installing", "starting", "active"} {
		e := first.next(t, ofType("status"))
		assert.Equal(t, want, e.Data["status"], "the buffer replays the start")
		assert.Positive(t, e.Data["time"])
	}

	// A new module that does not compile, imported by the edited App.
	app := map[string]any{"name": "src/App.tsx", "content": "import Broken from './Broken'\n\nexport default function App() {\n  return <main><Broken /></main>\n}\n"}
	broken := map[string]any{"name": "src/Broken.tsx", "content": "export default function Broken() {\n  return <p>oops\n}\n"}
	status, bad := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{app, broken}})
	require.Equal(t, 200, status, "body: %s", bad.Raw)
	require.NotNil(t, bad.HMR.Error, "the answer has the error of the module the page never loaded: %s", bad.Raw)
	assert.Equal(t, "src/Broken.tsx", bad.HMR.Error.File)
	assert.Positive(t, bad.HMR.Error.Line)
	assert.Equal(t, preview.HMRUpdate, bad.HMR.Type)

	var logged bool
	upd := first.next(t, func(e sseEvent) bool {
		if line, _ := e.Data["line"].(string); e.Type == "log" && strings.Contains(line, "hmr update") {
			logged = e.Data["stream"] == "stdout"
		}
		return e.Type == "update"
	})
	assert.True(t, logged, "Vite's own output is in the stream")
	assert.Equal(t, []any{"src/App.tsx", "src/Broken.tsx"}, upd.Data["updated"])
	hmr, _ := upd.Data["hmr"].(map[string]any)
	assert.Equal(t, "update", hmr["type"])
	ce := first.next(t, ofType("compile-error"))
	assert.Equal(t, "src/Broken.tsx", ce.Data["file"])
	assert.Positive(t, ce.Data["line"])
	first.close()

	// Missed while away: the fix. A reconnect gets it, and nothing older.
	status, fixed := svc.api(t, "POST", "/"+id+"/update", map[string]any{"files": []any{appTSX("Fixed")}, "delete": []string{"src/Broken.tsx"}})
	require.Equal(t, 200, status, "body: %s", fixed.Raw)
	assert.Nil(t, fixed.HMR.Error)
	again := svc.openEvents(t, id, ce.ID)
	e := again.next(t, func(e sseEvent) bool { return e.Type != "log" })
	assert.Equal(t, "update", e.Type, "the first event after the last one seen: %+v", e)
	assert.Equal(t, []any{"src/Broken.tsx"}, e.Data["deleted"])
	seen, err := strconv.ParseUint(ce.ID, 10, 64)
	require.NoError(t, err)
	next, err := strconv.ParseUint(e.ID, 10, 64)
	require.NoError(t, err)
	assert.Greater(t, next, seen)

	// The delete ends the stream, with the reason.
	status, _ = svc.api(t, "DELETE", "/"+id, nil)
	require.Equal(t, 200, status)
	e = again.next(t, ofType("status"))
	assert.Equal(t, "stopped", e.Data["status"])
	assert.Equal(t, "deleted", e.Data["reason"])
	select {
	case <-again.done:
	case <-time.After(wait):
		t.Fatal("the stream goes on after the delete")
	}
}

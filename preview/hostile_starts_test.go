package preview_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// TestHangingStartsHoldNoPlace attacks the admission of starts (starts.go,
// as many at once as there are cores): a tenant fills every place with
// sessions whose vite.config never returns, and another tenant's create
// must still be served while those starts hang, since a start keeps its
// place for a bounded time, not until it serves.
func TestHangingStartsHoldNoPlace(t *testing.T) {
	svc := startService(t, preview.Options{})
	hang := map[string]any{"name": "vite.config.ts", "content": "console.log('vitehost-test: config hangs')\nexport default new Promise(() => {})\n"}
	n := runtime.NumCPU()
	hung := make(chan int, n)
	ids := make([]string, n)
	for i := range n {
		ids[i] = preview.NewID()
		go func() {
			hung <- svc.tryCreate(map[string]any{"sessionId": ids[i], "files": []any{appTSX(fmt.Sprint("hangs ", i)), hang}}).status
		}()
	}
	// Each hanging start is under way, past its admission: its config ran.
	for _, id := range ids {
		require.Eventually(t, func() bool { return svc.status(id).Status == string(preview.StatusStarting) }, wait, pollEvery)
		events := svc.openEvents(t, id, "")
		events.next(t, func(e sseEvent) bool {
			line, _ := e.Data["line"].(string)
			return e.Type == "log" && strings.Contains(line, "vitehost-test: config hangs")
		})
	}

	status, other := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("served beside hanging starts")}})
	require.Equal(t, 200, status, "body: %s", other.Raw)
	select {
	case s := <-hung:
		t.Fatalf("a hanging create ended (%d) before the other was served: the other waited for the hanging starts", s)
	default:
	}
	code, app := svc.get(t, other.PreviewURL+"/src/App.tsx")
	assert.Equal(t, 200, code)
	assert.Contains(t, app, "served beside hanging starts")
	for _, id := range ids {
		svc.api(t, "DELETE", "/"+id, nil)
	}
	for range n {
		<-hung
	}
}

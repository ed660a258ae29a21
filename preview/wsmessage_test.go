package preview_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/preview"
)

// TestMaxWebSocketMessage lowers Limits.MaxWebSocketMessage to 4 KiB: a
// runtime error report one byte over it closes its socket with 1009 and
// never reaches Vite, while one of exactly 4 KiB on the page's socket does
// (issue 19).
func TestMaxWebSocketMessage(t *testing.T) {
	const bound = 4 << 10
	svc := startService(t, preview.Options{Limits: preview.Limits{MaxWebSocketMessage: bound}})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("Hello bound")}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	page := svc.hmrSocket(t, created)
	stream := svc.openEvents(t, created.SessionID, "")

	// report returns a report Vite would pass on, its last value padded
	// with JSON whitespace to n bytes.
	report := func(message string, n int) []byte {
		b, err := json.Marshal(map[string]any{"type": "custom", "event": "vitehost:error", "data": map[string]any{"kind": "error", "message": message, "page": created.PreviewURL + "/"}})
		require.NoError(t, err)
		require.Less(t, len(b), n)
		return []byte(strings.TrimSuffix(string(b), "}") + strings.Repeat(" ", n-len(b)) + "}")
	}

	over := svc.attackSocket(t, created)
	require.NoError(t, over.WriteMessage(websocket.TextMessage, report("OVER-THE-BOUND", bound+1)))
	assert.Equal(t, websocket.CloseMessageTooBig, closeCode(t, over))

	require.NoError(t, page.WriteMessage(websocket.TextMessage, report("AT-THE-BOUND", bound)))
	e := stream.next(t, func(e sseEvent) bool { return e.Type == "runtime-error" })
	assert.Equal(t, "AT-THE-BOUND", e.Data["message"], "the first report to reach Vite is the one at the bound")
}

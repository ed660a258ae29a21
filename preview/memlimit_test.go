package preview_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/sandbox"
)

// lateHog is a vite.config.ts body whose dev server starts and serves,
// and then allocates without end: a project that needs more memory than
// its session's limit, at every start.
const lateHog = `const hog: Buffer[] = []
const later = { name: 'late-hog', configureServer() { setTimeout(() => { for (;;) hog.push(Buffer.alloc(8 << 20, 1)) }, 2000) } }
export default defineConfig({ plugins: [react(), later] })`

// TestMemoryLimitRestarts runs a session whose dev server is killed at its
// memory limit at every run: the event stream says so at each kill
// (status restarting, code memory_limit), and after a few runs the session
// is in error with code memory_limit and a message that names the limit,
// instead of restarting forever under an active status.
func TestMemoryLimitRestarts(t *testing.T) {
	testenv.LookPath(t, "bwrap")
	if _, err := sandbox.CgroupSupport(); err != nil {
		testenv.Missing(t, err.Error())
	}
	opts := preview.Options{}
	opts.Sandbox.Limits.Memory = 384 << 20
	svc := startService(t, opts)
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("hog"), configTS(lateHog)}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	events := svc.openEvents(t, created.SessionID, "")
	defer events.close()

	isStatus := func(st string) func(sseEvent) bool {
		return func(e sseEvent) bool { return e.Type == "status" && e.Data["status"] == st }
	}
	kill := events.next(t, isStatus("restarting"))
	assert.Equal(t, preview.CodeMemoryLimit, kill.Data["code"], "%v", kill.Data)
	assert.Contains(t, kill.Data["error"], "memory limit (384 MiB)")
	final := events.next(t, isStatus("error"))
	assert.Equal(t, preview.CodeMemoryLimit, final.Data["code"], "%v", final.Data)
	assert.Contains(t, final.Data["error"], "memory limit (384 MiB)")

	var st struct {
		Status       string `json:"status"`
		ErrorMessage string `json:"errorMessage"`
		ErrorCode    string `json:"errorCode"`
	}
	s := svc.status(created.SessionID)
	require.NoError(t, json.Unmarshal(s.raw, &st), "%s", s.raw)
	assert.Equal(t, "error", st.Status, "%s", s.raw)
	assert.Equal(t, preview.CodeMemoryLimit, st.ErrorCode, "%s", s.raw)
	assert.NotContains(t, st.ErrorMessage, "vitehost/", "no Go internals: %s", s.raw)
}

// crashOnce is a vite.config.ts body whose dev server exits two seconds
// after its first start (a file in the project remembers it), and runs
// after that.
const crashOnce = `import { existsSync, writeFileSync } from 'node:fs'
const once = { name: 'crash-once', configureServer() {
  if (existsSync('crashed-once')) return
  setTimeout(() => { writeFileSync('crashed-once', 'x'); process.exit(1) }, 2000)
} }
export default defineConfig({ plugins: [react(), once] })`

// TestCrashRestarting: a session whose dev server crashes says restarting
// in its status and its event stream until the dev server is back, then
// active again, and serves its page.
func TestCrashRestarting(t *testing.T) {
	testenv.LookPath(t, "bwrap")
	svc := startService(t, preview.Options{})
	status, created := svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("crash once"), configTS(crashOnce)}})
	require.Equal(t, 200, status, "body: %s", created.Raw)
	events := svc.openEvents(t, created.SessionID, "")
	defer events.close()
	isStatus := func(st string) func(sseEvent) bool {
		return func(e sseEvent) bool { return e.Type == "status" && e.Data["status"] == st }
	}
	down := events.next(t, isStatus("restarting"))
	assert.Contains(t, down.Data["error"], "the dev server crashed; restarting it")
	assert.Nil(t, down.Data["code"], "not a limit")
	events.next(t, isStatus("active"))
	assert.Equal(t, "active", svc.status(created.SessionID).Status)
	code, page := svc.get(t, created.PreviewURL+"/src/App.tsx")
	assert.Equal(t, 200, code)
	assert.Contains(t, page, "crash once")
}

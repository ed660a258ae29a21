package preview_test

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// forkBomb is the body of a vite.config.ts that starts a fork bomb, bounded
// so that a host without a process limit survives it: 2^13 shells at most,
// the last ones sleeping for five minutes.
const forkBomb = `import { spawn } from 'node:child_process'
spawn('sh', ['-c', 'b() { if [ "$1" -gt 0 ]; then b $(($1 - 1)) & b $(($1 - 1)) & wait; else sleep 300; fi; }; b 12'], { stdio: 'ignore' })
`

// memoryHog is the body of a vite.config.ts that fills 4 GiB, four times
// the sandbox's default limit, and holds it, bounded so that a host
// without a memory limit survives it.
const memoryHog = `const hog: Buffer[] = []
for (let i = 0; i < 4096; i++) hog.push(Buffer.alloc(1 << 20, 1))
;(globalThis as any).hog = hog
`

// TestHostileLimits runs a fork bomb and a memory hog in a tenant's
// vite.config: the session fails alone, with a status and an error that
// say which limit it hit, and the session of another tenant, created
// before, keeps serving its page and its HMR updates meanwhile and after.
func TestHostileLimits(t *testing.T) {
	h := startHostile(t)
	ev := &evidence{}
	stillServes := bystander(t, h.svc, ev)
	stillServes(t, "before")

	tests := []struct {
		name, body string
		says       string // what the error must mention
	}{
		{"fork bomb", forkBomb, `(?i)process|pids|fork`},
		{"memory hog", memoryHog, `(?i)memory|oom`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := []any{appTSX(tt.name), configTS(tt.body + "\nexport default defineConfig({ plugins: [react()] })")}
			created := make(chan createResult, 1)
			go func() { created <- h.svc.tryCreate(map[string]any{"files": files}) }()
			stillServes(t, "while the hostile session starts")
			res := <-created
			require.NoError(t, res.err, "the create answers within the client's deadline")
			ev.add("API POST (hostile create)", string(res.raw))
			msg := res.resp.Error.message()
			if res.status == 200 {
				id := res.resp.SessionID
				t.Cleanup(func() { h.svc.api(t, "DELETE", "/"+id, nil) })
				var st sessionStatus
				require.Eventually(t, func() bool {
					st = h.svc.status(id)
					return st.Status == "error" || st.Status == "" // failed, or gone
				}, 2*wait, pollEvery, "the hostile session fails within a bound")
				ev.add("API GET (hostile status)", string(st.raw))
				msg = st.ErrorMessage + st.Error.message()
			}
			t.Logf("%s: %s", tt.name, msg)
			assert.Regexp(t, tt.says, msg, "the error says which limit the session hit")
			stillServes(t, "after the hostile session failed")
		})
	}
	ev.assertClean(t, h.all())
}

// createResult is a create's answer, for a create made in a goroutine.
type createResult struct {
	status int
	resp   apiResponse
	raw    []byte
	err    error
}

// tryCreate is a create that fails nothing: goroutines may call it.
func (s *service) tryCreate(body any) createResult {
	b, err := json.Marshal(body)
	if err != nil {
		return createResult{err: err}
	}
	resp, err := s.client.Post(s.public+"/kontext/preview", "application/json", strings.NewReader(string(b)))
	if err != nil {
		return createResult{err: err}
	}
	defer resp.Body.Close()
	var r createResult
	r.status = resp.StatusCode
	r.raw, r.err = io.ReadAll(resp.Body)
	if r.err == nil {
		r.err = json.Unmarshal(r.raw, &r.resp)
	}
	return r
}

// sessionStatus is the status answer, with the error of a failed session.
type sessionStatus struct {
	Status       string    `json:"status"`
	ErrorMessage string    `json:"errorMessage"`
	Error        *apiError `json:"error"`
	raw          []byte
}

// status is GET /{id} for Eventually conditions: it fails nothing.
func (s *service) status(id string) sessionStatus {
	var out sessionStatus
	resp, err := s.client.Get(s.public + "/kontext/preview/" + id)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	out.raw, _ = io.ReadAll(resp.Body)
	json.Unmarshal(out.raw, &out)
	return out
}

func (e *apiError) message() string {
	if e == nil {
		return ""
	}
	return e.Code + ": " + e.Message
}

// bystander creates a session beside a hostile one and returns a check
// that it still serves: it takes an update, the update reaches its page's
// socket, and the new module and the page are served.
func bystander(t *testing.T, svc *service, ev *evidence) func(t *testing.T, when string) {
	t.Helper()
	status, other := svc.collect(t, ev, "POST", "", map[string]any{"files": []any{appTSX("bystander 0")}})
	require.Equal(t, 200, status, "body: %s", other.Raw)
	hmr := svc.recordHMR(t, ev, other)
	version := 0
	return func(t *testing.T, when string) {
		t.Helper()
		version++
		hmr.drain()
		title := fmt.Sprintf("bystander %d", version)
		status, upd := svc.api(t, "POST", "/"+other.SessionID+"/update", map[string]any{"files": []any{appTSX(title)}})
		require.Equal(t, 200, status, "%s: the other session takes an update: %s", when, upd.Raw)
		assert.True(t, upd.HMRTriggered, "%s: %s", when, upd.Raw)
		hmr.next(t, func(m map[string]any) bool { return m["type"] == "update" })
		status, app := svc.get(t, other.PreviewURL+"/src/App.tsx")
		assert.Equal(t, 200, status, when)
		assert.Contains(t, app, title, "%s: the other session serves its new module", when)
		status, _ = svc.get(t, other.PreviewURL+"/")
		assert.Equal(t, 200, status, "%s: the other session serves its page", when)
	}
}

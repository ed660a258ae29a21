package preview_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// inotifyHogPy takes inotify instances until the kernel refuses one and,
// with the argument "watches", adds watches on directories of /usr through
// them until the kernel refuses one; it then writes what it got to
// /project/inotify-hog and holds it all. Python, since Node opens one
// inotify instance per process.
const inotifyHogPy = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fds = []
while len(fds) < 100000:
    fd = libc.inotify_init1(0)
    if fd < 0:
        break
    fds.append(fd)
got = "instances %d (%s)" % (len(fds), os.strerror(ctypes.get_errno()))
if sys.argv[1] == "watches" and fds:
    dirs = []
    for root, _, _ in os.walk("/usr"):
        dirs.append(root.encode())
        if len(dirs) >= 4000:
            break
    n, err = 0, 0
    for fd in fds:
        for d in dirs:
            if libc.inotify_add_watch(fd, d, 2) < 0:
                err = ctypes.get_errno()
                break
            n += 1
        if err:
            break
    got += ", watches %d (%s)" % (n, os.strerror(err) if err else "no refusal")
with open("/project/inotify-hog.tmp", "w") as f:
    f.write(got)
os.rename("/project/inotify-hog.tmp", "/project/inotify-hog")
print(got, flush=True)
time.sleep(600)
`

// inotifyHog is the body of a vite.config.ts that runs inotifyHogPy with
// arg: at once, the config waiting for it (now true), or a second after
// the dev server started.
func inotifyHog(arg string, now bool) string {
	py, _ := json.Marshal(inotifyHogPy)
	hog := `const hog = () => new Promise((done) => {
  const p = spawn('python3', ['-c', ` + string(py) + `, '` + arg + `'], { stdio: ['ignore', 'pipe', 'inherit'] })
  p.stdout.on('data', (d) => { console.log('inotify hog: ' + String(d).trim()); done(null) })
  p.on('exit', done)
})
`
	if now {
		return "import { spawn } from 'node:child_process'\n" + hog + "await hog()\n"
	}
	return "import { spawn } from 'node:child_process'\n" + hog + "setTimeout(hog, 1000)\n"
}

// TestHostileInotify: a tenant takes every inotify instance its user may
// have, and a session created afterwards still gets a file watcher (an
// edit on disk brings its page an HMR update); a tenant that takes the
// instances and watches before its own dev server makes its watcher fails
// alone, with a status that names the watcher limit.
func TestHostileInotify(t *testing.T) {
	testenv.LookPath(t, "python3")
	h := startHostile(t)

	// A: once it serves, it takes every instance of its user and holds
	// them.
	status, a := h.svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("a"), configTS(inotifyHog("instances", false) + "\nexport default defineConfig({ plugins: [react()] })")}})
	require.Equal(t, 200, status, "body: %s", a.Raw)
	marker := filepath.Join(h.svc.base, "preview-"+a.SessionID, "inotify-hog")
	var got []byte
	require.Eventually(t, func() bool {
		var err error
		got, err = os.ReadFile(marker)
		return err == nil
	}, wait, pollEvery, "session A's hog took the instances")
	t.Logf("session A holds: %s", got)
	require.Contains(t, string(got), "Too many open files", "the kernel refused A an instance: its user's are used up")

	// B, created while A holds them: an edit on disk reaches its page
	// (a module the page loaded; the watcher passes one change of a path
	// per 50 ms, and this is the first).
	status, b := h.svc.api(t, "POST", "", map[string]any{"files": []any{appTSX("b 0")}})
	require.Equal(t, 200, status, "body: %s", b.Raw)
	hmr := h.svc.recordHMR(t, &evidence{}, b)
	hmr.drain()
	status, _ = h.svc.get(t, b.PreviewURL+"/src/App.tsx") // the page's module, as the page loads it
	require.Equal(t, 200, status)
	app := filepath.Join(h.svc.base, "preview-"+b.SessionID, "src", "App.tsx")
	content, err := os.ReadFile(app)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(app, []byte(strings.Replace(string(content), "b 0", "b 1", 1)), 0o644))
	hmr.next(t, func(m map[string]any) bool { return m["type"] == "update" })
	st := h.svc.status(a.SessionID)
	assert.Equal(t, "active", st.Status, "A kept its own watcher: %s", st.raw)

	// C takes its user's instances and watches before its dev server
	// makes its watcher: it fails, saying why.
	res := h.svc.tryCreate(map[string]any{"files": []any{appTSX("c"), configTS(inotifyHog("watches", true) + "\nexport default defineConfig({ plugins: [react()] })")}})
	require.NoError(t, res.err)
	msg := res.resp.Error.message()
	if res.status == 200 {
		id := res.resp.SessionID
		t.Cleanup(func() { h.svc.api(t, "DELETE", "/"+id, nil) })
		require.Eventually(t, func() bool {
			st = h.svc.status(id)
			return st.Status == "error" || st.Status == ""
		}, 2*wait, pollEvery, "the session without a watcher fails within a bound")
		msg = st.ErrorMessage + st.Error.message()
	}
	t.Logf("session C: %d: %s", res.status, msg)
	assert.Contains(t, msg, "watcher limit", "the status names the watcher limit")
}

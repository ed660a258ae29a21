package preview_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/sandbox"
)

// The bounds of the disk attack: small, so that filling them is quick.
const (
	attackDisk   = 32 << 20
	attackInodes = 4096
)

// diskHog is the body of a vite.config.ts that, once the dev server runs,
// writes as fast as it can: 1 MiB files into /tmp and then into the
// project until the writes fail, bounded so that a host without a disk
// bound survives it (8 GiB).
const diskHog = `const fill = (dir: string, chunk: Buffer) => {
  let n = 0, code = 'none'
  try { fs.mkdirSync(dir, { recursive: true }); for (; n < 8192; n++) fs.writeFileSync(dir + '/f' + n, chunk) } catch (e) { code = (e as any).code }
  console.log('disk hog: ' + dir + ': ' + code + ' after ' + n + ' files')
}
setTimeout(() => { const mib = Buffer.alloc(1 << 20, 1); fill('/tmp/hog', mib); fill('/project/hog', mib) }, 1000)
`

// inodeHog is the body of a vite.config.ts that, as it loads, creates empty
// files in Vite's cache directory until it cannot, bounded at 200,000.
const inodeHog = `{
  let n = 0, code = 'none'
  try { fs.mkdirSync('/project/.vite-cache/hog', { recursive: true }); for (; n < 200000; n++) fs.writeFileSync('/project/.vite-cache/hog/f' + n, '') } catch (e) { code = (e as any).code }
  console.log('inode hog: ' + code + ' after ' + n + ' files')
}
`

// TestHostileDisk has tenants fill their session's disk, with big files
// (in /tmp and the project) and with empty files (in Vite's cache
// directory): the writes stop at the disk's bounds, the host keeps no more
// of a session than its bound, each hostile session fails alone with a
// status that names the limit, another tenant's session keeps serving its
// updates, and an API write that does not fit answers 507.
func TestHostileDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a session's disk needs root")
	}
	testenv.LookPath(t, "mkfs.ext4")
	h := startHostileWith(t, preview.Options{
		Sandbox: sandbox.Config{Limits: sandbox.Limits{Disk: attackDisk, Inodes: attackInodes}},
		Limits:  preview.Limits{MaxRequestBytes: 48 << 20, MaxSessionBytes: 48 << 20},
	})
	stillServes := bystander(t, h.svc, &evidence{})

	tests := []struct {
		name, body string
		says       string // what the error must mention
	}{
		{"big files", diskHog, `disk limit`},
		{"empty files in the cache directory", inodeHog, `inode limit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			freeBefore := freeBytes(t, h.svc.base)
			res := h.svc.tryCreate(map[string]any{"files": []any{appTSX(tt.name), configTS(tt.body + "\nexport default defineConfig({ plugins: [react()] })")}})
			require.NoError(t, res.err)
			msg := res.resp.Error.message()
			id := res.resp.SessionID
			if res.status == 200 {
				t.Cleanup(func() { h.svc.api(t, "DELETE", "/"+id, nil) })
				var st sessionStatus
				require.Eventually(t, func() bool {
					st = h.svc.status(id)
					return st.Status == "error" || st.Status == ""
				}, 2*wait, pollEvery, "the hostile session fails within a bound")
				msg = st.ErrorMessage + st.Error.message()
			}
			t.Logf("%s: %d: %s", tt.name, res.status, msg)
			assert.Contains(t, msg, tt.says, "the status names the limit the session hit")
			if res.status == 200 {
				// What the host's disk holds of the session: its image's
				// blocks, the tenant's and the file system's together.
				img, err := os.Stat(filepath.Join(h.svc.base, "preview-"+id+".disk"))
				require.NoError(t, err, "the session's disk image")
				used := img.Sys().(*syscall.Stat_t).Blocks * 512
				t.Logf("%s: the session's disk image holds %d bytes of its %d-byte bound; the host's free space fell by %d bytes meanwhile (other processes included)",
					tt.name, used, attackDisk, freeBefore-freeBytes(t, h.svc.base))
				assert.LessOrEqual(t, used, int64(attackDisk), "the host holds more of the session than its bound")
			}
			stillServes(t, "after "+tt.name)
		})
	}

	t.Run("an API write that does not fit", func(t *testing.T) {
		files := []any{}
		for i := range 8 {
			files = append(files, map[string]any{"name": fmt.Sprintf("src/big%d.txt", i), "content": strings.Repeat("x", 5<<20)})
		}
		status, resp := h.svc.api(t, "POST", "", map[string]any{"files": files})
		assert.Equal(t, 507, status, "%s", resp.Raw)
		require.NotNil(t, resp.Error, "%s", resp.Raw)
		assert.Equal(t, preview.CodeDiskLimit, resp.Error.Code)
		stillServes(t, "after the API's write")
	})
}

// freeBytes is what the file system of dir has free.
func freeBytes(t *testing.T, dir string) int64 {
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(dir, &st))
	return int64(st.Bavail) * st.Bsize
}

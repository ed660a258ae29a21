//go:build linux

package sandbox_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/sandbox"
)

// marker returns a random string that no file or environment holds by
// chance.
func marker(t *testing.T) string {
	b := make([]byte, 16)
	rand.Read(b)
	return "vitehost-marker-" + hex.EncodeToString(b)
}

// decode parses the JSON line a probe printed.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), v), "probe output: %s", out)
}

// TestIdentity: inside, an unprivileged user without capabilities, alone in
// its PID namespace, with a loopback-only network, and a root directory that
// holds what the package promises and nothing else.
func TestIdentity(t *testing.T) {
	requireSandbox(t)
	out := node(t, config(t), `
const fs = require('fs'), os = require('os')
const status = {}
for (const l of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
  const [k, v] = l.split(/:\s+/)
  if (/^(Cap|NoNewPrivs|Seccomp$)/.test(k)) status[k] = v
}
console.log(JSON.stringify({
  uid: process.getuid(), gid: process.getgid(), euid: process.geteuid(), groups: process.getgroups(),
  status, hostname: os.hostname(), cwd: process.cwd(),
  pids: fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)),
  ifaces: Object.keys(os.networkInterfaces()),
  root: fs.readdirSync('/').sort(),
  user: os.userInfo().username,
}))`)
	var got struct {
		UID, GID, EUID int
		Groups         []int
		Status         map[string]string
		Hostname, Cwd  string
		Pids, Ifaces   []string
		Root           []string
		User           string
	}
	decode(t, out, &got)
	assert.Equal(t, 1000, got.UID)
	assert.Equal(t, 1000, got.EUID)
	assert.Equal(t, 1000, got.GID)
	assert.Equal(t, "sandbox", got.User)
	for _, k := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		assert.Equal(t, "0000000000000000", got.Status[k], "%s: no capabilities", k)
	}
	assert.Equal(t, "sandbox", got.Hostname)
	assert.Equal(t, sandbox.ProjectDir, got.Cwd)
	assert.ElementsMatch(t, []string{"1", "2"}, got.Pids, "bwrap's init and node, nothing of the host")
	assert.Equal(t, []string{"lo"}, got.Ifaces)

	want := []string{"dev", "etc", "proc", "project", "tmp", "usr"}
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if _, err := os.Lstat("/" + d); err == nil {
			want = append(want, d)
		}
	}
	slices.Sort(want)
	assert.Equal(t, want, got.Root)

	// No user namespace inside: no way to become root of one.
	if _, err := os.Stat("/usr/bin/unshare"); err == nil {
		r := run(t, config(t), []string{"unshare", "--user", "--map-root-user", "true"})
		assert.Error(t, r.err, "unshare --user inside the sandbox")
	}
}

// TestHostFilesHidden: a host file outside the project cannot be read by its
// path, nor through a symbolic link in the project, and no file of the
// sandbox's tree holds a byte of it; /etc/passwd is the generated one.
func TestHostFilesHidden(t *testing.T) {
	requireSandbox(t)
	secret := marker(t)
	// Where the sandbox's user could read it, were it visible.
	secretFile := filepath.Join(reachable(t), "secret.txt")
	require.NoError(t, os.WriteFile(secretFile, []byte(secret), 0o644))
	c := config(t)
	require.NoError(t, os.Symlink(secretFile, filepath.Join(c.Project, "link")))
	require.NoError(t, os.Symlink("../../../../../../../.."+secretFile, filepath.Join(c.Project, "rel")))

	out := node(t, c, `
const fs = require('fs'), path = require('path')
const [secretFile, secret] = process.argv.slice(1)
const code = (f) => { try { f(); return 'read' } catch (e) { return e.code } }
const found = [], files = []
function walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (['/proc', '/dev', '/usr', '/sys'].includes(p)) continue
    if (e.isDirectory()) walk(p)
    else if (e.isFile()) { files.push(p); if (fs.readFileSync(p).includes(secret)) found.push(p) }
  }
}
walk('/')
console.log(JSON.stringify({
  direct: code(() => fs.readFileSync(secretFile)),
  link: code(() => fs.readFileSync('/project/link')),
  rel: code(() => fs.readFileSync('/project/rel')),
  hostProc: code(() => fs.readFileSync('/proc/' + process.ppid + '/root' + secretFile)),
  passwd: fs.readFileSync('/etc/passwd', 'utf8'),
  found, files,
}))`, secretFile, secret)
	// node -e takes the script's arguments after it.
	var got struct {
		Direct, Link, Rel, HostProc string
		Passwd                      string
		Found, Files                []string
	}
	decode(t, out, &got)
	assert.Equal(t, "ENOENT", got.Direct)
	assert.Equal(t, "ENOENT", got.Link)
	assert.Equal(t, "ENOENT", got.Rel)
	assert.NotEqual(t, "read", got.HostProc)
	assert.Empty(t, got.Found, "files that hold the host secret")
	assert.Contains(t, got.Files, "/etc/passwd")
	t.Log("files in the sandbox outside /usr, /proc, /dev:", got.Files)

	var users []string
	for _, l := range strings.Split(strings.TrimSpace(got.Passwd), "\n") {
		users = append(users, strings.SplitN(l, ":", 2)[0])
	}
	assert.ElementsMatch(t, []string{"sandbox", "nobody"}, users)
	host, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	assert.NotEqual(t, string(host), got.Passwd)
}

// TestEnvironmentClean: a secret in the test process's environment reaches
// neither the command's environment nor the environ of any process the
// sandbox can see; the command gets the defaults and Env.
func TestEnvironmentClean(t *testing.T) {
	requireSandbox(t)
	secret := marker(t)
	t.Setenv("VITEHOST_PROBE_SECRET", secret)
	c := config(t)
	c.Env = append(c.Env, "EXTRA=given", "HOME=/project")
	out := node(t, c, `
const fs = require('fs')
const environs = {}
for (const p of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
  for (const f of ['environ', 'cmdline']) {
    try { environs[p + '/' + f] = fs.readFileSync('/proc/' + p + '/' + f, 'utf8') } catch (e) { environs[p + '/' + f] = e.code }
  }
}
console.log(JSON.stringify({ env: process.env, environs }))`)
	var got struct {
		Env      map[string]string
		Environs map[string]string
	}
	decode(t, out, &got)
	assert.NotContains(t, out, secret)
	keys := make([]string, 0, len(got.Env))
	for k := range got.Env {
		keys = append(keys, k)
	}
	assert.ElementsMatch(t, []string{"PATH", "HOME", "PWD", "EXTRA", "VITEHOST_TEST_OWNER"}, keys)
	assert.Equal(t, "/project", got.Env["HOME"], "Env replaces a default")
	assert.Equal(t, "given", got.Env["EXTRA"])
	assert.Contains(t, got.Environs, "1/environ", "bwrap's init is visible inside")
	for k, v := range got.Environs {
		assert.NotContains(t, v, secret, k)
	}
}

// TestWritesConfined: the command writes to the project and /tmp, and
// nowhere else: not the root, /etc, /usr, /dev, nor the dependencies.
func TestWritesConfined(t *testing.T) {
	requireSandbox(t)
	c := config(t)
	c.Modules = reachable(t)
	pkg := filepath.Join(c.Modules, "pkg", "index.js")
	require.NoError(t, os.MkdirAll(filepath.Dir(pkg), 0o755))
	require.NoError(t, os.WriteFile(pkg, []byte("original"), 0o644))
	out := node(t, c, `
const fs = require('fs')
const code = (f) => { try { f(); return 'ok' } catch (e) { return e.code } }
const r = {}
// A sysctl that would refuse the text with EINVAL were it writable: the
// probe cannot change the host even if the sandbox failed.
for (const p of ['/x', '/etc/x', '/etc/passwd', '/usr/x', '/bin/x', '/dev/shm/x', '/dev/x', '/node_modules/x', '/node_modules/pkg/index.js', '/proc/sys/kernel/printk_ratelimit', '/proc/sys/kernel/hostname', '/proc/self/oom_score_adj', '/tmp/ok', '/project/ok'])
  r['write ' + p] = code(() => fs.writeFileSync(p, 'tenant'))
r['set-user-ID /project/suid'] = code(() => { fs.copyFileSync('/usr/bin/true', '/project/suid'); fs.chmodSync('/project/suid', 0o4755) })
r['unlink /node_modules/pkg/index.js'] = code(() => fs.unlinkSync('/node_modules/pkg/index.js'))
r['chmod /node_modules/pkg/index.js'] = code(() => fs.chmodSync('/node_modules/pkg/index.js', 0o777))
r['mkdir /node_modules/y'] = code(() => fs.mkdirSync('/node_modules/y'))
r['read /node_modules/pkg/index.js'] = fs.readFileSync('/node_modules/pkg/index.js', 'utf8')
console.log(JSON.stringify(r))`)
	var got map[string]string
	decode(t, out, &got)
	for k, v := range got {
		switch k {
		case "write /tmp/ok", "write /project/ok", "set-user-ID /project/suid":
			assert.Equal(t, "ok", v, k)
		case "read /node_modules/pkg/index.js":
			assert.Equal(t, "original", v, "the dependencies are readable")
		default:
			assert.Contains(t, []string{"EROFS", "EACCES", "EPERM", "ENOENT"}, v, k)
		}
	}
	b, err := os.ReadFile(filepath.Join(c.Project, "ok"))
	require.NoError(t, err)
	assert.Equal(t, "tenant", string(b))
	b, err = os.ReadFile(pkg)
	require.NoError(t, err)
	assert.Equal(t, "original", string(b))
	// The sandbox's files belong to its user, never to the host's root: a
	// set-user-ID program it makes gives nothing.
	info, err := os.Stat(filepath.Join(c.Project, "suid"))
	require.NoError(t, err)
	assert.NotZero(t, info.Mode()&os.ModeSetuid)
	if os.Geteuid() == 0 {
		assert.EqualValues(t, sandbox.DefaultUID, info.Sys().(*syscall.Stat_t).Uid, "owner of a file the sandbox made")
	}
	entries, err := os.ReadDir(c.Modules)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "nothing added to the dependencies")
}

// TestNoNetwork: a TCP listener on the host's loopback, an abstract Unix
// socket and a Unix socket file of the host are all out of reach, and none
// of them sees a connection.
func TestNoNetwork(t *testing.T) {
	requireSandbox(t)
	var accepted atomic.Int32
	serve := func(l net.Listener) {
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				conn.Close()
			}
		}()
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serve(tcp)
	abstract := "@" + marker(t)
	al, err := net.Listen("unix", abstract)
	require.NoError(t, err)
	serve(al)
	sockPath := filepath.Join(t.TempDir(), "host.sock")
	ul, err := net.Listen("unix", sockPath)
	require.NoError(t, err)
	serve(ul)

	out := node(t, config(t), `
const net = require('net'), dns = require('dns')
const [port, abstract, sock] = process.argv.slice(1)
const attempt = (opts) => new Promise((resolve) => {
  const s = net.connect(opts)
  s.on('connect', () => { s.destroy(); resolve('connected') })
  s.on('error', (e) => resolve(e.code))
})
;(async () => {
  const r = {
    tcp: await attempt({ host: '127.0.0.1', port: Number(port) }),
    abstract: await attempt({ path: '\0' + abstract.slice(1) }),
    sock: await attempt({ path: sock }),
    dns: await new Promise((resolve) => dns.lookup('example.com', (e) => resolve(e ? e.code : 'resolved'))),
  }
  console.log(JSON.stringify(r))
})()`, strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port), abstract, sockPath)
	var got map[string]string
	decode(t, out, &got)
	assert.Equal(t, "ECONNREFUSED", got["tcp"], "the sandbox has a loopback of its own")
	assert.Equal(t, "ECONNREFUSED", got["abstract"], "abstract sockets belong to the network namespace")
	assert.Equal(t, "ENOENT", got["sock"])
	assert.NotEqual(t, "resolved", got["dns"])
	assert.Zero(t, accepted.Load(), "connections that reached the host")
}

// TestSocketFromHost: the host opens a Unix socket listener in a directory
// the sandbox cannot see and passes it in; the command serves HTTP on it and
// the host's client reaches it by the socket's path. This is how a proxy
// reaches a sandboxed dev server.
func TestSocketFromHost(t *testing.T) {
	requireSandbox(t)
	sockDir := t.TempDir()
	sockPath := filepath.Join(sockDir, "http.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	require.NoError(t, err)
	l.SetUnlinkOnClose(false) // the socket stays for the command after this process's listener closes
	f, err := l.File()
	require.NoError(t, err)

	c := config(t)
	ctx, cancel := context.WithTimeout(context.Background(), long)
	defer cancel()
	cmd, err := c.Command(ctx, []string{"node", "-e", `
const http = require('http'), fs = require('fs')
http.createServer((req, res) => res.end('hello ' + req.url + ' from ' + process.getuid()))
  .listen({ fd: 3 }, () => console.log(JSON.stringify({ listening: true, sees: fs.existsSync(process.argv[1]) })))
process.stdin.on('end', () => process.exit(0)).resume()`, sockDir}, f)
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	l.Close()
	f.Close()
	defer func() {
		stdin.Close()
		assert.NoError(t, cmd.Wait())
		assert.NoError(t, cmd.Close())
	}()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	var ready struct{ Listening, Sees bool }
	decode(t, line, &ready)
	require.True(t, ready.Listening)
	assert.False(t, ready.Sees, "the socket's directory is not in the sandbox")

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sockPath)
		},
	}}
	defer client.CloseIdleConnections()
	res, err := client.Get("http://localhost/probe")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, "hello /probe from 1000", string(body))
}

// TestMountsAndFiles: a host directory mounted read-only and files whose
// content the host gives (one larger than a pipe's default buffer) are
// there, readable and read-only.
func TestMountsAndFiles(t *testing.T) {
	requireSandbox(t)
	data := reachable(t)
	require.NoError(t, os.WriteFile(filepath.Join(data, "a.txt"), []byte("from the host"), 0o644))
	big := strings.Repeat("x", 200<<10)
	c := config(t)
	c.ReadOnly = []sandbox.Mount{{Src: data, Dst: "/opt/data"}}
	c.Files = []sandbox.File{
		{Path: "/opt/app/main.js", Data: []byte(`console.log(JSON.stringify(require('./probe.js')))`)},
		{Path: "/opt/app/probe.js", Data: []byte(`
const fs = require('fs')
const code = (f) => { try { f(); return 'ok' } catch (e) { return e.code } }
module.exports = {
  a: fs.readFileSync('/opt/data/a.txt', 'utf8'),
  big: fs.readFileSync('/opt/app/big.txt', 'utf8').length,
  writeMount: code(() => fs.writeFileSync('/opt/data/b.txt', 'x')),
  writeFile: code(() => fs.writeFileSync('/opt/app/main.js', 'x')),
}`)},
		{Path: "/opt/app/big.txt", Data: []byte(big)},
	}
	out := run(t, c, []string{"node", "/opt/app/main.js"})
	require.NoError(t, out.err)
	var got struct {
		A                     string
		Big                   int
		WriteMount, WriteFile string
	}
	decode(t, out.stdout, &got)
	assert.Equal(t, "from the host", got.A)
	assert.Equal(t, len(big), got.Big)
	assert.Equal(t, "EROFS", got.WriteMount)
	assert.Equal(t, "EROFS", got.WriteFile)
	assert.NoFileExists(t, filepath.Join(data, "b.txt"))
}

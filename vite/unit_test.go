package vite

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		name, pkg string
		want      Framework
		err       error
	}{
		{"nuxt dependency", `{"dependencies":{"nuxt":"^4.4.0","vue":"^3"}}`, Nuxt, nil},
		{"nuxt dev dependency", `{"devDependencies":{"nuxt":"^4.4.0"}}`, Nuxt, nil},
		{"plain vite", `{"devDependencies":{"vite":"^8.3.0","@vitejs/plugin-react":"^6"}}`, Vite, nil},
		{"astro dependency", `{"dependencies":{"astro":"^5.18.0"}}`, Astro, nil},
		{"astro integration is not astro", `{"dependencies":{"@astrojs/react":"^4","vite":"^7"}}`, Vite, nil},
		{"sveltekit is a vite plugin", `{"devDependencies":{"@sveltejs/kit":"^2","vite":"^7"}}`, Vite, nil},
		{"react router is a vite plugin", `{"devDependencies":{"@react-router/dev":"^7","vite":"^8"}}`, Vite, nil},
		{"nuxt only named", `{"name":"nuxt","dependencies":{"vite":"^8"}}`, Vite, nil},
		{"nuxt module is not nuxt", `{"dependencies":{"@nuxt/kit":"^4"}}`, Vite, nil},
		{"empty object", `{}`, Vite, nil},
		{"not JSON", `{"dependencies":`, Auto, ErrInvalidPackageJSON},
		{"array", `[]`, Auto, ErrInvalidPackageJSON},
		{"null", `null`, Auto, ErrInvalidPackageJSON},
		{"dependency not a string", `{"dependencies":{"nuxt":4}}`, Auto, ErrInvalidPackageJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "package.json"), []byte(tc.pkg), 0o644))
			got, err := Detect(dir)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Contains(t, err.Error(), "package.json")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := Detect(t.TempDir())
		require.ErrorIs(t, err, ErrNoPackageJSON)
	})
}

func TestInstalledVersion(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
	}
	nm := filepath.Join(dir, "node_modules")
	write(filepath.Join(nm, "vite", "package.json"), `{"version":"8.3.8"}`)
	write(filepath.Join(nm, "nuxt", "package.json"), `{"version":"4.4.5"}`)
	write(filepath.Join(nm, "@nuxt", "vite-builder", "package.json"), `{"version":"4.4.5"}`)
	write(filepath.Join(nm, "@nuxt", "vite-builder", "node_modules", "vite", "package.json"), `{"version":"7.3.8"}`)
	app := filepath.Join(dir, "apps", "web")
	require.NoError(t, os.MkdirAll(app, 0o755))

	assert.Equal(t, "8.3.8", installedVersion(app, "vite"), "found in a parent's node_modules")
	assert.Equal(t, "7.3.8", installedVersion(app, "nuxt", "@nuxt/vite-builder", "vite"), "nested beats hoisted")
	assert.Equal(t, "", installedVersion(app, "svelte"))
}

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		line string
		want message
		err  string // "" valid; "-" not a protocol line
	}{
		{`{"vitehost":"ready","port":5173,"hmrPort":24811,"version":"8.3.8","token":"aB-_9"}`,
			message{Kind: msgReady, Port: 5173, HMRPort: 24811, Version: "8.3.8", Token: "aB-_9"}, ""},
		{`  {"vitehost":"loaded","version":"7.3.8"}  `, message{Kind: msgLoaded, Version: "7.3.8"}, ""},
		{`{"vitehost":"error","message":"boom"}`, message{Kind: msgError, Code: "ERROR", Message: "boom"}, ""},
		{`{"vitehost":"error","code":"EADDRINUSE","port":80,"message":"x"}`, message{Kind: msgError, Code: "EADDRINUSE", Port: 80, Message: "x"}, ""},
		{`{"vitehost":"listen","port":3000}`, message{Kind: msgListen, Port: 3000}, ""},
		{`{"vitehost":"vite","token":"t"}`, message{Kind: msgVite, Token: "t"}, ""},
		{`8:11:00 AM [vite] (client) hmr update /src/App.jsx`, message{}, "-"},
		{`{"other":"json"}`, message{}, "-"},
		{``, message{}, "-"},
		{`{"vitehost":"ready","unix":true,"version":"8.3.8","token":"aB-_9"}`,
			message{Kind: msgReady, Unix: true, Version: "8.3.8", Token: "aB-_9"}, ""},
		{`{"vitehost":"ready","port":5173}`, message{}, "ready without"},
		{`{"vitehost":"ready","unix":true,"port":22,"hmrPort":6379,"token":"t"}`, message{}, "ready without"},
		{`{"vitehost":"ready","unix":true,"port":22,"token":"t"}`, message{}, "ready without"},
		{`{"vitehost":"ready","unix":true}`, message{}, "ready without"},
		{`{"vitehost":"ready","port":70000,"hmrPort":1,"token":"t"}`, message{}, "port out of range"},
		{`{"vitehost":"ready","port":1,"hmrPort":2,"token":"a b"}`, message{}, "invalid token"},
		{`{"vitehost":"ready","port":1,"hmrPort":2,"token":"t","version":"8\n"}`, message{}, "invalid version"},
		{`{"vitehost":"shutdown"}`, message{}, "unknown kind"},
		{`{"vitehost":"ready",`, message{}, "protocol line"},
		{`{"vitehost":"listen"}`, message{}, "no port"},
	} {
		m, err := parseMessage([]byte(tc.line))
		switch tc.err {
		case "":
			require.NoError(t, err, tc.line)
			assert.Equal(t, tc.want, m, tc.line)
		case "-":
			assert.ErrorIs(t, err, errNotMessage, tc.line)
		default:
			require.Error(t, err, tc.line)
			assert.NotErrorIs(t, err, errNotMessage, tc.line)
			assert.Contains(t, err.Error(), tc.err, tc.line)
		}
	}
}

func TestBrowserHMR(t *testing.T) {
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	for _, tc := range []struct {
		public string
		path   string
		want   hmrClient
		hosts  []string
	}{
		{"", "", hmrClient{Protocol: "ws", Port: 24811}, nil},
		{"http://localhost:8000", "", hmrClient{Protocol: "ws", Host: "localhost", Port: 8000}, nil},
		{"http://localhost:8000", "/hmr", hmrClient{Protocol: "ws", Host: "localhost", Port: 8000, Path: "/hmr"}, nil},
		{"https://preview-abc.example.com", "/hmr", hmrClient{Protocol: "wss", Host: "preview-abc.example.com", Port: 443, Path: "/hmr"}, []string{"preview-abc.example.com"}},
		{"http://app.example.com/", "", hmrClient{Protocol: "ws", Host: "app.example.com", Port: 80}, []string{"app.example.com"}},
		{"https://app.example.com:8443/base", "", hmrClient{Protocol: "wss", Host: "app.example.com", Port: 8443}, []string{"app.example.com"}},
		{"http://[::1]:8000", "", hmrClient{Protocol: "ws", Host: "::1", Port: 8000}, nil},
		{"http://app.localhost:8000", "", hmrClient{Protocol: "ws", Host: "app.localhost", Port: 8000}, nil},
		{"http://:8000", "/hmr", hmrClient{Protocol: "ws", Port: 8000, Path: "/hmr"}, nil}, // the page's host name
	} {
		var public *url.URL
		if tc.public != "" {
			public = mustURL(tc.public)
		}
		require.NoError(t, checkPublic(public, tc.path))
		assert.Equal(t, tc.want, browserHMR(public, 24811, tc.path), tc.public)
		assert.Equal(t, tc.hosts, allowedHosts(public), tc.public)
	}
	for _, tc := range []struct {
		public, path string
	}{
		{"ftp://example.com", ""},
		{"/relative", ""},
		{"http://", ""},
		{"http://example.com:99999", ""},
		{"", "hmr"},
		{"", "/hmr?x=1"},
		{"", "/a/../hmr"},
		{"", "/hm r"},
	} {
		var public *url.URL
		if tc.public != "" {
			public = mustURL(tc.public)
		}
		assert.ErrorIs(t, checkPublic(public, tc.path), ErrInvalidOptions, "%q %q", tc.public, tc.path)
	}
}

func TestWithDefaults(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"dependencies":{"nuxt":"^4"}}`), 0o644))

	o, fw, err := withDefaults(dir, nil)
	require.NoError(t, err)
	assert.Equal(t, Nuxt, fw)
	assert.Equal(t, DefaultHost, o.Host)
	assert.Equal(t, "node", o.Node)
	assert.Equal(t, DefaultNuxtStartTimeout, o.StartTimeout)
	assert.Equal(t, DefaultStopTimeout, o.StopTimeout)
	assert.Same(t, slog.Default(), o.Logger)

	// The caller's Options are copied, never changed.
	public, _ := url.Parse("http://localhost:8000")
	in := &Options{Framework: Vite, PublicURL: public, Env: []string{"A=1"}, Plugins: []Plugin{{Module: "m"}}}
	before := fmt.Sprintf("%+v %+v", *in, *in.PublicURL)
	o, fw, err = withDefaults(dir, in)
	require.NoError(t, err)
	assert.Equal(t, Vite, fw)
	assert.Equal(t, DefaultViteStartTimeout, o.StartTimeout)
	o.PublicURL.Host = "changed"
	o.Env[0] = "changed"
	o.Plugins[0].Module = "changed"
	assert.Equal(t, before, fmt.Sprintf("%+v %+v", *in, *in.PublicURL))

	for _, bad := range []*Options{
		{Framework: "svelte"},
		{Port: -1},
		{HMRPort: 70000},
		{Port: 5173, HMRPort: 5173},
		{Framework: Nuxt, Config: map[string]any{}},
		{Framework: Nuxt, Plugins: []Plugin{{Module: "x"}}},
		{Framework: Astro, NoConfigFile: true},
		{Framework: Astro, Config: map[string]any{}},
	} {
		_, _, err := withDefaults(dir, bad)
		assert.ErrorIs(t, err, ErrInvalidOptions, "%+v", bad)
	}
}

func TestRunnerInput(t *testing.T) {
	s := &launcher{dir: "/p"}
	var err error
	public, _ := url.Parse("https://preview-abc.example.com")
	s.opts, _, err = withDefaults("/p", &Options{
		Framework:    Vite,
		PublicURL:    public,
		HMRPath:      "/hmr",
		NoConfigFile: true,
		Config:       map[string]any{"cacheDir": "/p/.vite-cache"},
		Plugins:      []Plugin{{Module: "@vitejs/plugin-react"}, {Module: "p", Export: "named", Options: map[string]any{"x": 1}}},
	})
	require.NoError(t, err)
	b, err := s.runnerInput(ports{http: 5173, hmr: 24811})
	require.NoError(t, err)
	assert.True(t, bytes.HasSuffix(b, []byte("\n")))
	assert.Equal(t, 1, bytes.Count(b, []byte("\n")), "one line")
	assert.JSONEq(t, `{
		"configFile": false,
		"config": {"cacheDir": "/p/.vite-cache"},
		"plugins": [
			{"module": "@vitejs/plugin-react", "hasOptions": false},
			{"module": "p", "export": "named", "options": {"x": 1}, "hasOptions": true}
		],
		"host": "127.0.0.1", "port": 5173,
		"hmrHost": "127.0.0.1", "hmrPort": 24811,
		"client": {"protocol": "wss", "host": "preview-abc.example.com", "port": 443, "path": "/hmr"},
		"allowedHosts": ["preview-abc.example.com"]
	}`, string(b))

	s.opts.Config = map[string]any{"bad": func() {}}
	_, err = s.runnerInput(ports{http: 1, hmr: 2})
	assert.ErrorIs(t, err, ErrInvalidOptions)
}

func TestOutput(t *testing.T) {
	var stdout, logs bytes.Buffer
	o := newOutput(&stdout, nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	var got []message
	w := o.writer("stdout", func(m message) { got = append(got, m) })
	e := o.writer("stderr", nil)

	// Lines split across writes; protocol lines diverted; colours removed.
	io := []string{"first li", "ne\n{\"vitehost\":\"loaded\",", "\"version\":\"8.3.8\"}\r\n\x1b[32mgreen\x1b[0m\n", "partial"}
	for _, s := range io {
		w.Write([]byte(s))
	}
	e.Write([]byte("on stderr\n"))
	e.Write([]byte(`{"vitehost":"ready","port":1,"hmrPort":2,"token":"t"}` + "\n"))
	w.flush()

	assert.Equal(t, []message{{Kind: msgLoaded, Version: "8.3.8"}}, got, "stderr never carries protocol lines")
	assert.Equal(t, "first line\ngreen\npartial\n", stdout.String())
	assert.Contains(t, logs.String(), `line="on stderr"`, "a nil writer means the logger")
	assert.Equal(t, []string{"first line", "green", "on stderr", `{"vitehost":"ready","port":1,"hmrPort":2,"token":"t"}`, "partial"}, o.tail())

	// An invalid protocol line is logged, not delivered.
	w.Write([]byte(`{"vitehost":"ready"}` + "\n"))
	assert.Len(t, got, 1)
	assert.Contains(t, logs.String(), "invalid protocol line")

	// The tail keeps the last lines in order.
	for i := range 100 {
		e.Write([]byte(fmt.Sprintf("line %d\n", i)))
	}
	tail := o.tail()
	require.Len(t, tail, tailLines)
	assert.Equal(t, "line 60", tail[0])
	assert.Equal(t, "line 99", tail[tailLines-1])

	// A line without end is cut, not kept whole.
	e.Write(bytes.Repeat([]byte("x"), 3*maxLine))
	assert.Equal(t, strings.Repeat("x", maxLine), o.tail()[tailLines-1])
}

func TestStartErrorMessage(t *testing.T) {
	err := &StartError{Dir: "/app", Framework: Vite, Err: fmt.Errorf("%w: boom", ErrStartFailed), Output: []string{"a", "b"}}
	assert.Equal(t, "vitehost/vite: start vite in /app: vitehost/vite: dev server failed to start: boom\nlast output lines:\n  | a\n  | b", err.Error())
	assert.True(t, errors.Is(err, ErrStartFailed))
	err = &StartError{Dir: "/app", Err: ErrNoPackageJSON}
	assert.Equal(t, "vitehost/vite: start dev server in /app: vitehost/vite: no package.json", err.Error())
}

func TestProcStat(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "stat")
	require.NoError(t, os.WriteFile(p, []byte("4242 (node (x) y) S 1 4240 4240 0 -1 4194560 ...\n"), 0o644))
	state, pgrp, ok := procStat(p)
	require.True(t, ok)
	assert.Equal(t, byte('S'), state)
	assert.Equal(t, 4240, pgrp)
	require.NoError(t, os.WriteFile(p, []byte("garbage"), 0o644))
	_, _, ok = procStat(p)
	assert.False(t, ok)

	// A child that leads a group of its own is found in that group, and
	// only it; once it is gone the group is empty.
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	pids, err := groupPIDs(pid)
	require.NoError(t, err)
	assert.Equal(t, []int{pid}, pids)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	pids, err = groupPIDs(pid)
	require.NoError(t, err)
	assert.Empty(t, pids)
}

func TestPickPorts(t *testing.T) {
	p, err := pickPorts(0, 0)
	require.NoError(t, err)
	assert.NotZero(t, p.http)
	assert.NotZero(t, p.hmr)
	assert.NotEqual(t, p.http, p.hmr)
	assert.False(t, p.isFixed(p.http))

	p, err = pickPorts(5173, 0)
	require.NoError(t, err)
	assert.Equal(t, 5173, p.http)
	assert.True(t, p.isFixed(5173))
	assert.False(t, p.isFixed(p.hmr))

	assert.Equal(t, "http://127.0.0.1:5173", listenURL("0.0.0.0", 5173).String())
	assert.Equal(t, "http://[::1]:5173", listenURL("::", 5173).String())
	assert.Equal(t, "http://localhost:5173", listenURL("localhost", 5173).String())
}

// TestHoldWithoutDevServer checks what Hold does before it talks to a
// runner: invalid calls and a dev server that is not running hold nothing.
func TestHoldWithoutDevServer(t *testing.T) {
	ctx := context.Background()
	nuxt := &Server{launcher: &launcher{fw: Nuxt}}
	_, err := nuxt.Hold(ctx, []string{"app.vue"}, nil)
	assert.ErrorIs(t, err, ErrInvalidOptions)

	s := &Server{launcher: &launcher{fw: Vite}}
	for _, bad := range [][]string{{"../x.js"}, {"/etc/passwd"}, {""}, {"a\x00b"}} {
		_, err := s.Hold(ctx, bad, nil)
		assert.ErrorIs(t, err, ErrInvalidOptions, "%q", bad)
		_, err = s.Hold(ctx, nil, bad)
		assert.ErrorIs(t, err, ErrInvalidOptions, "deleted %q", bad)
	}
	h, err := s.Hold(ctx, []string{"src/a.js"}, []string{"src/b.js"})
	assert.ErrorIs(t, err, ErrNotRunning)
	assert.Nil(t, h)
}

// fakeRunner is the runner's side of a child's stdin and stdout: the lines
// the Go side sends, and answers delivered as if the runner printed them.
type fakeRunner struct {
	c     *child
	lines chan string
	w     *io.PipeWriter
}

func newFakeRunner(t *testing.T) *fakeRunner {
	r, w := io.Pipe()
	f := &fakeRunner{c: &child{stdin: w, events: make(chan message, 1), exited: make(chan struct{})}, lines: make(chan string, 16), w: w}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		w.Close()
		<-done
	})
	return f
}

// next returns the next line the Go side sent.
func (f *fakeRunner) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-f.lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line from the Go side")
		return ""
	}
}

// answer delivers the runner's line as the child's stdout reader does.
func (f *fakeRunner) answer(t *testing.T, line string) {
	t.Helper()
	m, err := parseMessage([]byte(line))
	require.NoError(t, err)
	f.c.deliver(m)
}

// TestHold plays the runner against Hold, Commit and Release: the lines
// are the runner's protocol byte for byte, each phase returns its own
// error, and a hold that its caller abandons is released.
func TestHold(t *testing.T) {
	f := newFakeRunner(t)
	s := &Server{launcher: &launcher{fw: Vite}}
	s.cur.Store(&state{child: f.c})
	ctx := context.Background()

	// Hold, then Commit: two round trips, the outcome of the second.
	type held struct {
		h   *Hold
		err error
	}
	hold := func(ctx context.Context) chan held {
		ch := make(chan held, 1)
		go func() {
			h, err := s.Hold(ctx, []string{"src/a.js", "./src/c.js"}, []string{"src/b.js"})
			ch <- held{h, err}
		}()
		return ch
	}
	got := hold(ctx)
	assert.Equal(t, `{"vitehost":"hold","id":1,"files":["src/a.js","src/c.js"],"deleted":["src/b.js"]}`, f.next(t))
	f.answer(t, `{"vitehost":"held","id":1}`)
	r := <-got
	require.NoError(t, r.err)
	done := make(chan error, 1)
	var res *BatchResult
	go func() {
		var err error
		res, err = r.h.Commit(ctx)
		done <- err
	}()
	assert.Equal(t, `{"vitehost":"commit","id":1}`, f.next(t))
	f.answer(t, `{"vitehost":"batch","id":1,"batch":{"updates":[{"type":"js-update","path":"/src/a.js","acceptedPath":"/src/a.js","timestamp":7}]}}`)
	require.NoError(t, <-done)
	require.Len(t, res.Updates, 1)
	assert.Equal(t, "/src/a.js", res.Updates[0].Path)
	r.h.Release() // after Commit: nothing goes out
	_, err := r.h.Commit(ctx)
	assert.ErrorIs(t, err, ErrReleased, "a second Commit")

	// A Hold whose context ends before the runner holds returns the
	// context's error and releases what the runner may hold by then.
	cctx, cancel := context.WithCancel(ctx)
	got = hold(cctx)
	assert.Contains(t, f.next(t), `{"vitehost":"hold","id":2,`)
	cancel()
	assert.ErrorIs(t, (<-got).err, context.Canceled)
	assert.Equal(t, `{"vitehost":"release","id":2}`, f.next(t))
	f.answer(t, `{"vitehost":"held","id":2}`) // late: nobody waits

	// A hold whose context ends before Commit is released.
	cctx, cancel = context.WithCancel(ctx)
	got = hold(cctx)
	assert.Contains(t, f.next(t), `"id":3,`)
	f.answer(t, `{"vitehost":"held","id":3}`)
	r = <-got
	require.NoError(t, r.err)
	cancel()
	assert.Equal(t, `{"vitehost":"release","id":3}`, f.next(t))
	_, err = r.h.Commit(ctx)
	assert.ErrorIs(t, err, ErrReleased)

	// Release sends the release line, once, and waits for nothing; the
	// runner answers it with nothing, and a stray outcome is dropped.
	got = hold(ctx)
	assert.Contains(t, f.next(t), `"id":4,`)
	f.answer(t, `{"vitehost":"held","id":4}`)
	r = <-got
	require.NoError(t, r.err)
	r.h.Release()
	r.h.Release()
	assert.Equal(t, `{"vitehost":"release","id":4}`, f.next(t))
	f.answer(t, `{"vitehost":"batch","id":4,"batch":{}}`)
	_, err = r.h.Commit(ctx)
	assert.ErrorIs(t, err, ErrReleased)

	// Commit's context bounds its wait only; the commit went out, and the
	// runner is told that its outcome is no longer awaited.
	got = hold(ctx)
	assert.Contains(t, f.next(t), `"id":5,`)
	f.answer(t, `{"vitehost":"held","id":5}`)
	r = <-got
	require.NoError(t, r.err)
	cctx, cancel = context.WithCancel(ctx)
	go func() {
		_, err := r.h.Commit(cctx)
		done <- err
	}()
	assert.Equal(t, `{"vitehost":"commit","id":5}`, f.next(t))
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, `{"vitehost":"abandon","id":5}`, f.next(t))

	// The run's end ends the waits of Hold and Commit.
	got = hold(ctx)
	assert.Contains(t, f.next(t), `"id":6,`)
	f.answer(t, `{"vitehost":"held","id":6}`)
	r = <-got
	require.NoError(t, r.err)
	go func() {
		_, err := r.h.Commit(ctx)
		done <- err
	}()
	assert.Equal(t, `{"vitehost":"commit","id":6}`, f.next(t))
	close(f.c.exited)
	assert.ErrorIs(t, <-done, ErrNotRunning)
	got = hold(ctx)
	assert.Contains(t, f.next(t), `"id":7,`)
	assert.ErrorIs(t, (<-got).err, ErrNotRunning)
	assert.Equal(t, `{"vitehost":"release","id":7}`, f.next(t))

	f.c.batches.mu.Lock()
	defer f.c.batches.mu.Unlock()
	assert.Empty(t, f.c.batches.pending, "no hold waits for an answer")
}

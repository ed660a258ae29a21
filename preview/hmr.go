package preview

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vitehost/vitehost/hotfile"
)

// This file is the service's own client on each session's HMR socket: it
// sees what Vite tells the browsers, so that an update can answer whether it
// reached them (hmrTriggered) and with which compile error.

// HMRType says what Vite did after an update.
type HMRType string

// The values of HMR.Type.
const (
	HMRUpdate     HMRType = "update"      // modules were hot-replaced
	HMRFullReload HMRType = "full-reload" // the page reloads
	HMRNone       HMRType = "none"        // Vite sent nothing: no loaded module uses the files
)

// HMR is what Vite did after an update, as the update response reports it.
type HMR struct {
	// Type is what Vite did.
	Type HMRType `json:"type"`
	// Paths are the modules Vite updated, or the page it reloads.
	Paths []string `json:"paths"`
	// Error is the compile error Vite sent for the new code, if any.
	Error *CompileError `json:"error,omitempty"`
}

// CompileError is Vite's error payload: the code does not compile.
type CompileError struct {
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Frame   string `json:"frame,omitempty"`
	Plugin  string `json:"plugin,omitempty"`
}

// hmrMessage is the part of Vite's HMR protocol the service reads
// (vite/src/shared/hmrPayload.ts).
type hmrMessage struct {
	Type    string `json:"type"`
	Updates []struct {
		Type         string `json:"type"`
		Path         string `json:"path"`
		AcceptedPath string `json:"acceptedPath"`
		Timestamp    int64  `json:"timestamp"`
	} `json:"updates"`
	Path string `json:"path"`
	Err  *struct {
		Message string `json:"message"`
		ID      string `json:"id"`
		Frame   string `json:"frame"`
		Plugin  string `json:"plugin"`
		Loc     *struct {
			File   string `json:"file"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"loc"`
	} `json:"err"`
}

// locInMessage finds "file:line:column" in an error message: Vite 8's oxc
// transform reports the position only there ("─[ src/App.tsx:3:1 ]").
var locInMessage = regexp.MustCompile(`([^\s\[\]()]+):(\d+):(\d+)`)

// compileError returns the error payload of m with file names relative to
// the session directory dir (clients need not see the server's paths).
func (m *hmrMessage) compileError(dir string) *CompileError {
	if m.Err == nil {
		return nil
	}
	e := &CompileError{Message: m.Err.Message, File: m.Err.ID, Frame: m.Err.Frame, Plugin: m.Err.Plugin}
	if l := m.Err.Loc; l != nil {
		if l.File != "" {
			e.File = l.File
		}
		e.Line, e.Column = l.Line, l.Column
	}
	if e.Line == 0 {
		if sub := locInMessage.FindStringSubmatch(e.Message); sub != nil {
			e.Line, _ = strconv.Atoi(sub[2])
			e.Column, _ = strconv.Atoi(sub[3])
			if e.File == "" {
				e.File = sub[1]
			}
		}
	}
	// Vite names a dependency by its real path, in the shared install.
	modules, _ := filepath.EvalSymlinks(filepath.Join(dir, "node_modules"))
	for _, p := range []struct{ dir, as string }{{dir, ""}, {modules, "node_modules/"}} {
		if p.dir == "" {
			continue
		}
		if rel, err := filepath.Rel(p.dir, e.File); err == nil && filepath.IsAbs(e.File) && !strings.HasPrefix(rel, "..") {
			e.File = p.as + filepath.ToSlash(rel)
		}
		e.Message = strings.ReplaceAll(e.Message, p.dir+string(filepath.Separator), p.as)
		e.Frame = strings.ReplaceAll(e.Frame, p.dir+string(filepath.Separator), p.as)
	}
	return e
}

// hmrSource is where the client finds the socket: a dev server whose targets
// and token change when it restarts.
type hmrSource interface {
	Targets() hotfile.Targets
	Token() string
}

// hmrClient holds one connection to a session's HMR socket, redialling when
// the dev server restarts, and fans its messages out to subscribers.
type hmrClient struct {
	src    hmrSource
	path   string
	dialer *websocket.Dialer
	log    *slog.Logger

	mu        sync.Mutex
	connected bool
	changed   chan struct{} // closed and replaced when connected changes
	subs      map[chan hmrMessage]struct{}
	conn      *websocket.Conn

	closing chan struct{}
	done    chan struct{}
}

func newHMRClient(src hmrSource, path string, log *slog.Logger) *hmrClient {
	c := &hmrClient{
		src:     src,
		path:    path,
		dialer:  &websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"vite-hmr"}},
		log:     log,
		changed: make(chan struct{}),
		subs:    make(map[chan hmrMessage]struct{}),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.run()
	return c
}

// waitConnectedFor is waitConnected bounded by d; the common case, a live
// connection, costs no timer.
func (c *hmrClient) waitConnectedFor(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	ok := c.connected
	c.mu.Unlock()
	if ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return c.waitConnected(ctx)
}

// waitConnected returns when the client has a live connection (Vite sent
// "connected"), or ctx's error.
func (c *hmrClient) waitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		ok, ch := c.connected, c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return ErrClosed
		}
	}
}

// subscribe returns a channel of the messages that arrive from now on. A
// subscriber that falls more than its buffer behind loses messages.
func (c *hmrClient) subscribe() (<-chan hmrMessage, func()) {
	ch := make(chan hmrMessage, 64)
	c.mu.Lock()
	c.subs[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs, ch)
		c.mu.Unlock()
	}
}

func (c *hmrClient) setConnected(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected != v {
		c.connected = v
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// close ends the connection and returns when the client's goroutine is gone.
func (c *hmrClient) close() {
	select {
	case <-c.closing:
	default:
		close(c.closing)
	}
	c.mu.Lock()
	if c.conn != nil {
		c.conn.Close()
	}
	c.mu.Unlock()
	<-c.done
}

func (c *hmrClient) run() {
	defer close(c.done)
	backoff := 20 * time.Millisecond
	for {
		select {
		case <-c.closing:
			return
		default:
		}
		conn, err := c.dial()
		if err == nil {
			backoff = 20 * time.Millisecond
			c.read(conn)
			c.setConnected(false)
			continue
		}
		select {
		case <-c.closing:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (c *hmrClient) dial() (*websocket.Conn, error) {
	t := c.src.Targets()
	if t.HMR == nil {
		return nil, errNoTarget
	}
	u := *t.HMR
	dialer := c.dialer
	switch u.Scheme {
	case hotfile.UnixScheme:
		// A sandboxed dev server listens on a Unix socket: dial it, and name
		// a host that Vite's host check allows.
		sock := u.Path
		d := *c.dialer
		d.NetDialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
		dialer = &d
		u = url.URL{Scheme: "ws", Host: "localhost"}
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = c.path
	u.RawQuery = url.Values{"token": {c.src.Token()}}.Encode()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, resp, err := dialer.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	select {
	case <-c.closing:
		c.mu.Unlock()
		conn.Close()
		return nil, ErrClosed
	default:
	}
	c.conn = conn
	c.mu.Unlock()
	return conn, nil
}

func (c *hmrClient) read(conn *websocket.Conn) {
	defer func() {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
		conn.Close()
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var m hmrMessage
		if err := json.Unmarshal(data, &m); err != nil {
			continue
		}
		if m.Type == "connected" {
			c.setConnected(true)
			continue
		}
		c.mu.Lock()
		for ch := range c.subs {
			select {
			case ch <- m:
			default:
			}
		}
		c.mu.Unlock()
	}
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// fanOutSockets is how many browsers' HMR sockets share one session.
const fanOutSockets = 200

// measureFanOut opens fanOutSockets vite-hmr sockets through the proxy at
// base, edits a module, and takes the time until the first and the last
// socket have the update.
func measureFanOut(ctx context.Context, env *Env, base, root string) ([]Row, error) {
	edits := 10
	if env.Quick {
		edits = 3
	}
	token, err := viteToken(ctx, nil, base)
	if err != nil {
		return nil, err
	}
	wsURL := strings.Replace(base, "http://", "ws://", 1) + "/hmr?token=" + url.QueryEscape(token)
	dialer := &websocket.Dialer{Subprotocols: []string{"vite-hmr"}, HandshakeTimeout: 30 * time.Second}

	updates := make(chan time.Time, fanOutSockets*(edits+2))
	var conns []*websocket.Conn
	var readers sync.WaitGroup
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	for i := range fanOutSockets {
		c, res, err := dialer.DialContext(ctx, wsURL, http.Header{"Origin": {base}})
		if err != nil {
			return nil, fmt.Errorf("socket %d: %w", i, err)
		}
		res.Body.Close()
		if _, msg, err := c.ReadMessage(); err != nil || !bytes.Contains(msg, []byte(`"connected"`)) {
			c.Close()
			return nil, fmt.Errorf("socket %d: first message %q: %v", i, msg, err)
		}
		conns = append(conns, c)
		readers.Go(func() {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if bytes.Contains(msg, []byte(`"type":"update"`)) {
					updates <- time.Now()
				}
			}
		})
	}

	app := filepath.Join(root, "src", "App.jsx")
	orig, err := os.ReadFile(app)
	if err != nil {
		return nil, err
	}
	defer os.WriteFile(app, orig, 0o644)
	var first, last []time.Duration
	for i := range edits + 1 {
		src := strings.Replace(string(orig), "Hello from the fixture", fmt.Sprintf("Fan-out %d", i), 1)
		if err := os.WriteFile(app+".tmp", []byte(src), 0o644); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := os.Rename(app+".tmp", app); err != nil {
			return nil, err
		}
		var got []time.Time
		for len(got) < fanOutSockets {
			select {
			case at := <-updates:
				got = append(got, at)
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(30 * time.Second):
				return nil, fmt.Errorf("edit %d: %d of %d sockets got the update", i, len(got), fanOutSockets)
			}
		}
		if i > 0 {
			first = append(first, got[0].Sub(start))
			last = append(last, got[len(got)-1].Sub(start))
		}
		time.Sleep(120 * time.Millisecond)
	}
	f, l := Summarize(first), Summarize(last)
	note := fmt.Sprintf("%d edits, %d vite-hmr sockets through ssrproxy", edits, fanOutSockets)
	return []Row{
		{What: "HMR fan-out: edit to first socket", Value: fmt.Sprintf("%s p50 / %s p99", Ms(f.P50), Ms(f.P99)), Note: note},
		{What: fmt.Sprintf("HMR fan-out: edit to all %d sockets", fanOutSockets), Value: fmt.Sprintf("%s p50 / %s p99", Ms(l.P50), Ms(l.P99)), Ratio: Ratio(float64(l.P50), float64(f.P50)) + " first", Note: note},
	}, nil
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vitehost/vitehost/preview"
	"github.com/vitehost/vitehost/preview/redisstore"
	"github.com/vitehost/vitehost/preview/storetest"
)

func init() { Register("cluster", 40, runCluster) }

// clusterPublic is the public URL both nodes share; the clients dial each
// node's listener themselves, as a load balancer would.
const clusterPublic = "http://localhost:8080"

// runCluster measures what a request costs when it lands on a node that
// does not run its session (a Redis lookup, then a forward to the owner)
// against the same request on the owner, in the same run, alternating: the
// page (GET / and its module fetches) and an update's way to the browser
// (the API update posted to the node, until Vite's update message arrives
// on a vite-hmr socket opened through that node).
func runCluster(ctx context.Context, env *Env) ([]Row, error) {
	redis, err := storetest.StartRedis(ctx, clusterDir(env, "cluster-redis"))
	if err != nil {
		return nil, err
	}
	defer redis.Close()
	owner, err := startClusterNode(env, redis, "owner", benchDepsCache)
	if err != nil {
		return nil, err
	}
	defer owner.close()
	other, err := startClusterNode(env, redis, "other", benchDepsCache)
	if err != nil {
		return nil, err
	}
	defer other.close()

	env.Log.Info("cluster: creating a session on the owner (installs the template's dependencies once)")
	info, err := owner.m.Create(ctx, &preview.CreateRequest{Files: []preview.File{clusterApp("edit -1")}})
	if err != nil {
		return nil, err
	}
	paths, err := crawlClient(ctx, owner.client, info.PreviewURL)
	if err != nil {
		return nil, err
	}
	if owner.m.NumSessions() != 1 || other.m.NumSessions() != 0 {
		return nil, errors.New("the session does not run on the owner alone")
	}
	sides := []*clusterNode{owner, other}
	rows, err := measureClusterPages(ctx, env, sides, info.PreviewURL, paths)
	if err != nil {
		return rows, err
	}
	r, err := measureClusterHMR(ctx, env, sides, info)
	rows = append(rows, r...)
	if err == nil && other.m.NumSessions() != 0 {
		err = errors.New("the other node started the session: the measurement is void")
	}
	return rows, err
}

func clusterDir(env *Env, name string) string {
	dir := filepath.Join(env.Dir, name)
	os.MkdirAll(dir, 0o755)
	return dir
}

// clusterNode is one preview node behind its own listener.
type clusterNode struct {
	name   string
	m      *preview.Manager
	store  *redisstore.Store
	srv    *http.Server
	served chan struct{}
	client *http.Client
	dialer *websocket.Dialer
}

func startClusterNode(env *Env, redis *storetest.RedisServer, name, cacheDir string) (*clusterNode, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("section", "cluster")
	store, err := redisstore.New(redis.URL("", 0), &redisstore.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		store.Close()
		return nil, err
	}
	addr := ln.Addr().String()
	m, err := preview.New(&preview.Options{
		PublicURL: clusterPublic, BaseDir: clusterDir(env, "cluster-"+name), CacheDir: cacheDir,
		Store: store, NodeID: name, NodeAddr: addr, Logger: log,
	})
	if err != nil {
		ln.Close()
		store.Close()
		return nil, err
	}
	n := &clusterNode{name: name, m: m, store: store, srv: &http.Server{Handler: m.Router(m.API())}, served: make(chan struct{})}
	go func() {
		defer close(n.served)
		n.srv.Serve(ln)
	}()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	n.client = &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 16, DisableCompression: true}}
	n.dialer = &websocket.Dialer{NetDialContext: dial, Subprotocols: []string{"vite-hmr"}, HandshakeTimeout: 10 * time.Second}
	return n, nil
}

func (n *clusterNode) close() {
	n.m.Close(context.Background())
	n.srv.Close()
	<-n.served
	n.client.CloseIdleConnections()
	n.store.Close()
}

func clusterApp(text string) preview.File {
	return preview.File{Name: "src/App.tsx", Content: fmt.Sprintf(`import { useState } from 'react'

export default function App() {
  const [n, setN] = useState(0)
  return <main><h1>%s</h1><button onClick={() => setN(n + 1)}>{n}</button></main>
}
`, text)}
}

// measureClusterPages loads the page through each node in turn: GET / on
// its own, then every module with six connections, as a browser would.
func measureClusterPages(ctx context.Context, env *Env, sides []*clusterNode, base string, paths []string) ([]Row, error) {
	rounds, warm := 100, 5
	if env.Quick {
		rounds, warm = 10, 2
	}
	page := make([][]time.Duration, len(sides))
	modules := make([][]time.Duration, len(sides))
	loads := make([][]time.Duration, len(sides))
	for i := range warm + rounds {
		for j := range sides {
			k := (i + j) % len(sides) // alternate which node goes first
			n := sides[k]
			start := time.Now()
			_, status, err := fetch(ctx, n.client, base+"/")
			d := time.Since(start)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("GET / through %s: %d", n.name, status)
			}
			if err != nil {
				return nil, err
			}
			lat, err := pageLoad(ctx, n.client, base, paths[1:], 6)
			if err != nil {
				return nil, fmt.Errorf("through %s: %w", n.name, err)
			}
			if i >= warm {
				page[k] = append(page[k], d)
				modules[k] = append(modules[k], lat...)
				loads[k] = append(loads[k], time.Since(start))
			}
		}
	}
	env.Log.Info("cluster: pages measured", "modules", len(paths)-1)
	var rows []Row
	for _, m := range []struct {
		what string
		lat  [][]time.Duration
		note string
	}{
		{"GET / (the page)", page, fmt.Sprintf("%d requests each, one at a time", rounds)},
		{fmt.Sprintf("module fetch (%d modules, 6 conns)", len(paths)-1), modules, fmt.Sprintf("%d page loads each; latency of each request", rounds)},
		{"whole page load (GET /, then the modules)", loads, fmt.Sprintf("%d page loads each; wall time", rounds)},
	} {
		rows = append(rows, clusterRows("page: "+m.what, m.lat, m.note)...)
	}
	return rows, nil
}

// sideRows turns the owner's and the other node's samples into two rows,
// the second with the ratios of its p50 and p99 to the owner's.
func clusterRows(what string, lat [][]time.Duration, note string) []Row {
	o, f := Summarize(lat[0]), Summarize(lat[1])
	return []Row{
		{What: what + ", on the owner", Value: fmt.Sprintf("%s p50 / %s p99", Ms(o.P50), Ms(o.P99)), Note: note},
		{What: what + ", forwarded by the other node", Value: fmt.Sprintf("%s p50 / %s p99", Ms(f.P50), Ms(f.P99)),
			Ratio: fmt.Sprintf("%s p50, %s p99 of owner", Ratio(float64(f.P50), float64(o.P50)), Ratio(float64(f.P99), float64(o.P99))),
			Note:  fmt.Sprintf("%s; %s p50", note, signedMs(f.P50-o.P50))},
	}
}

// measureClusterHMR posts updates to each node in turn and takes the time
// until the update message arrives on the socket opened through that node.
func measureClusterHMR(ctx context.Context, env *Env, sides []*clusterNode, info *preview.Info) ([]Row, error) {
	edits := 40
	if env.Quick {
		edits = 8
	}
	token, err := viteToken(ctx, sides[0].client, info.PreviewURL)
	if err != nil {
		return nil, err
	}
	wsURL := info.WSURL + "?token=" + url.QueryEscape(token)
	updates := make([]chan time.Time, len(sides))
	var readers sync.WaitGroup
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	for k, n := range sides {
		c, resp, err := n.dialer.DialContext(ctx, wsURL, http.Header{"Origin": {info.PreviewURL}})
		if err != nil {
			return nil, fmt.Errorf("HMR socket through %s: %w", n.name, err)
		}
		resp.Body.Close()
		conns = append(conns, c)
		if _, msg, err := c.ReadMessage(); err != nil || !bytes.Contains(msg, []byte(`"connected"`)) {
			return nil, fmt.Errorf("HMR socket through %s: first message %q: %v", n.name, msg, err)
		}
		ch := make(chan time.Time, 4*edits)
		updates[k] = ch
		readers.Go(func() {
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if bytes.Contains(msg, []byte(`"type":"update"`)) {
					ch <- time.Now()
				}
			}
		})
	}
	lat := make([][]time.Duration, len(sides))
	for i := range edits + 1 {
		for j := range sides {
			k := (i + j) % len(sides)
			n := sides[k]
			for len(updates[k]) > 0 { // the other side's edits reached this socket too
				<-updates[k]
			}
			body, _ := json.Marshal(preview.UpdateRequest{Files: []preview.File{clusterApp(fmt.Sprintf("edit %d via %s", i, n.name))}})
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- clusterUpdate(ctx, n.client, info.SessionID, body) }()
			// The API may answer before the message reaches the socket (an
			// update is answered as soon as Vite has computed it): the
			// measurement is the socket's arrival either way.
			answered := false
			var at time.Time
		wait:
			for {
				select {
				case at = <-updates[k]:
					break wait
				case err := <-done:
					if err != nil {
						return nil, fmt.Errorf("update through %s: %w", n.name, err)
					}
					answered, done = true, nil
				case <-time.After(10 * time.Second):
					return nil, fmt.Errorf("update through %s: no update message within 10 s", n.name)
				}
			}
			if i > 0 { // the first edit after start is slow for Vite itself
				lat[k] = append(lat[k], at.Sub(start))
			}
			if answered {
				continue
			}
			if err := <-done; err != nil {
				return nil, fmt.Errorf("update through %s: %w", n.name, err)
			}
		}
	}
	env.Log.Info("cluster: updates measured", "edits", edits)
	return clusterRows("update: API POST to update message on the node's socket", lat,
		fmt.Sprintf("%d edits each of src/App.tsx", edits)), nil
}

func clusterUpdate(ctx context.Context, c *http.Client, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, "POST", clusterPublic+preview.DefaultAPIPrefix+"/"+id+"/update", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"hmrTriggered":true`)) {
		return fmt.Errorf("%d %s", res.StatusCode, b)
	}
	return nil
}

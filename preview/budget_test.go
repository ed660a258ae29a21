package preview

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/internal/testenv"
)

// TestConcurrentLargeUpdates is the attack of issue 19 (finding 9):
// sixteen clients send large updates to a real session at once. The bytes
// of the bodies held never exceed Limits.MaxBytesInFlight (the budget's
// own account, and the metric), and every update is applied in the end:
// those that waited too long for their share were answered 503 with
// Retry-After and went through when they tried again.
func TestConcurrentLargeUpdates(t *testing.T) {
	testenv.LookPath(t, "node")
	testenv.LookPath(t, "npm")
	const budget = 3 << 20
	deps := filepath.Join(os.TempDir(), "vitehost-test-preview-deps") // where the other tests keep theirs
	require.NoError(t, os.MkdirAll(deps, 0o755))
	// Registered first, run last: after the Manager's Close.
	t.Cleanup(func() { assert.Empty(t, testenv.NodeProcesses(), "no node process outlives Close") })
	m := newSandboxedManager(t, Options{CacheDir: deps, Limits: Limits{MaxBytesInFlight: budget}})
	_, addr := edgeServer(t, m, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	info, err := m.Create(ctx, &CreateRequest{})
	require.NoError(t, err)

	// Two files of 450 KiB each, base64: a body of 1.2 MB; two fit the
	// budget at once.
	const fileSize = 450 << 10
	blob := func(name string) string {
		b := make([]byte, fileSize)
		rand.Read(b)
		return `{"name":"` + name + `","encoding":"base64","content":"` + base64.StdEncoding.EncodeToString(b) + `"}`
	}
	bodies := make([][]byte, 16)
	for i := range bodies {
		bodies[i] = []byte(`{"files":[` + blob("blobs/a.bin") + "," + blob("blobs/b.bin") + `]}`)
	}
	require.Greater(t, len(bodies)*len(bodies[0]), 5*budget, "the attack asks for more than the budget")
	// The clients ask before they send their bodies, so that they read a
	// 503 instead of a connection closed while they send.
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 2 * time.Minute}}
	url := fmt.Sprintf("http://%s%s/%s/update", addr, DefaultAPIPrefix, info.SessionID)

	// The heap while the updates run, for the log.
	var heapPeak uint64
	stopHeap := make(chan struct{})
	heapDone := make(chan struct{})
	go func() {
		defer close(heapDone)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			heapPeak = max(heapPeak, ms.HeapInuse)
			select {
			case <-stopHeap:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	busy := make(chan int, len(bodies)*8)
	for i, body := range bodies {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
				if !assert.NoError(t, err) {
					return
				}
				req.Host = "localhost:8080"
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Expect", "100-continue")
				res, err := client.Do(req)
				if !assert.NoError(t, err, "update %d", i) {
					return
				}
				answer, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == http.StatusServiceUnavailable {
					busy <- i
					assert.Contains(t, string(answer), CodeUnavailable)
					wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
					if assert.NoError(t, err, "Retry-After") {
						time.Sleep(time.Duration(wait) * time.Second)
					}
					continue
				}
				assert.Equal(t, 200, res.StatusCode, "update %d: %s", i, answer)
				return
			}
		})
	}
	wg.Wait()
	close(stopHeap)
	<-heapDone
	close(busy)

	m.budget.mu.Lock()
	peak, used := m.budget.peak, m.budget.used
	m.budget.mu.Unlock()
	assert.LessOrEqual(t, peak, int64(budget), "bytes in flight stay within the budget")
	assert.Greater(t, peak, int64(len(bodies[0])), "more than one body was held at once")
	assert.Zero(t, used, "every share was given back")
	t.Logf("16 updates of %d bytes: peak bytes in flight %d of %d; %d answers 503; heap in use at most %d MiB",
		len(bodies[0]), peak, budget, len(busy), heapPeak>>20)

	// The last update's files are on disk.
	got, err := os.ReadFile(filepath.Join(m.local(info.SessionID).dir, "blobs", "a.bin"))
	require.NoError(t, err)
	assert.Len(t, got, fileSize)
}

// TestByteBudget checks the semaphore: order of arrival, a waiter that
// leaves, and the bound.
func TestByteBudget(t *testing.T) {
	b := newByteBudget(10, time.Hour)
	ctx := context.Background()
	n, err := b.acquire(ctx, 6)
	require.NoError(t, err)
	assert.EqualValues(t, 6, n)

	// A large waiter first, a small one behind it: the small one does not
	// pass it, though it would fit.
	large := make(chan int64, 1)
	go func() { n, _ := b.acquire(ctx, 8); large <- n }()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.waiters.Len() == 1 }, deadline, time.Millisecond)
	small := make(chan int64, 1)
	go func() { n, _ := b.acquire(ctx, 2); small <- n }()
	require.Eventually(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.waiters.Len() == 2 }, deadline, time.Millisecond)

	// A waiter whose context ends leaves the queue.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.acquire(gone, 1)
	assert.ErrorIs(t, err, context.Canceled)

	b.release(6)
	assert.EqualValues(t, 8, <-large)
	assert.EqualValues(t, 2, <-small)
	b.release(8)
	b.release(2)

	// More than the whole budget takes the whole budget.
	n, err = b.acquire(ctx, 100)
	require.NoError(t, err)
	assert.EqualValues(t, 10, n)
	b.release(n)
	assert.Zero(t, b.used)
	assert.EqualValues(t, 10, b.peak)
}

// TestBudgetFull: while other requests hold the whole budget, an update
// that sent "Expect: 100-continue" is answered 503 with Retry-After before
// it sends its body, and the metric shows the bytes held; once they are
// given back, the same request goes through.
func TestBudgetFull(t *testing.T) {
	const budget = 1 << 20
	m := newSandboxedManager(t, Options{Limits: Limits{MaxBytesInFlight: budget}})
	m.budget.wait = 100 * time.Millisecond
	_, addr := edgeServer(t, m, nil, nil)
	held, err := m.budget.acquire(context.Background(), budget)
	require.NoError(t, err)
	assert.Contains(t, scrapeMetrics(t, m), "vitehost_preview_request_bytes_in_flight 1.048576e+06")

	body := `{"files":[{"name":"src/a.ts","content":"export {}"}]}`
	head := fmt.Sprintf("POST %s/abc123/update HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", DefaultAPIPrefix, len(body))
	c := rawRequest(t, addr, head+"Expect: 100-continue\r\n\r\n")
	res, answer := readResponse(t, c)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "before a 100 Continue: %s", answer)
	assert.Equal(t, "2", res.Header.Get("Retry-After"))
	assert.Contains(t, answer, CodeUnavailable)

	m.budget.release(held)
	c = rawRequest(t, addr, head+"\r\n"+body)
	res, answer = readResponse(t, c)
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "past the budget, to the session it names: %s", answer)
	assert.Contains(t, scrapeMetrics(t, m), "vitehost_preview_request_bytes_in_flight 0")
}

// scrapeMetrics returns the text of m's metrics.
func scrapeMetrics(t *testing.T, m *Manager) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, 200, rec.Code)
	return rec.Body.String()
}

package hotfile_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vitehost/vitehost/hotfile"
)

// wait is how long a test waits for the watcher to see a change: far longer
// than it ever takes, so that a loaded machine does not fail the test.
const wait = 10 * time.Second

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func str(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

func waitTargets(t *testing.T, w *hotfile.Watcher, http, hmr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		got := w.Targets()
		return str(got.HTTP) == http && str(got.HMR) == hmr
	}, wait, 2*time.Millisecond, "want http=%q hmr=%q, have %+v", http, hmr, w.Targets())
}

// syncBuffer is a log sink that tests read while the watcher writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func watch(t *testing.T, path string) (*hotfile.Watcher, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	w, err := hotfile.Watch(path, &hotfile.WatchOptions{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, w.Close()) })
	return w, logs
}

func TestWatcherReadsExistingFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	require.NoError(t, hotfile.Write(hotfile.HMRPath(path), mustURL("http://127.0.0.1:24678")))
	w, _ := watch(t, path)
	// Read before Watch returns: no waiting.
	assert.Equal(t, "http://127.0.0.1:5173", str(w.Targets().HTTP))
	assert.Equal(t, "http://127.0.0.1:24678", str(w.Targets().HMR))
}

func TestWatcherCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	w, _ := watch(t, path)
	assert.Equal(t, hotfile.Targets{}, w.Targets(), "no file, no target")
	ch, cancel := w.Subscribe()
	defer cancel()

	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	select {
	case got := <-ch:
		assert.Equal(t, "http://127.0.0.1:5173", str(got.HTTP))
		assert.Nil(t, got.HMR)
	case <-time.After(wait):
		t.Fatal("no notification for the new hot file")
	}
	require.NoError(t, hotfile.Write(hotfile.HMRPath(path), mustURL("http://127.0.0.1:24678")))
	waitTargets(t, w, "http://127.0.0.1:5173", "http://127.0.0.1:24678")
}

func TestWatcherAtomicReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	w, _ := watch(t, path)
	// Three replaces by rename: a watch on the file itself would have lost
	// track after the first.
	for _, port := range []int{5174, 5175, 5176} {
		want := fmt.Sprintf("http://127.0.0.1:%d", port)
		require.NoError(t, hotfile.Write(path, mustURL(want)))
		waitTargets(t, w, want, "")
	}
}

func TestWatcherInPlaceWrite(t *testing.T) {
	// laravel-vite-plugin writes with fs.writeFileSync: truncate, then write.
	path := filepath.Join(t.TempDir(), "hot")
	w, _ := watch(t, path)
	require.NoError(t, os.WriteFile(path, []byte("http://localhost:5173"), 0o644))
	waitTargets(t, w, "http://localhost:5173", "")
	require.NoError(t, os.WriteFile(path, []byte("http://localhost:5180/build\n"), 0o644))
	waitTargets(t, w, "http://localhost:5180/build", "")
}

func TestWatcherDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	require.NoError(t, hotfile.Write(hotfile.HMRPath(path), mustURL("http://127.0.0.1:24678")))
	w, _ := watch(t, path)
	require.NoError(t, hotfile.Remove(hotfile.HMRPath(path)))
	waitTargets(t, w, "http://127.0.0.1:5173", "")
	require.NoError(t, hotfile.Remove(path))
	waitTargets(t, w, "", "")
}

func TestWatcherInvalidContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	w, logs := watch(t, path)
	require.NoError(t, hotfile.WriteFile(path, []byte("garbage\x00\xff"), 0o644))
	waitTargets(t, w, "", "")
	require.Eventually(t, func() bool {
		return bytes.Contains([]byte(logs.String()), []byte("level=ERROR")) &&
			bytes.Contains([]byte(logs.String()), []byte(path))
	}, wait, 5*time.Millisecond, "the invalid file is logged with its path: %s", logs)

	// A directory where the file should be is unreadable, not a panic.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o755))
	require.NoError(t, hotfile.Write(hotfile.HMRPath(path), mustURL("http://127.0.0.1:24678")))
	waitTargets(t, w, "", "http://127.0.0.1:24678")

	require.NoError(t, os.Remove(path))
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	waitTargets(t, w, "http://127.0.0.1:5173", "http://127.0.0.1:24678")
}

func TestWatcherDirectoryCreatedLate(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "public", "hot")
	w, _ := watch(t, path)
	assert.Equal(t, hotfile.Targets{}, w.Targets())

	// The dev server creates the directories and the file in one go.
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	waitTargets(t, w, "http://127.0.0.1:5173", "")

	// The directory is removed and created again (a clean build).
	require.NoError(t, os.RemoveAll(filepath.Join(root, "a")))
	waitTargets(t, w, "", "")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, hotfile.Write(hotfile.HMRPath(path), mustURL("http://127.0.0.1:24678")))
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5174")))
	waitTargets(t, w, "http://127.0.0.1:5174", "http://127.0.0.1:24678")
}

func TestWatcherBurstCoalesced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	logs := &syncBuffer{}
	w, err := hotfile.Watch(path, &hotfile.WatchOptions{
		// Long enough that the whole burst falls inside one wait on any machine.
		Debounce: 500 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
	})
	require.NoError(t, err)
	defer w.Close()
	ch, cancel := w.Subscribe()
	defer cancel()

	for i := range 50 {
		require.NoError(t, hotfile.Write(path, mustURL(fmt.Sprintf("http://127.0.0.1:%d", 6000+i))))
	}
	var got hotfile.Targets
	select {
	case got = <-ch:
	case <-time.After(wait):
		t.Fatal("no notification")
	}
	assert.Equal(t, "http://127.0.0.1:6049", str(got.HTTP), "the burst arrives as its final value")
	select {
	case more := <-ch:
		t.Fatalf("a second notification for one burst: %+v", more)
	case <-time.After(time.Second):
	}
}

func TestWatcherCloseWhileSubscriberNotReading(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	w, err := hotfile.Watch(path, &hotfile.WatchOptions{Debounce: time.Millisecond})
	require.NoError(t, err)
	ch, _ := w.Subscribe() // never read until after Close
	for i := range 5 {
		require.NoError(t, hotfile.Write(path, mustURL(fmt.Sprintf("http://127.0.0.1:%d", 7000+i))))
		waitTargets(t, w, fmt.Sprintf("http://127.0.0.1:%d", 7000+i), "")
	}
	closed := make(chan error)
	go func() { closed <- w.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("Close blocked on a subscriber that does not read")
	}
	got, ok := <-ch
	assert.True(t, ok, "the newest value is still buffered")
	assert.Equal(t, "http://127.0.0.1:7004", str(got.HTTP))
	_, ok = <-ch
	assert.False(t, ok, "the channel is closed")

	require.NoError(t, w.Close(), "Close is idempotent")
	after, _ := w.Subscribe()
	_, ok = <-after
	assert.False(t, ok, "Subscribe after Close gives a closed channel")
}

func TestWatcherCancelSubscription(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	w, _ := watch(t, path)
	ch, cancel := w.Subscribe()
	cancel()
	cancel() // safe twice
	_, ok := <-ch
	assert.False(t, ok)
	require.NoError(t, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	waitTargets(t, w, "http://127.0.0.1:5173", "")
}

func TestWatcherConcurrentReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hot")
	w, err := hotfile.Watch(path, &hotfile.WatchOptions{Debounce: time.Millisecond})
	require.NoError(t, err)
	defer w.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if tg := w.Targets(); tg.HTTP != nil && tg.HTTP.Host == "" {
					panic("torn read")
				}
			}
		})
	}
	for i := range 20 {
		require.NoError(t, hotfile.Write(path, mustURL(fmt.Sprintf("http://127.0.0.1:%d", 8000+i))))
	}
	waitTargets(t, w, "http://127.0.0.1:8019", "")
	close(stop)
	wg.Wait()
}

func BenchmarkTargets(b *testing.B) {
	path := filepath.Join(b.TempDir(), "hot")
	require.NoError(b, hotfile.Write(path, mustURL("http://127.0.0.1:5173")))
	require.NoError(b, hotfile.Write(hotfile.HMRPath(path), mustURL("http://127.0.0.1:24678")))
	w, err := hotfile.Watch(path, nil)
	require.NoError(b, err)
	defer w.Close()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w.Targets().HTTP == nil {
				b.Fatal("no target")
			}
		}
	})
}

// BenchmarkRewriteToSubscriber measures how long an atomic rewrite of the hot
// file takes to reach a subscriber, with the default debounce and with none
// to speak of (what the file system notification itself costs).
func BenchmarkRewriteToSubscriber(b *testing.B) {
	for _, d := range []time.Duration{hotfile.DefaultDebounce, time.Microsecond} {
		b.Run("debounce="+d.String(), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "hot")
			w, err := hotfile.Watch(path, &hotfile.WatchOptions{Debounce: d})
			require.NoError(b, err)
			defer w.Close()
			ch, cancel := w.Subscribe()
			defer cancel()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				require.NoError(b, hotfile.Write(path, mustURL(fmt.Sprintf("http://127.0.0.1:%d", 10000+i%50000))))
				<-ch
			}
		})
	}
}

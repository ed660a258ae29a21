package testenv

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// Logger returns a logger that writes to the test's log until the test's
// cleanups have run; lines that come later (a goroutine still winding down)
// are dropped instead of panicking. Register it before anything whose
// Close logs, so that its cleanup runs last.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// Writer returns an io.Writer that logs each write as a line of the test's
// log, with Logger's rule for writes after the test's cleanups.
func Writer(t testing.TB) io.Writer {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

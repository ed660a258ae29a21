package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCachedOnceFillsOnce has concurrent callers ask for the same entry:
// one fill runs, and all get the path inside the complete directory.
func TestCachedOnceFillsOnce(t *testing.T) {
	cache := t.TempDir()
	var fills atomic.Int32
	fill := func(stage string) error {
		fills.Add(1)
		return os.WriteFile(filepath.Join(stage, "done"), []byte("x"), 0o644)
	}
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = cachedOnce(cache, "app", "k1", "done", fill)
		}()
	}
	wg.Wait()
	want := filepath.Join(cache, "app-k1", "done")
	for i := range paths {
		if errs[i] != nil || paths[i] != want {
			t.Fatalf("caller %d: %q, %v; want %q", i, paths[i], errs[i], want)
		}
	}
	if n := fills.Load(); n != 1 {
		t.Fatalf("fill ran %d times, want 1", n)
	}
}

// TestCachedOnceFailedFill checks that a fill that fails leaves neither the
// final directory nor its staging directory, and that the next call fills.
func TestCachedOnceFailedFill(t *testing.T) {
	cache := t.TempDir()
	boom := errors.New("boom")
	_, err := cachedOnce(cache, "app", "k1", "done", func(stage string) error {
		os.WriteFile(filepath.Join(stage, "done"), []byte("half"), 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if e.IsDir() {
			t.Fatalf("left %s after a failed fill", e.Name())
		}
	}
	p, err := cachedOnce(cache, "app", "k1", "done", func(stage string) error {
		return os.WriteFile(filepath.Join(stage, "done"), []byte("x"), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "x" {
		t.Fatalf("read %s: %q, %v", p, b, err)
	}
}

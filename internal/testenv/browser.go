package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium for one test, driven through chromedp.
type Browser struct {
	// Ctx runs chromedp actions in the browser's first tab.
	Ctx context.Context

	mu      sync.Mutex
	sockets []string
}

// chromiumPath finds Debian's chromium (or another Chrome) on this machine.
func chromiumPath() string {
	if p := os.Getenv("VITEHOST_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// NewBrowser starts headless Chromium with a fresh profile and returns it;
// the test's cleanup ends the browser and every process it started. A
// missing Chromium skips the test outside CI and fails it under CI.
func NewBrowser(t testing.TB) *Browser {
	t.Helper()
	Short(t)
	if chromiumPath() == "" {
		Missing(t, "chromium not found (Debian: apt-get install chromium)")
	}
	b, stop, err := StartBrowser()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return b
}

// StartBrowser starts headless Chromium with a fresh profile, for code that
// is not a test (the benchmark); stop ends the browser and every process it
// started, removes the profile, and returns once they are gone.
func StartBrowser() (b *Browser, stop func() error, err error) {
	path := chromiumPath()
	if path == "" {
		return nil, nil, errors.New("chromium not found (Debian: apt-get install chromium)")
	}
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile for a moment after the browser has exited, and t.TempDir's
	// removal fails the test then ("directory not empty").
	profile, err := os.MkdirTemp("", "vitehost-chromium-")
	if err != nil {
		return nil, nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		// Without these, Chromium keeps dialling Google's hosts, which a
		// closed network refuses many at a time.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b = &Browser{Ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventWebSocketCreated:
			b.mu.Lock()
			b.sockets = append(b.sockets, e.URL)
			b.mu.Unlock()
		}
	})
	stop = func() error {
		cancelCtx()
		cancelAlloc() // waits for the browser process to exit
		for range 100 {
			if os.RemoveAll(profile) == nil {
				return nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		return fmt.Errorf("the Chromium profile %s could not be removed", profile)
	}
	if err := chromedp.Run(ctx, network.Enable()); err != nil {
		stop()
		return nil, nil, fmt.Errorf("start chromium: %w", err)
	}
	return b, stop, nil
}

// WebSockets returns the URLs of the WebSockets the page has opened so far.
func (b *Browser) WebSockets() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.sockets...)
}

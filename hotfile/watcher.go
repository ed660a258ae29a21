package hotfile

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vitehost/vitehost/internal/latest"
)

// DefaultDebounce is how long a Watcher waits after the last change in a
// burst before it reads the files again. A dev server writes hot and hot.hmr
// one after the other; one wait covers both.
const DefaultDebounce = 20 * time.Millisecond

// Targets is where a dev server listens. A nil URL means no target: the file
// is missing or does not hold a valid URL. The URLs are shared between all
// readers and must not be modified.
type Targets struct {
	// HTTP is the URL of the hot file: pages, modules and the app's own
	// WebSockets go there.
	HTTP *url.URL
	// HMR is the URL of the HMR companion file: Vite's HMR WebSocket listens
	// there when it has a port of its own.
	HMR *url.URL
}

// Equal reports whether t and o name the same URLs.
func (t Targets) Equal(o Targets) bool {
	return sameURL(t.HTTP, o.HTTP) && sameURL(t.HMR, o.HMR)
}

func sameURL(a, b *url.URL) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// WatchOptions configures a Watcher. A nil *WatchOptions means the defaults.
type WatchOptions struct {
	// Debounce is how long to wait after the last event of a burst before
	// reading the files. Zero means DefaultDebounce.
	Debounce time.Duration

	// Logger receives the errors of unreadable or invalid hot files and of the
	// file system watch. Nil means slog.Default().
	Logger *slog.Logger
}

// Watcher follows a hot file and its HMR companion. It watches the parent
// directory, not the files, because a watch on a file is lost when an atomic
// writer replaces it; when the directory does not exist yet it watches the
// nearest existing ancestor until the directory appears.
//
// Targets may be called from any number of goroutines.
type Watcher struct {
	path, hmrPath, dir string
	debounce           time.Duration
	log                *slog.Logger

	cur  atomic.Pointer[Targets]
	fsw  *fsnotify.Watcher
	dirs []string // the watched directory, then its ancestors up to the root

	watched string // the directory the fsnotify watch is on; owned by run

	subs latest.Subscribers[Targets]

	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Watch starts watching the hot file at path and its HMR companion. The
// targets are read before Watch returns. The parent directory need not exist.
func Watch(path string, opts *WatchOptions) (*Watcher, error) {
	var o WatchOptions
	if opts != nil {
		o = *opts
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		path:     abs,
		hmrPath:  HMRPath(abs),
		dir:      filepath.Dir(abs),
		debounce: o.Debounce,
		log:      o.Logger.With("hotfile", abs),
		fsw:      fsw,
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	for d := w.dir; ; d = filepath.Dir(d) {
		w.dirs = append(w.dirs, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := w.rewatch(); err != nil {
		fsw.Close()
		return nil, err
	}
	w.cur.Store(&Targets{})
	w.reload()
	go w.run()
	return w, nil
}

// Path returns the absolute path of the hot file.
func (w *Watcher) Path() string { return w.path }

// Targets returns the current targets. It costs one atomic load.
func (w *Watcher) Targets() Targets { return *w.cur.Load() }

// Subscribe returns a channel that receives the targets each time they
// change, and a function that ends the subscription. The channel holds only
// the newest targets: a subscriber that reads late gets the current value,
// and a subscriber that does not read never blocks the Watcher. The channel
// is closed by cancel and by Close; after Close, Subscribe returns a closed
// channel.
func (w *Watcher) Subscribe() (<-chan Targets, func()) { return w.subs.Subscribe() }

// Close stops watching, closes the subscription channels and returns when
// the Watcher's goroutine has ended. It is safe to call more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		close(w.closing)
		w.closeErr = w.fsw.Close()
		<-w.done
		w.subs.Close()
	})
	return w.closeErr
}

func (w *Watcher) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-w.closing:
			timer.Stop()
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.onAncestorPath(ev.Name) {
				// The directory, or one on the way to it, appeared or went
				// away: move the watch now, so that files created right after
				// are seen, and read the files after the burst.
				if err := w.rewatch(); err != nil {
					w.log.Error("vitehost/hotfile: watch", "err", err)
				}
				timer.Reset(w.debounce)
			} else if ev.Name == w.path || ev.Name == w.hmrPath {
				timer.Reset(w.debounce)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// An overflow means events were lost: read the files again.
			w.log.Error("vitehost/hotfile: watch", "err", err)
			timer.Reset(w.debounce)
		case <-timer.C:
			if err := w.rewatch(); err != nil {
				w.log.Error("vitehost/hotfile: watch", "err", err)
			}
			w.reload()
		}
	}
}

// onAncestorPath reports whether name is the hot file's directory or one of
// its ancestors.
func (w *Watcher) onAncestorPath(name string) bool {
	for _, d := range w.dirs {
		if name == d {
			return true
		}
	}
	return false
}

// rewatch puts the fsnotify watch on the hot file's directory, or on its
// nearest existing ancestor while the directory does not exist.
func (w *Watcher) rewatch() error {
	var err error
	for _, d := range w.dirs {
		if d == w.watched {
			// Still there? A removed directory loses its watch silently.
			if st, serr := os.Stat(d); serr == nil && st.IsDir() {
				return nil
			}
			w.fsw.Remove(d)
			w.watched = ""
			continue
		}
		st, serr := os.Stat(d)
		if serr != nil || !st.IsDir() {
			continue
		}
		if err = w.fsw.Add(d); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed between Stat and Add
			}
			return err
		}
		if w.watched != "" {
			w.fsw.Remove(w.watched)
		}
		w.watched = d
		return nil
	}
	return err
}

// reload reads both files, publishes the targets and notifies the
// subscribers when they changed.
func (w *Watcher) reload() {
	next := Targets{HTTP: w.read(w.path), HMR: w.read(w.hmrPath)}
	if next.Equal(*w.cur.Load()) {
		return
	}
	w.cur.Store(&next)
	w.log.Debug("vitehost/hotfile: targets changed", "http", urlString(next.HTTP), "hmr", urlString(next.HMR))
	w.subs.Send(next)
}

func (w *Watcher) read(path string) *url.URL {
	u, err := Read(path)
	switch {
	case err == nil:
		return u
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, errEmpty):
		// A writer that truncates before it writes (fs.writeFileSync) shows
		// an empty file for a moment; its next event brings the URL.
		w.log.Debug("vitehost/hotfile: empty hot file", "path", path)
	default:
		w.log.Error("vitehost/hotfile: no target", "path", path, "err", err)
	}
	return nil
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

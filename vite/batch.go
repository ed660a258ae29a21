package vite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// This file is the Go side of the runner's batches (see
// internal/runner/lib/batch.mjs): a set of file changes that Vite handles
// once all of them are on disk, and whose outcome the runner reports as
// soon as Vite knows it.

// BatchResult is what Vite did with a batch of file changes.
type BatchResult struct {
	// Updates are the modules Vite hot-updated; the pages got them in one
	// update message.
	Updates []HotUpdate `json:"updates"`
	// FullReload says that Vite told the pages to reload instead, and
	// ReloadPath which page ("*" for every page).
	FullReload bool   `json:"fullReload"`
	ReloadPath string `json:"reloadPath"`
	// Restarted says that a file of the batch (the config file, a file it
	// imports, an env file) made Vite restart itself; FullReload is set too.
	Restarted bool `json:"restarted"`
	// Errors are the compile errors of the batch's modules that the pages
	// had loaded, and of the modules they import that are in the batch or
	// new to the pages.
	Errors []CompileError `json:"errors"`
	// Incomplete says that the dev server stopped waiting before Vite had
	// handled every file (a plugin failed on one, say): the rest of the
	// result is what it saw until then.
	Incomplete bool `json:"incomplete"`
}

// HotUpdate is one module of a hot update, as Vite's update message names it.
type HotUpdate struct {
	// Type is "js-update" or "css-update".
	Type string `json:"type"`
	// Path is the URL path of the module that takes the update, and
	// AcceptedPath that of the changed module it takes it for.
	Path         string `json:"path"`
	AcceptedPath string `json:"acceptedPath"`
	// Timestamp is the update's version, which the pages put in the URL.
	Timestamp int64 `json:"timestamp"`
}

// CompileError is code that Vite could not transform.
type CompileError struct {
	Message string `json:"message"`
	// File is relative to the project directory, with forward slashes.
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	// Frame is the code around the error, as Vite prints it.
	Frame  string `json:"frame,omitempty"`
	Plugin string `json:"plugin,omitempty"`
}

// Limits on what a batch's outcome and an event carry: the runner shares
// its process with the project's code, so its lines are checked like any
// input.
const (
	maxUpdates    = 1000
	maxErrors     = 100
	maxPath       = 4 << 10
	maxStack      = 16 << 10
	maxBatchPaths = 100_000
)

// ErrReleased: the hold ended (Release, its context, the end of its run)
// before Commit, which then has no outcome to wait for.
var ErrReleased = errors.New("vitehost/vite: batch hold released")

// Hold has the dev server (plain Vite) hold its file watcher's events for a
// set of file changes, so that Vite handles them as one once they are all
// on disk (Hold.Commit). files are the files the caller will create or
// replace and deleted those it will remove, relative to Dir. Hold returns
// once the dev server holds them: the caller then writes the files and
// calls Commit, whose result is what Vite did; the pages never fetch an
// importer whose imports are not written yet.
//
// ctx bounds the wait for the hold and the hold itself: when it ends
// before Commit, the hold is released as by Release. Hold returns
// ErrInvalidOptions (not plain Vite, a path outside Dir), ErrNotRunning
// (the dev server is down or restarting, or stopped during the call) or
// ctx's error, and then holds nothing: files written anyway reach Vite
// through its watcher. Holds may overlap; the dev server handles their
// commits one at a time, in the order they come. Edits made on disk by
// other means keep reaching Vite through its watcher meanwhile.
func (s *Server) Hold(ctx context.Context, files, deleted []string) (*Hold, error) {
	if s.fw != Vite {
		return nil, fmt.Errorf("%w: Hold needs plain Vite; %s watches its files itself", ErrInvalidOptions, s.fw)
	}
	line, err := holdLine(files, deleted)
	if err != nil {
		return nil, err
	}
	st := s.cur.Load()
	if st == nil || st.child == nil {
		return nil, fmt.Errorf("%w: the changes reach it through its file watcher once it is back", ErrNotRunning)
	}
	var stopping <-chan struct{}
	if s.ctx != nil {
		stopping = s.ctx.Done()
	}
	return st.child.batches.hold(ctx, st.child, stopping, line)
}

// Hold is a batch of file changes whose watcher events the dev server
// holds (see Server.Hold) until Commit or Release. Its methods may be
// called from any goroutine.
type Hold struct {
	c        *child
	id       uint64
	stopping <-chan struct{} // closed when the Server stops
	held     chan struct{}   // closed when the runner holds the files
	done     chan *BatchResult
	ended    atomic.Bool // committed or released: its commit or release line went out
	stopCtx  func() bool // ends the release on the hold's context; set before Hold returns
}

// Commit tells the dev server that the held files are on disk: Vite
// handles all of them at once, each on the whole new state of the disk,
// and Commit returns what it did as soon as it has done it. The commit goes
// out whatever ctx says; ctx bounds only the wait for the outcome, and
// when it ends first the runner stops waiting for Vite's handling of the
// batch too (a project's hook that never returns holds no later batch).
// Commit returns ErrReleased after Release (or the end of Hold's context), and
// ErrNotRunning when the run ended first.
func (h *Hold) Commit(ctx context.Context) (*BatchResult, error) {
	h.stopCtx()
	if !h.ended.CompareAndSwap(false, true) {
		return nil, ErrReleased
	}
	defer h.c.batches.forget(h.id)
	if err := h.c.send(endLine("commit", h.id)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	select {
	case res := <-h.done:
		return res, nil
	case <-h.c.exited:
		return nil, fmt.Errorf("%w: it exited during the batch", ErrNotRunning)
	case <-h.stopping:
		return nil, fmt.Errorf("%w: it is stopping", ErrNotRunning)
	case <-ctx.Done():
		// The runner stops waiting for what the project's plugins do
		// with the batch, so that the batches after it are not held.
		h.c.send(endLine("abandon", h.id))
		return nil, ctx.Err()
	}
}

// Release ends the hold without waiting for an outcome: Vite handles the
// held files as they are now, written or not. It is safe to call more than
// once, and after Commit, when it does nothing.
func (h *Hold) Release() {
	h.stopCtx()
	h.release()
}

// release ends the hold unless it has ended: the runner's release line
// (internal/runner/lib/batch.mjs) has Vite take the files as they are, in
// order with the commits, and answers nothing. A run that is gone holds
// nothing.
func (h *Hold) release() {
	if h.ended.CompareAndSwap(false, true) {
		h.c.batches.forget(h.id)
		h.c.send(endLine("release", h.id))
	}
}

// batches is the batch state of one run of the runner: its ids mean
// something to that process only.
type batches struct {
	seq     atomic.Uint64 // the last batch's id
	mu      sync.Mutex
	pending map[uint64]*Hold // the holds that wait for an answer
}

// hold sends the hold line for a new batch of c and waits for the runner
// to hold its files.
func (b *batches) hold(ctx context.Context, c *child, stopping <-chan struct{}, line func(id uint64) []byte) (*Hold, error) {
	h := &Hold{c: c, id: b.seq.Add(1), stopping: stopping, held: make(chan struct{}), done: make(chan *BatchResult, 1)}
	b.mu.Lock()
	if b.pending == nil {
		b.pending = map[uint64]*Hold{}
	}
	b.pending[h.id] = h
	b.mu.Unlock()
	if err := c.send(line(h.id)); err != nil {
		h.ended.Store(true)
		b.forget(h.id)
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	var err error
	select {
	case <-h.held:
		h.stopCtx = context.AfterFunc(ctx, h.release)
		return h, nil
	case <-c.exited:
		err = fmt.Errorf("%w: it exited", ErrNotRunning)
	case <-stopping:
		err = fmt.Errorf("%w: it is stopping", ErrNotRunning)
	case <-ctx.Done():
		err = ctx.Err()
	}
	h.release() // the runner may hold the files by now
	return nil, err
}

// forget drops the hold id from the holds that wait for an answer.
func (b *batches) forget(id uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, id)
}

// answer hands the runner's answer m (held, batch) to the hold that waits
// for it, if any: one whose caller gave up is gone.
func (b *batches) answer(m message) {
	b.mu.Lock()
	h := b.pending[m.ID]
	b.mu.Unlock()
	if h == nil {
		return
	}
	switch m.Kind {
	case msgHeld:
		select {
		case <-h.held:
		default:
			close(h.held)
		}
	case msgBatch:
		select {
		case h.done <- m.Batch:
		default:
		}
	}
}

// holdLine checks the paths of a batch and returns the encoder of its hold
// message for an id.
func holdLine(files, deleted []string) (func(id uint64) []byte, error) {
	if len(files)+len(deleted) > maxBatchPaths {
		return nil, fmt.Errorf("%w: a batch of more than %d files", ErrInvalidOptions, maxBatchPaths)
	}
	clean := func(list []string) ([]string, error) {
		out := make([]string, 0, len(list))
		for _, p := range list {
			if !filepath.IsLocal(p) || strings.ContainsRune(p, 0) {
				return nil, fmt.Errorf("%w: batch path %q is not a path inside the project", ErrInvalidOptions, p)
			}
			out = append(out, filepath.ToSlash(filepath.Clean(p)))
		}
		return out, nil
	}
	f, err := clean(files)
	if err != nil {
		return nil, err
	}
	d, err := clean(deleted)
	if err != nil {
		return nil, err
	}
	return func(id uint64) []byte {
		b, _ := json.Marshal(struct {
			Kind    string   `json:"vitehost"`
			ID      uint64   `json:"id"`
			Files   []string `json:"files"`
			Deleted []string `json:"deleted"`
		}{"hold", id, f, d})
		return append(b, '\n')
	}, nil
}

// endLine returns the line that ends batch id's hold: "commit", answered
// by the batch's outcome, or "release", answered by nothing; or the line
// "abandon", which tells the runner that the commit's outcome is no longer
// awaited.
func endLine(kind string, id uint64) []byte {
	return fmt.Appendf(nil, `{"vitehost":%q,"id":%d}`+"\n", kind, id)
}

// clean makes a result read from the runner safe to hand on: limited
// lengths, printable text.
func (r *BatchResult) clean() {
	if len(r.Updates) > maxUpdates {
		r.Updates, r.Incomplete = r.Updates[:maxUpdates], true
	}
	for i := range r.Updates {
		r.Updates[i].clean()
	}
	if len(r.Errors) > maxErrors {
		r.Errors = r.Errors[:maxErrors]
	}
	for i := range r.Errors {
		r.Errors[i].clean()
	}
	r.ReloadPath = clip(r.ReloadPath, maxPath)
}

func (u *HotUpdate) clean() {
	u.Type = clip(u.Type, 32)
	u.Path = clip(u.Path, maxPath)
	u.AcceptedPath = clip(u.AcceptedPath, maxPath)
}

func (e *CompileError) clean() {
	e.Message = clip(e.Message, maxErrorText)
	e.File = clip(e.File, maxPath)
	e.Frame = clip(e.Frame, maxErrorText)
	e.Plugin = clip(e.Plugin, 256)
	e.Line, e.Column = max(e.Line, 0), max(e.Column, 0)
}

// clip returns s as plain text (see plainText), without a stray escape
// character, of at most n bytes.
func clip(s string, n int) string {
	s = strings.ReplaceAll(plainText(s), "\x1b", "")
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") // without the cut rune's first bytes
}

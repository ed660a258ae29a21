package vite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// This file is the Go side of the runner's batches (see the batches section
// of internal/runner/runner.mjs): a set of file changes that Vite handles
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

// Batch has the dev server (plain Vite) handle a set of file changes as one.
// files are the files that write creates or replaces and deleted those it
// removes, relative to Dir. Batch makes the dev server hold its file
// watcher's events for them, calls write, and then has Vite handle all of
// them at once, each on the whole new state of the disk: the pages never
// fetch an importer whose imports are not written yet. It returns what
// Vite did, as soon as Vite has done it.
//
// write is called exactly once, unless Batch returns ErrInvalidOptions
// (not plain Vite, a path outside Dir). When write fails, Batch returns its
// error and no result. When the dev server cannot take the batch (it is
// down or restarting, ctx ends first), write is still called, the changes
// reach Vite through its watcher, and Batch returns ErrNotRunning or ctx's
// error. Batches run one at a time; edits made on disk by other means keep
// reaching Vite through its watcher meanwhile.
func (s *Server) Batch(ctx context.Context, files, deleted []string, write func() error) (*BatchResult, error) {
	if s.fw != Vite {
		return nil, fmt.Errorf("%w: Batch needs plain Vite; %s watches its files itself", ErrInvalidOptions, s.fw)
	}
	if write == nil {
		return nil, fmt.Errorf("%w: Batch without a write function", ErrInvalidOptions)
	}
	hold, err := holdLine(files, deleted)
	if err != nil {
		return nil, err
	}
	select {
	case s.batchTurn <- struct{}{}:
	case <-ctx.Done():
		return nil, writeOr(write, ctx.Err())
	}
	defer func() { <-s.batchTurn }()

	st := s.cur.Load()
	if st == nil {
		return nil, writeOr(write, fmt.Errorf("%w: the changes reach it through its file watcher once it is back", ErrNotRunning))
	}
	c := st.child
	id := s.batchSeq.Add(1)
	call := &batchCall{held: make(chan struct{}), done: make(chan *BatchResult, 1)}
	s.calls.Store(id, call)
	defer s.calls.Delete(id)

	if err := c.send(hold(id)); err != nil {
		return nil, writeOr(write, fmt.Errorf("%w: %v", ErrNotRunning, err))
	}
	var holdErr error
	select {
	case <-call.held:
	case <-c.exited:
		holdErr = fmt.Errorf("%w: it exited", ErrNotRunning)
	case <-s.ctx.Done():
		holdErr = fmt.Errorf("%w: it is stopping", ErrNotRunning)
	case <-ctx.Done():
		holdErr = ctx.Err()
	}
	werr := write()
	// The commit goes out whatever happened: it releases the hold, and Vite
	// handles whatever write changed.
	if err := c.send(commitLine(id)); err != nil && holdErr == nil {
		holdErr = fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	switch {
	case werr != nil:
		return nil, werr
	case holdErr != nil:
		return nil, holdErr
	}
	select {
	case res := <-call.done:
		return res, nil
	case <-c.exited:
		return nil, fmt.Errorf("%w: it exited during the batch", ErrNotRunning)
	case <-s.ctx.Done():
		return nil, fmt.Errorf("%w: it is stopping", ErrNotRunning)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// writeOr calls write and returns its error, or err when it succeeds.
func writeOr(write func() error, err error) error {
	if werr := write(); werr != nil {
		return werr
	}
	return err
}

// batchCall is a Batch waiting for the runner's answers.
type batchCall struct {
	held chan struct{}     // closed when the runner holds the files
	done chan *BatchResult // receives the outcome
}

// onBatchMessage hands the runner's answer m to the Batch that waits for
// it, if any (a Batch whose context ended has stopped waiting).
func (s *Server) onBatchMessage(m message) {
	v, ok := s.calls.Load(m.ID)
	if !ok {
		return
	}
	call := v.(*batchCall)
	switch m.Kind {
	case msgHeld:
		select {
		case <-call.held:
		default:
			close(call.held)
		}
	case msgBatch:
		select {
		case call.done <- m.Batch:
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

func commitLine(id uint64) []byte {
	return fmt.Appendf(nil, `{"vitehost":"commit","id":%d}`+"\n", id)
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

package vite

import (
	"errors"
	"fmt"
)

// EventType says what an Event reports.
type EventType string

// The types of Event.
const (
	// EventHMR: Vite sent the pages a hot update or a reload that no batch
	// caused (an edit on disk by other means).
	EventHMR EventType = "hmr"
	// EventCompileError: Vite sent the pages a compile error outside a
	// batch (found by a page's request, or by an edit by other means).
	EventCompileError EventType = "compile-error"
	// EventClientError: a page reported a runtime error
	// (Options.ClientErrors).
	EventClientError EventType = "client-error"
	// EventWatcherError: the kernel refused the dev server a file watcher
	// (the inotify instances or watches of its user are used up), so that
	// edits on disk reach no page; LimitErr then wraps ErrWatcherLimit.
	EventWatcherError EventType = "watcher-error"
)

// Event is something the dev server reports as it happens (see
// Options.OnEvent).
type Event struct {
	Type EventType
	// Updates, FullReload and ReloadPath are what Vite sent the pages
	// (EventHMR), as in BatchResult.
	Updates    []HotUpdate
	FullReload bool
	ReloadPath string
	// Error is the compile error (EventCompileError).
	Error *CompileError
	// Client is the page's runtime error (EventClientError).
	Client *ClientError
	// Watcher is why the dev server has no file watcher
	// (EventWatcherError): "EMFILE" (inotify instances) or "ENOSPC"
	// (inotify watches), and the message.
	Watcher *WatcherError
}

// WatcherError is the kernel's refusal of a file watcher.
type WatcherError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ClientError is a runtime error that a page reported.
type ClientError struct {
	// Kind is "error" (uncaught), "unhandledrejection", "module-load" (a
	// module script or a dynamic import that failed to load) or
	// "console.error".
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// Page is the URL of the page.
	Page string `json:"page"`
	// Stack is the error's stack, its frames mapped to the project's files
	// where Vite's source maps allow ("at App (src/App.tsx:12:5)").
	Stack string `json:"stack,omitempty"`
	// File, Line and Column are the first frame in the project's own files
	// (relative to the project directory, lines and columns from 1), empty
	// when no frame maps to one.
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// runnerEvent is the payload of an event line.
type runnerEvent struct {
	Type       EventType     `json:"type"`
	Updates    []HotUpdate   `json:"updates"`
	FullReload bool          `json:"fullReload"`
	ReloadPath string        `json:"reloadPath"`
	Error      *CompileError `json:"error"`
	Code       string        `json:"code"` // watcher-error
	ClientError
}

// event checks the payload and returns it as an Event.
func (e *runnerEvent) event() (Event, error) {
	switch e.Type {
	case EventHMR:
		if len(e.Updates) > maxUpdates {
			e.Updates = e.Updates[:maxUpdates]
		}
		for i := range e.Updates {
			e.Updates[i].clean()
		}
		return Event{Type: EventHMR, Updates: e.Updates, FullReload: e.FullReload, ReloadPath: clip(e.ReloadPath, maxPath)}, nil
	case EventCompileError:
		if e.Error == nil {
			return Event{}, errors.New("compile-error without error")
		}
		e.Error.clean()
		return Event{Type: EventCompileError, Error: e.Error}, nil
	case EventClientError:
		c := e.ClientError
		switch c.Kind {
		case "error", "unhandledrejection", "module-load", "console.error":
		default:
			return Event{}, fmt.Errorf("client error of kind %.32q", c.Kind)
		}
		c.Message = clip(c.Message, maxErrorText)
		c.Page = clip(c.Page, maxPath)
		c.Stack = clip(c.Stack, maxStack)
		c.File = clip(c.File, maxPath)
		c.Line, c.Column = max(c.Line, 0), max(c.Column, 0)
		return Event{Type: EventClientError, Client: &c}, nil
	case EventWatcherError:
		if e.Code != "EMFILE" && e.Code != "ENOSPC" {
			return Event{}, fmt.Errorf("watcher error of code %.32q", e.Code)
		}
		return Event{Type: EventWatcherError, Watcher: &WatcherError{Code: e.Code, Message: clip(e.Message, maxErrorText)}}, nil
	}
	return Event{}, fmt.Errorf("event of type %.32q", e.Type)
}

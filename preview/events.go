package preview

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vitehost/vitehost/vite"
)

// This file is a session's event log: what its event stream
// (GET {prefix}/{id}/events, see API) tells a client, kept in a bounded
// buffer so that a client that reconnects with Last-Event-ID gets what it
// missed.

// The event types of the stream.
const (
	eventStatus       = "status"        // the session's status changed: {status, error?}; "stopped" {reason} ends the stream
	eventUpdate       = "update"        // an update's outcome: {updated, deleted, hmr}
	eventHMR          = "hmr"           // Vite updated or reloaded the pages for an edit that no update made: {type, paths}
	eventCompileError = "compile-error" // a compile error, of an update or found later: {message, file, line, column, frame, plugin}
	eventRuntimeError = "runtime-error" // an open page's runtime error: {kind, message, page, stack, file, line, column}
	eventLogLine      = "log"           // a line of the dev server's output: {stream, line}
	eventWarning      = "warning"       // something about the session's dependencies the client should know: {code, message}
)

// An event's class says where its text comes from, and which buffer keeps
// it: each class has a buffer and bounds of its own, so that what one
// class produces cannot push another's events out of the replay. Anyone
// with the preview URL can make a page send runtime errors, and a dev
// server can print without end; neither evicts a status or an update.
type eventClass int

const (
	classServer eventClass = iota // status, update, hmr, compile-error: the service's and Vite's own findings
	classLog                      // log: the dev server's output
	classPage                     // runtime-error: what a page sent, text that anyone with the preview URL can write
	numClasses
)

// classOf returns the class of an event type.
func classOf(typ string) eventClass {
	switch typ {
	case eventLogLine:
		return classLog
	case eventRuntimeError:
		return classPage
	}
	return classServer
}

// source is the value of an event's "source" field: "page" for text that
// came from a page (and so from anyone who can open it), "server" for the
// rest.
func (c eventClass) source() string {
	if c == classPage {
		return "page"
	}
	return "server"
}

// classBounds are the bounds of each class's buffer: the oldest events of
// a class go first.
var classBounds = [numClasses]struct{ events, bytes int }{
	classServer: {500, 512 << 10},
	classLog:    {1000, 1 << 20},
	classPage:   {200, 512 << 10},
}

// logEvent is one event of the log.
type logEvent struct {
	id   uint64
	typ  string
	data []byte // a JSON object
}

// ring is the buffer of one class, oldest first.
type ring struct {
	events []logEvent
	bytes  int
}

// eventLog is a session's events. Its ids start at the time the log was
// made, in microseconds, so that a client of an earlier life of the session
// (on a node that is gone) holds an id that this log does not; they
// increase by one across all classes, so they order the events in time.
type eventLog struct {
	mu      sync.Mutex
	rings   [numClasses]ring
	first   uint64 // the first id of this log
	next    uint64
	changed chan struct{} // closed and replaced at each add
}

func newEventLog() *eventLog {
	now := uint64(time.Now().UnixMicro())
	return &eventLog{first: now, next: now, changed: make(chan struct{})}
}

// add appends an event of type typ whose data is v, a struct or map
// encoded as a JSON object, with the time (Unix milliseconds) and the
// source of its text added.
func (l *eventLog) add(typ string, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the stream is no HTML page: "&" stays "&"
	if err := enc.Encode(v); err != nil {
		return
	}
	data := bytes.TrimSpace(buf.Bytes())
	if len(data) < 2 || data[0] != '{' {
		return
	}
	class := classOf(typ)
	stamp := `{"time":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"source":"` + class.source() + `"`
	if len(data) > 2 {
		stamp += ","
	}
	data = append([]byte(stamp), data[1:]...)

	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.rings[class]
	bound := classBounds[class]
	r.events = append(r.events, logEvent{id: l.next, typ: typ, data: data})
	l.next++
	r.bytes += len(data)
	drop := 0
	for len(r.events)-drop > bound.events || r.bytes > bound.bytes && drop < len(r.events)-1 {
		r.bytes -= len(r.events[drop].data)
		drop++
	}
	if drop > 0 {
		r.events = append(r.events[:0:0], r.events[drop:]...)
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// since returns the events after the one with id last, in the order they
// came (all that the log holds when there is no last, or when last is not
// an id of this log: the client saw another life of the session), and a
// channel that is closed at the next add.
func (l *eventLog) since(last uint64, hasLast bool) ([]logEvent, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !hasLast || last < l.first || last >= l.next {
		last = l.first - 1
	}
	var parts [numClasses][]logEvent
	n := 0
	for c := range parts {
		evs := l.rings[c].events
		i := sort.Search(len(evs), func(i int) bool { return evs[i].id > last })
		parts[c] = evs[i:]
		n += len(parts[c])
	}
	if n == 0 {
		return nil, l.changed
	}
	out := make([]logEvent, 0, n)
	for len(out) < n {
		best := -1
		for c, p := range parts {
			if len(p) > 0 && (best < 0 || p[0].id < parts[best][0].id) {
				best = c
			}
		}
		out = append(out, parts[best][0])
		parts[best] = parts[best][1:]
	}
	return out, l.changed
}

// statusEvent is the data of a status event.
type statusEvent struct {
	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	Code   string `json:"code,omitempty"`   // Record.ErrorCode
	Reason string `json:"reason,omitempty"` // why the session stopped
}

// statusStopped is the status of a stream's last event: the session no
// longer runs on this node (deleted, expired, moved to another node).
const statusStopped Status = "stopped"

// updateEvent is the data of an update event.
type updateEvent struct {
	Updated []string `json:"updated"`
	Deleted []string `json:"deleted"`
	HMR     HMR      `json:"hmr"`
}

// hmrEvent is the data of an hmr event.
type hmrEvent struct {
	Type  HMRType  `json:"type"`
	Paths []string `json:"paths"`
}

// logLine is the data of a log event.
type logLine struct {
	Stream string `json:"stream"`
	Line   string `json:"line"`
}

// onViteEvent records what the session's dev server reported.
func (s *session) onViteEvent(e vite.Event) {
	switch e.Type {
	case vite.EventHMR:
		h := hmrOf(e.Updates, e.FullReload, e.ReloadPath)
		s.events.add(eventHMR, hmrEvent{Type: h.Type, Paths: h.Paths})
	case vite.EventCompileError:
		s.events.add(eventCompileError, compileError(e.Error))
	case vite.EventClientError:
		s.events.add(eventRuntimeError, e.Client)
	}
}

// outputLines is where a session's dev server writes its output: each line
// becomes a log event, and a debug line of the session's logger. The
// stream's clients see no paths of the machine: the project's files are
// relative to it, the dependencies' start at node_modules/.
type outputLines struct {
	events *eventLog
	stream string
	dir    string // the project directory
	log    *slog.Logger
}

// modulesPath matches the machine's part of a path into a node_modules.
var modulesPath = regexp.MustCompile(`(?:/[^\s/'"()\[\]]+)*/node_modules/`)

func (w outputLines) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		w.log.Debug("vitehost/preview: dev server output", "stream", w.stream, "line", line)
		line = strings.ReplaceAll(line, w.dir+string(filepath.Separator), "")
		line = modulesPath.ReplaceAllString(line, "node_modules/")
		w.events.add(eventLogLine, logLine{Stream: w.stream, Line: line})
	}
	return len(p), nil
}

// addWarnings records what the client should know about the session's
// dependencies, once each, and tells the event stream.
func (s *session) addWarnings(ws []Warning) {
	for _, w := range ws {
		s.state.Lock()
		dup := slices.Contains(s.warnings, w)
		if !dup {
			s.warnings = append(s.warnings, w)
		}
		s.state.Unlock()
		if !dup {
			s.events.add(eventWarning, w)
		}
	}
}

// warningList returns the session's warnings.
func (s *session) warningList() []Warning {
	s.state.Lock()
	defer s.state.Unlock()
	return slices.Clone(s.warnings)
}

package vite

import (
	"bytes"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// Limits of the kept output.
const (
	tailLines = 40      // lines quoted in start errors
	maxLine   = 8 << 10 // longer lines are cut into pieces of this size
)

// output routes the children's output lines of one Server: to the caller's
// writers or the logger, and into the tail that start errors quote.
type output struct {
	wmu sync.Mutex // one Write at a time to the caller's writers, which may be one

	mu             sync.Mutex
	stdout, stderr io.Writer    // where the lines go; retarget changes them
	log            *slog.Logger // the same
	lines          []string     // ring buffer of the last tailLines lines
	next           int
}

func newOutput(stdout, stderr io.Writer, log *slog.Logger) *output {
	return &output{stdout: stdout, stderr: stderr, log: log}
}

// tail returns the last lines, oldest first.
func (o *output) tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.lines) < tailLines {
		return append([]string(nil), o.lines...)
	}
	return append(append([]string(nil), o.lines[o.next:]...), o.lines[:o.next]...)
}

func (o *output) keep(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.lines) < tailLines {
		o.lines = append(o.lines, line)
		return
	}
	o.lines[o.next] = line
	o.next = (o.next + 1) % tailLines
}

// retarget sends the lines from now on to other writers and logger: a
// spare's output becomes the Server's that takes it.
func (o *output) retarget(stdout, stderr io.Writer, log *slog.Logger) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stdout, o.stderr, o.log = stdout, stderr, log
}

// target returns where the lines of stream go now.
func (o *output) target(stream string) (io.Writer, *slog.Logger) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if stream == "stderr" {
		return o.stderr, o.log
	}
	return o.stdout, o.log
}

// writer returns the writer for one stream of one child. Protocol lines go
// to onMessage (or, when invalid, to the logger) instead of the output.
func (o *output) writer(stream string, onMessage func(message)) *lineWriter {
	return &lineWriter{o: o, stream: stream, onMessage: onMessage}
}

// lineWriter splits a stream into lines. exec.Cmd copies the child's pipe
// into it from one goroutine; flush may come from another.
type lineWriter struct {
	o         *output
	stream    string
	onMessage func(message)

	mu  sync.Mutex
	buf []byte
}

// Write takes any part of the stream and handles each complete line.
func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	start := 0
	for {
		i := bytes.IndexByte(w.buf[start:], '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[start : start+i])
		start += i + 1
	}
	limit := maxLine
	if w.onMessage != nil {
		limit = maxMessageLine // a protocol line may be long; none is longer
	}
	for len(w.buf)-start > limit {
		w.line(w.buf[start : start+limit])
		start += limit
	}
	w.buf = append(w.buf[:0], w.buf[start:]...)
	return len(p), nil
}

// flush handles a last line without a newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.line(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) line(b []byte) {
	b = bytes.TrimRight(b, "\r")
	dst, log := w.o.target(w.stream)
	if w.onMessage != nil {
		m, err := parseMessage(b)
		if err == nil {
			w.onMessage(m)
			return
		}
		if err != errNotMessage {
			log.Warn("vitehost/vite: ignored an invalid protocol line", "err", err)
			return
		}
	}
	if len(b) > maxLine {
		b = b[:maxLine]
	}
	s := plainText(string(b))
	w.o.keep(s)
	if dst != nil {
		w.o.wmu.Lock()
		dst.Write(append([]byte(s), '\n'))
		w.o.wmu.Unlock()
		return
	}
	log.Debug("vitehost/vite: output", "stream", w.stream, "line", s)
}

// ansiEscape matches the terminal escape sequences (colours, cursor moves)
// that some tools print even when their output is not a terminal.
var ansiEscape = regexp.MustCompile(`\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])`)

// plainText returns s as valid UTF-8 without terminal escape sequences.
func plainText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexByte(s, 0x1b) < 0 {
		return s
	}
	return ansiEscape.ReplaceAllString(s, "")
}

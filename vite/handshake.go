package vite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// messagePrefix starts every protocol line of the runner script and of the
// Nuxt layer; other output lines are the dev server's own.
const messagePrefix = `{"vitehost":`

// Limits on message fields: the lines come from a process that also runs
// the project's config and plugins, so they are checked like any input.
const (
	maxMessageLine = 64 << 10
	maxToken       = 256
	maxVersion     = 64
	maxErrorText   = 4 << 10
)

// Kinds of protocol messages.
const (
	msgLoaded = "loaded" // the runner imported vite (version)
	msgWarmed = "warmed" // a spare runner's warm-up is done: it waits for its project
	msgReady  = "ready"  // the runner's dev server listens (port and hmrPort, or unix; version, token)
	msgToken  = "token"  // Vite restarted itself with a new token
	msgListen = "listen" // nuxi's HTTP listener is bound (port)
	msgVite   = "vite"   // Nuxt's client Vite server exists (token)
	msgError  = "error"  // the start failed (code, message, port)
	msgHeld   = "held"   // the runner holds the files of batch id
	msgBatch  = "batch"  // Vite handled batch id (batch)
	msgEvent  = "event"  // something happened outside batches (event)
)

// message is one protocol line.
type message struct {
	Kind    string `json:"vitehost"`
	Port    int    `json:"port"`
	HMRPort int    `json:"hmrPort"`
	Version string `json:"version"`
	Token   string `json:"token"`
	Unix    bool   `json:"unix"` // ready: on the Unix sockets it was given, not on ports
	Code    string `json:"code"`
	Message string `json:"message"`

	ID    uint64       `json:"id"`    // held, batch: the batch
	Batch *BatchResult `json:"batch"` // batch: its outcome
	Event *runnerEvent `json:"event"` // event: what happened

	event Event // event: Event, checked
}

var errNotMessage = errors.New("not a protocol line")

// parseMessage parses line as a protocol message. It returns errNotMessage
// for ordinary output, and another error for a line that starts like a
// message but is not a valid one.
func parseMessage(line []byte) (message, error) {
	line = bytes.TrimSpace(line)
	if !bytes.HasPrefix(line, []byte(messagePrefix)) {
		return message{}, errNotMessage
	}
	if len(line) > maxMessageLine {
		return message{}, fmt.Errorf("protocol line of %d bytes", len(line))
	}
	var m message
	if err := json.Unmarshal(line, &m); err != nil {
		return message{}, fmt.Errorf("protocol line: %w", err)
	}
	if err := m.check(); err != nil {
		return message{}, fmt.Errorf("protocol line %q: %w", m.Kind, err)
	}
	return m, nil
}

// check validates the fields that the kind of m needs.
func (m *message) check() error {
	if !validPort(m.Port, true) || !validPort(m.HMRPort, true) {
		return errors.New("port out of range")
	}
	if len(m.Version) > maxVersion || !printable(m.Version) {
		return errors.New("invalid version")
	}
	if len(m.Token) > maxToken || !tokenChars(m.Token) {
		return errors.New("invalid token")
	}
	if len(m.Code) > 64 || !printable(m.Code) {
		return errors.New("invalid error code")
	}
	if len(m.Message) > maxErrorText {
		m.Message = m.Message[:maxErrorText]
	}
	switch m.Kind {
	case msgLoaded, msgWarmed:
	case msgReady:
		onPorts := !m.Unix && m.Port != 0 && m.HMRPort != 0
		onSockets := m.Unix && m.Port == 0 && m.HMRPort == 0
		if m.Token == "" || !(onPorts || onSockets) {
			return errors.New("ready without token, or without either both ports or the sockets alone")
		}
	case msgToken, msgVite:
		if m.Token == "" {
			return errors.New("no token")
		}
	case msgListen:
		if m.Port == 0 {
			return errors.New("no port")
		}
	case msgError:
		if m.Code == "" {
			m.Code = "ERROR"
		}
	case msgHeld:
		if m.ID == 0 {
			return errors.New("no batch id")
		}
	case msgBatch:
		if m.ID == 0 {
			return errors.New("no batch id")
		}
		if m.Batch == nil {
			m.Batch = &BatchResult{Incomplete: true}
		}
		m.Batch.clean()
	case msgEvent:
		if m.Event == nil {
			return errors.New("no event")
		}
		ev, err := m.Event.event()
		if err != nil {
			return err
		}
		m.event, m.Event = ev, nil
	default:
		return errors.New("unknown kind")
	}
	return nil
}

func validPort(p int, zeroOK bool) bool {
	return (zeroOK && p == 0) || (p > 0 && p <= 65535)
}

// printable reports whether s holds printable ASCII only.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// tokenChars reports whether s is base64url text, the alphabet of Vite's
// webSocketToken; the token goes into URLs as it is.
func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

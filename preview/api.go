package preview

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// API returns the JSON API as an http.Handler, mounted at Options.APIPrefix:
//
//	POST   {prefix}              create  -> {success, sessionId, previewUrl, wsUrl, expiresAt}
//	POST   {prefix}/{id}/update  update  -> {success, updated, hmrTriggered, hmr}
//	GET    {prefix}/{id}         status  -> {success, sessionId, previewUrl, status, expiresAt}
//	DELETE {prefix}/{id}         delete  -> {success}
//	GET    {prefix}/{id}/events  events  -> text/event-stream
//
// expiresAt is in Unix milliseconds. Errors answer
// {success: false, error: {code, message}}. The handler may be mounted on
// any mux; it answers 404 for paths outside the prefix. On a node of
// several (Options.NodeAddr), update, status, delete, events and a create
// that names a session go to the node that runs the session, as Router's
// requests do; a create without a session id runs on this node.
//
// The events endpoint is a stream of Server-Sent Events (curl -N, or
// EventSource) of what happens to the session, each a JSON object with its
// time in Unix milliseconds:
//
//	status         the status changed: {status, error}; "stopped" with a reason ends the stream
//	update         an update's outcome: {updated, deleted, hmr}
//	hmr            Vite updated or reloaded the page for an edit no update made: {type, paths}
//	compile-error  {message, file, line, column, frame, plugin}
//	runtime-error  an open page's error: {kind, message, page, stack, file, line, column}
//	log            a line of the dev server's output: {stream, line}
//
// runtime-error comes from a module the service adds to the page: kind is
// "error" (uncaught), "unhandledrejection", "module-load" or
// "console.error", and the stack is mapped to the project's files where
// Vite's source maps allow. A client that reconnects with Last-Event-ID
// (EventSource does) gets what it missed, from a buffer of the last 1000
// events; without it, a stream starts with the buffer's events.
func (m *Manager) API() http.Handler {
	p := m.opts.APIPrefix
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+p, m.handleCreate)
	mux.HandleFunc("POST "+p+"/{id}/update", m.handleUpdate)
	mux.HandleFunc("GET "+p+"/{id}", m.handleStatus)
	mux.HandleFunc("DELETE "+p+"/{id}", m.handleDelete)
	mux.HandleFunc("GET "+p+"/{id}/events", m.handleEvents)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return m.authorize(mux)
}

// authorize checks the bearer token when one is configured. Both sides are
// hashed first so that the comparison takes the same time whatever the
// length of the guess.
func (m *Manager) authorize(next http.Handler) http.Handler {
	if m.opts.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(m.opts.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="vitehost-preview"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong API token (Authorization: Bearer <token>)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

type infoResponse struct {
	Success    bool   `json:"success"`
	SessionID  string `json:"sessionId"`
	PreviewURL string `json:"previewUrl"`
	WSURL      string `json:"wsUrl,omitempty"`
	Status     Status `json:"status,omitempty"`
	ExpiresAt  int64  `json:"expiresAt"`
	Error      string `json:"errorMessage,omitempty"`
}

type updateResponse struct {
	Success      bool     `json:"success"`
	Updated      []string `json:"updated"`
	HMRTriggered bool     `json:"hmrTriggered"`
	HMR          HMR      `json:"hmr"`
	Deleted      []string `json:"deleted,omitempty"`
	Ignored      []string `json:"ignored,omitempty"`
}

func (m *Manager) handleCreate(w http.ResponseWriter, r *http.Request) {
	body, ok := m.readBody(w, r)
	if !ok {
		return
	}
	var req CreateRequest
	if err := decodeJSON(body, &req); err != nil {
		m.fail(w, r, err)
		return
	}
	p, err := m.checkCreate(&req)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	var info *Info
	if req.SessionID == "" {
		// A new session runs on the node that got the request.
		info, err = m.create(r.Context(), NewID(), p)
	} else {
		info, err = m.createOrUpdate(w, r, req.SessionID, body, p)
	}
	switch {
	case err != nil:
		m.fail(w, r, err)
	case info != nil:
		writeJSON(w, http.StatusOK, infoResponse{
			Success: true, SessionID: info.SessionID, PreviewURL: info.PreviewURL,
			WSURL: info.WSURL, ExpiresAt: info.ExpiresAt.UnixMilli(),
		})
	}
}

// createOrUpdate serves a create that names its session: a live session
// is updated (on its node), an unknown one is created here. A nil Info
// without an error means another node answered.
func (m *Manager) createOrUpdate(w http.ResponseWriter, r *http.Request, id string, body []byte, p *newProject) (*Info, error) {
	for range maxAttempts {
		loc, forwarded, err := m.reach(w, r, id, body, true)
		switch {
		case errors.Is(err, ErrNotFound):
			return m.create(r.Context(), id, p)
		case err != nil || forwarded:
			return nil, err
		}
		if _, err := m.update(r.Context(), loc.s, p.sent, nil); retry(err) {
			continue // reach finds the new owner
		} else if err != nil {
			return nil, err
		}
		return m.info(loc.s.record()), nil
	}
	return nil, errMoving(id)
}

func (m *Manager) handleUpdate(w http.ResponseWriter, r *http.Request) {
	body, ok := m.readBody(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	var req UpdateRequest
	if err := decodeJSON(body, &req); err != nil {
		m.fail(w, r, err)
		return
	}
	files, err := checkFiles(req.Files, req.Delete, m.opts.Limits, m.opts.AllowConfigFiles)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	for range maxAttempts {
		loc, forwarded, err := m.reach(w, r, id, body, true)
		if forwarded {
			return
		}
		if err != nil {
			m.fail(w, r, err)
			return
		}
		res, err := m.update(r.Context(), loc.s, files, req.Delete)
		if retry(err) {
			continue // reach finds the new owner and hands the update to it
		}
		if err != nil {
			m.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, updateResponse{
			Success: true, Updated: res.Updated, HMRTriggered: res.HMRTriggered(), HMR: res.HMR,
			Deleted: res.Deleted, Ignored: res.Ignored,
		})
		return
	}
	m.fail(w, r, errMoving(id))
}

func (m *Manager) handleStatus(w http.ResponseWriter, r *http.Request) {
	loc, forwarded, err := m.reach(w, r, r.PathValue("id"), []byte{}, true)
	switch {
	case forwarded:
	case err != nil:
		m.fail(w, r, err)
	default:
		info := m.status(loc)
		writeJSON(w, http.StatusOK, infoResponse{
			Success: true, SessionID: info.SessionID, PreviewURL: info.PreviewURL,
			Status: info.Status, ExpiresAt: info.ExpiresAt.UnixMilli(), Error: info.Error,
		})
	}
}

func (m *Manager) handleDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	for range maxAttempts {
		loc, forwarded, err := m.reach(w, r, id, []byte{}, false)
		if forwarded {
			return
		}
		if err == nil {
			err = m.delete(r.Context(), loc)
		}
		if retry(err) {
			continue // reach finds the new owner
		}
		if err != nil {
			m.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
		return
	}
	m.fail(w, r, errMoving(id))
}

// keepAlive is how often an idle event stream gets a comment line, so that
// proxies and load balancers in between do not close it.
const keepAlive = 15 * time.Second

// handleEvents streams the session's events (see API) until the client
// goes, the session stops on this node, or the Manager closes.
func (m *Manager) handleEvents(w http.ResponseWriter, r *http.Request) {
	loc, forwarded, err := m.reach(w, r, r.PathValue("id"), []byte{}, true)
	switch {
	case forwarded:
		return
	case err != nil:
		m.fail(w, r, err)
		return
	}
	s := loc.s
	last, hasLast := lastEventID(r)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for stopping := false; ; {
		events, changed := s.events.since(last, hasLast)
		for _, e := range events {
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.id, e.typ, e.data)
			last, hasLast = e.id, true
		}
		if err := rc.Flush(); err != nil || stopping {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-s.ctx.Done():
			stopping = true // send the last events, the stopped status among them
		case <-m.ctx.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

// lastEventID returns the id of the last event a client saw: the
// Last-Event-ID header of a reconnecting EventSource, or the lastEventId
// query parameter.
func lastEventID(r *http.Request) (uint64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	return id, err == nil
}

// readBody reads the body within the size limit, answering 400 itself when
// it cannot.
func (m *Manager) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.opts.Limits.bodyLimit()))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusBadRequest, CodeTooLarge, "request body larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
		} else {
			writeError(w, http.StatusBadRequest, CodeBadJSON, "reading the body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// fail answers err with the status and code the API gives it.
func (m *Manager) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *RequestError
	switch {
	case errors.As(err, &re):
		writeError(w, http.StatusBadRequest, re.Code, re.Msg)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, "unknown or expired session")
	case errors.Is(err, ErrLimit):
		writeError(w, http.StatusTooManyRequests, CodeSessionLimit, err.Error())
	case errors.Is(err, ErrDevServer):
		writeError(w, http.StatusBadGateway, CodeDevServer, err.Error())
	case errors.Is(err, ErrUnavailable):
		// The cause (an address, a Redis error) is for the operator's log.
		m.log.Warn("vitehost/preview: session store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "2")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the session store is unavailable; nothing was changed, try again shortly")
	case errors.Is(err, ErrRemote), errors.Is(err, ErrFenced):
		m.log.Warn("vitehost/preview: session moved during the request", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the session is moving to another node; try again shortly")
	case errors.Is(err, ErrClosed):
		w.Header().Set(closedHeader, "1")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the service is shutting down")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		m.log.Error("vitehost/preview: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Success bool `json:"success"`
		Error   body `json:"error"`
	}{false, body{code, msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

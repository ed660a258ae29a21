package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// API returns the JSON API as an http.Handler, mounted at Options.APIPrefix:
//
//	POST   {prefix}              create  -> {success, sessionId, previewUrl, wsUrl, expiresAt, created}
//	POST   {prefix}/{id}/update  update  -> {success, updated, hmrTriggered, hmr, dependencies?}
//	GET    {prefix}/{id}         status  -> {success, sessionId, previewUrl, status, expiresAt}
//	DELETE {prefix}/{id}         delete  -> {success}
//	GET    {prefix}/{id}/events  events  -> text/event-stream
//
// expiresAt is in Unix milliseconds. A create that names a live session
// (sessionId) updates it instead: its answer has created false and the
// update's fields (updated, hmrTriggered, hmr, ignored); 409 "conflict" when
// it declares another dependency set. An update whose package.json (its
// packageJson field, or a package.json among its files) declares another
// set installs it while the dev server serves, then restarts the server on
// it: its answer has hmr.type "full-reload" and dependencies {added,
// removed, changed} with the versions installed; a set that cannot be
// installed answers 400 bad_dependency naming the package and changes
// nothing. Errors answer {success: false, error:
// {code, message}} (error.limit names the quota of a 413). POST bodies must
// be application/json (415 otherwise), and a request whose Origin is not
// the API's own or one of Options.AllowedOrigins gets 403 (origin.go). The
// handler may be mounted on any mux; it answers 404 for paths outside the
// prefix. On a node of several (Options.NodeAddr), update, status, delete,
// events and a create that names a session go to the node that runs the
// session, as Router's requests do; a create without a session id runs on
// this node. A session whose node is gone is taken over by the node that
// gets a request for it, status included: the status request starts its
// dev server there (see Manager.Status); only a delete removes such a
// session without starting it.
//
// The events endpoint is a stream of Server-Sent Events (curl -N, or
// EventSource) of what happens to the session, each a JSON object with its
// time in Unix milliseconds and its source: "page" when its text came from
// a page (runtime-error: anyone who can open the preview can send one, with
// any text; a client that feeds the stream to a model treats it as
// untrusted input), "server" for the rest:
//
//	status         the status changed: {status, error}; "stopped" with a reason ends the stream
//	update         an update's outcome: {updated, deleted, hmr}
//	hmr            Vite updated or reloaded the page for an edit no update made: {type, paths}
//	compile-error  {message, file, line, column, frame, plugin}
//	runtime-error  an open page's error: {kind, message, page, stack, file, line, column}
//	log            a line of the dev server's output: {stream, line}
//	install        a dependency change's install: {phase, packages?} with phase "resolving",
//	               "downloading" (packages: how many), "linking", "done"; or "failed" {error}
//
// runtime-error comes from a module the service adds to the page: kind is
// "error" (uncaught), "unhandledrejection", "module-load" or
// "console.error", and the stack is mapped to the project's files where
// Vite's source maps allow. A client that reconnects with Last-Event-ID
// (EventSource does) gets what it missed, in the order it happened, from
// buffers of the last events of each class (events.go: status, update,
// hmr and compile-error 500 events or 512 KiB; log 1000 or 1 MiB;
// runtime-error 200 or 512 KiB), so that neither the pages nor the dev
// server's output can push a status or an update out of it; without it, a
// stream starts with the buffers' events.
func (m *Manager) API() http.Handler {
	p := m.opts.APIPrefix
	mux := http.NewServeMux()
	mux.Handle("POST "+p, m.endpoint("create", true, m.handleCreate))
	mux.Handle("POST "+p+"/{id}/update", m.endpoint("update", true, m.handleUpdate))
	mux.Handle("GET "+p+"/{id}", m.endpoint("status", false, m.handleStatus))
	mux.Handle("DELETE "+p+"/{id}", m.endpoint("delete", false, m.handleDelete))
	mux.Handle("GET "+p+"/{id}/events", m.endpoint("events", false, m.handleEvents))
	mux.Handle("/", m.endpoint("unknown", false, func(w http.ResponseWriter, r *http.Request) string {
		return writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	}))
	return m.preflight(mux)
}

// apiHandler serves one endpoint and returns the outcome for the metrics:
// "ok", "forwarded" (another node answered), "canceled" (the client went
// away) or the error code it answered.
type apiHandler func(w http.ResponseWriter, r *http.Request) (outcome string)

// endpoint applies the rules every endpoint shares (the origin, the token,
// a JSON body for the POSTs) before h, and counts the outcome.
func (m *Manager) endpoint(operation string, jsonBody bool, h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outcome := m.checkOrigin(w, r)
		if outcome == "" {
			outcome = m.checkToken(w, r)
		}
		if outcome == "" && jsonBody {
			outcome = checkJSONBody(w, r)
		}
		if outcome == "" {
			outcome = h(w, r)
		} else {
			dropBody(w, r)
		}
		m.metrics.countRequest(operation, outcome)
	})
}

// dropBody ends the reading of the body of a request refused before its
// body was read. net/http would otherwise read up to 256 KiB of it before
// it sends the answer, and more after: a client without the token that
// trickles a body one byte at a time would hold its connection and never
// see its 401. A read deadline in the past makes the server give up the
// body at once and close the connection after the answer. HTTP/2 streams
// are left alone: a past deadline resets the stream, answer included.
func dropBody(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody {
		http.NewResponseController(w).SetReadDeadline(time.Now())
	}
}

type infoResponse struct {
	Success    bool   `json:"success"`
	SessionID  string `json:"sessionId"`
	PreviewURL string `json:"previewUrl"`
	WSURL      string `json:"wsUrl,omitempty"`
	Status     Status `json:"status,omitempty"`
	ExpiresAt  int64  `json:"expiresAt"`
	Error      string `json:"errorMessage,omitempty"`
	ErrorCode  string `json:"errorCode,omitempty"`
}

// updateFields are what an update did, in the answers of update and of a
// create that updated a live session.
type updateFields struct {
	Updated      []string `json:"updated"`
	HMRTriggered bool     `json:"hmrTriggered"`
	HMR          HMR      `json:"hmr"`
	Deleted      []string `json:"deleted,omitempty"`
	Ignored      []string `json:"ignored,omitempty"`
	// Dependencies is set when the update changed the dependency set.
	Dependencies *DependencyChange `json:"dependencies,omitempty"`
}

func newUpdateFields(res *UpdateResult) updateFields {
	return updateFields{Updated: res.Updated, HMRTriggered: res.HMRTriggered(), HMR: res.HMR, Deleted: res.Deleted, Ignored: res.Ignored,
		Dependencies: res.Dependencies}
}

type updateResponse struct {
	Success bool `json:"success"`
	updateFields
}

type createResponse struct {
	Success    bool   `json:"success"`
	SessionID  string `json:"sessionId"`
	PreviewURL string `json:"previewUrl"`
	WSURL      string `json:"wsUrl"`
	ExpiresAt  int64  `json:"expiresAt"`
	// Created is false when the request named a live session, which it
	// updated: the update's fields follow.
	Created bool `json:"created"`
	// Warnings: see Info.Warnings.
	Warnings []Warning `json:"warnings,omitempty"`
	*updateFields
}

func (m *Manager) handleCreate(w http.ResponseWriter, r *http.Request) string {
	body, release, code := m.readBody(w, r)
	if code != "" {
		return code
	}
	defer release()
	// The session id says where the create runs: the body's id only is
	// read here, the rest where the session is (see operations.go).
	var head struct {
		SessionID string `json:"sessionId"`
	}
	if err := decodeJSON(body, &head); err != nil {
		return m.fail(w, r, err)
	}
	project := sync.OnceValues(func() (*newProject, error) {
		var req createBody
		if err := decodeJSON(body, &req); err != nil {
			return nil, err
		}
		return m.checkCreate(req.SessionID, sent(req.Files), req.PackageJSON)
	})
	info, err := m.createSession(r.Context(), head.SessionID, project, m.forwardTo(w, r, body))
	switch {
	case errors.Is(err, errForwarded):
		return "forwarded"
	case err != nil:
		return m.fail(w, r, err)
	}
	res := createResponse{
		Success: true, SessionID: info.SessionID, PreviewURL: info.PreviewURL,
		WSURL: info.WSURL, ExpiresAt: info.ExpiresAt.UnixMilli(), Created: info.Update == nil, Warnings: info.Warnings,
	}
	if info.Update != nil {
		f := newUpdateFields(info.Update)
		res.updateFields = &f
	}
	writeJSON(w, http.StatusOK, res)
	return "ok"
}

func (m *Manager) handleUpdate(w http.ResponseWriter, r *http.Request) string {
	body, release, code := m.readBody(w, r)
	if code != "" {
		return code
	}
	defer release()
	// The body is decoded and checked where the session runs (see
	// operations.go): a node that forwards the request sends it as it came.
	input := sync.OnceValues(func() (*updateInput, error) {
		var req updateBody
		if err := decodeJSON(body, &req); err != nil {
			return nil, err
		}
		return m.checkUpdate(sent(req.Files), req.Delete, req.PackageJSON)
	})
	res, err := m.updateSession(r.Context(), r.PathValue("id"), input, m.forwardTo(w, r, body))
	switch {
	case errors.Is(err, errForwarded):
		return "forwarded"
	case err != nil:
		return m.fail(w, r, err)
	}
	writeJSON(w, http.StatusOK, updateResponse{Success: true, updateFields: newUpdateFields(res)})
	return "ok"
}

// handleStatus answers the status of a session; one whose node is gone is
// taken over and starts here (see Status).
func (m *Manager) handleStatus(w http.ResponseWriter, r *http.Request) string {
	info, err := m.sessionStatus(r.Context(), r.PathValue("id"), m.forwardTo(w, r, []byte{}))
	switch {
	case errors.Is(err, errForwarded):
		return "forwarded"
	case err != nil:
		return m.fail(w, r, err)
	}
	writeJSON(w, http.StatusOK, infoResponse{
		Success: true, SessionID: info.SessionID, PreviewURL: info.PreviewURL,
		Status: info.Status, ExpiresAt: info.ExpiresAt.UnixMilli(), Error: info.Error, ErrorCode: info.ErrorCode,
	})
	return "ok"
}

func (m *Manager) handleDelete(w http.ResponseWriter, r *http.Request) string {
	err := m.deleteSession(r.Context(), r.PathValue("id"), m.forwardTo(w, r, []byte{}))
	switch {
	case errors.Is(err, errForwarded):
		return "forwarded"
	case err != nil:
		return m.fail(w, r, err)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
	return "ok"
}

// keepAlive is how often an idle event stream gets a comment line, so that
// proxies and load balancers in between do not close it.
const keepAlive = 15 * time.Second

// handleEvents streams the session's events, where the session runs.
func (m *Manager) handleEvents(w http.ResponseWriter, r *http.Request) string {
	outcome, err := visit(r.Context(), m, r.PathValue("id"), adoptOrphan, nil, func(loc location) (string, error) {
		if loc.remote {
			return "", m.relay(w, r, loc, []byte{})
		}
		return m.streamEvents(w, r, loc.s), nil
	})
	switch {
	case errors.Is(err, errForwarded):
		return "forwarded"
	case err != nil:
		return m.fail(w, r, err)
	}
	return outcome
}

// streamEvents streams the events of session s of this node (see API)
// until the client goes, s stops here, or the Manager closes, and returns
// the outcome.
func (m *Manager) streamEvents(w http.ResponseWriter, r *http.Request, s *session) string {
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
		if err := rc.Flush(); err != nil {
			return "canceled"
		}
		if stopping {
			return "ok"
		}
		select {
		case <-changed:
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return "canceled"
			}
		case <-s.ctx.Done():
			stopping = true // send the last events, the stopped status among them
		case <-m.ctx.Done():
			return "ok"
		case <-r.Context().Done():
			return "canceled"
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

// readBody reads the body within the size limit, once its bytes fit in the
// node's budget (Limits.MaxBytesInFlight), and returns it with the release
// of its share, to call when the request is done. It answers the error
// itself when it cannot, and returns its code: 400 for a body too large,
// 408 for a body that stopped coming (ServerOptions.BodyTimeout), 503 with
// Retry-After when the budget stayed full for bodyWait. A client that
// sends "Expect: 100-continue" (curl does for bodies over 1 MiB) gets the
// 503 before it sends its body; another may see the connection close while
// it sends, as net/http then closes it rather than read a body nobody
// wants.
func (m *Manager) readBody(w http.ResponseWriter, r *http.Request) ([]byte, func(), string) {
	limit := m.opts.Limits.bodyLimit()
	if r.ContentLength > limit {
		dropBody(w, r)
		return nil, nil, writeError(w, http.StatusBadRequest, CodeTooLarge, "request body larger than "+strconv.FormatInt(limit, 10)+" bytes")
	}
	// A body of unknown length may be as long as the limit.
	want := limit
	if r.ContentLength >= 0 {
		want = r.ContentLength
	}
	held, err := m.budget.acquire(r.Context(), want)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, nil, "canceled"
		}
		dropBody(w, r)
		w.Header().Set("Retry-After", "2")
		return nil, nil, writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the service is receiving too many large requests; try again shortly")
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err == nil && held > int64(len(body)) {
		// A body of unknown length gives back what it did not use.
		m.budget.release(held - int64(len(body)))
		held = int64(len(body))
	}
	release := func() { m.budget.release(held) }
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return body, release, ""
	case errors.As(err, &tooLarge):
		release()
		return nil, nil, writeError(w, http.StatusBadRequest, CodeTooLarge, "request body larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The server's body deadline (ServerOptions.BodyTimeout) passed;
		// net/http canceled the request's context with it.
		release()
		return nil, nil, writeError(w, http.StatusRequestTimeout, CodeBodyTimeout, "the request body did not arrive in time")
	case r.Context().Err() != nil:
		release()
		return nil, nil, "canceled"
	default:
		release()
		// The cause names addresses: it is for the log.
		m.log.Debug("vitehost/preview: reading a request body", "method", r.Method, "path", r.URL.Path, "err", err)
		return nil, nil, writeError(w, http.StatusBadRequest, CodeBadJSON, "the request body could not be read")
	}
}

// readAll reads r to its end into one buffer of the size the request
// declared (io.ReadAll would grow it by copies).
func readAll(r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return io.ReadAll(r)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	// Read on to the body's EOF: only then does net/http watch for the
	// client going away (and cancel the request's context when it does),
	// and lift the body's deadline (server.go).
	var more [1]byte
	switch _, err := io.ReadFull(r, more[:]); err {
	case io.EOF:
		return buf, nil
	case nil:
		return nil, errors.New("vitehost/preview: request body longer than its Content-Length")
	default:
		return nil, err
	}
}

// fail answers err with the status and code the API gives it, and returns
// the code. Only messages made for clients reach them: request errors,
// quotas, and the dev server's and npm's failures, which name their cause
// without the host's paths (internal/deps, session.go); everything else is
// logged and answered with a fixed text.
func (m *Manager) fail(w http.ResponseWriter, r *http.Request, err error) string {
	var (
		re *RequestError
		qe *QuotaError
	)
	switch {
	case errors.As(err, &re):
		return writeError(w, http.StatusBadRequest, re.Code, re.Msg)
	case errors.As(err, &qe):
		writeJSON(w, http.StatusRequestEntityTooLarge, errorResponse{Error: errorBody{Code: CodeQuota, Message: clientText(qe), Limit: qe.Limit}})
		return CodeQuota
	case errors.Is(err, ErrNotFound):
		return writeError(w, http.StatusNotFound, CodeNotFound, "unknown or expired session")
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		// The session's disk is full (disk.go): what the tenant's code
		// wrote and what the API writes share it.
		return writeError(w, http.StatusInsufficientStorage, CodeDiskLimit,
			"the session's disk is full: its files, caches and what its code wrote reached the disk or inode limit of its sandbox")
	case errors.Is(err, ErrConflict):
		return writeError(w, http.StatusConflict, CodeConflict, clientText(err))
	case errors.Is(err, ErrLimit):
		return writeError(w, http.StatusTooManyRequests, CodeSessionLimit, clientText(err))
	case errors.Is(err, ErrDevServer):
		return writeError(w, http.StatusBadGateway, CodeDevServer, clientText(err))
	case errors.Is(err, ErrUnavailable):
		// The cause (an address, a Redis error) is for the operator's log.
		m.log.Warn("vitehost/preview: session store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "2")
		return writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the session store is unavailable; nothing was changed, try again shortly")
	case errors.Is(err, ErrRemote), errors.Is(err, ErrFenced):
		m.log.Warn("vitehost/preview: session moved during the request", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		return writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the session is moving to another node; try again shortly")
	case errors.Is(err, ErrClosed):
		w.Header().Set(closedHeader, "1")
		return writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the service is shutting down")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		return "canceled"
	default:
		m.log.Error("vitehost/preview: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return writeError(w, http.StatusInternalServerError, CodeInternal, "internal error; the service's log has the details")
	}
}

// clientText is an error's message without the package prefixes that
// wrapping repeats.
func clientText(err error) string {
	return strings.ReplaceAll(err.Error(), "vitehost/preview: ", "")
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Limit names the quota a 413 broke: files, bytes, directories, depth.
	Limit string `json:"limit,omitempty"`
}

type errorResponse struct {
	Success bool      `json:"success"`
	Error   errorBody `json:"error"`
}

// writeError answers an error and returns its code.
func writeError(w http.ResponseWriter, status int, code, msg string) string {
	writeJSON(w, status, errorResponse{Error: errorBody{Code: code, Message: msg}})
	return code
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

package preview

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// API returns the JSON API as an http.Handler, mounted at Options.APIPrefix:
//
//	POST   {prefix}              create  -> {success, sessionId, previewUrl, wsUrl, expiresAt}
//	POST   {prefix}/{id}/update  update  -> {success, updated, hmrTriggered, hmr}
//	GET    {prefix}/{id}         status  -> {success, sessionId, previewUrl, status, expiresAt}
//	DELETE {prefix}/{id}         delete  -> {success}
//
// expiresAt is in Unix milliseconds. Errors answer
// {success: false, error: {code, message}}. The handler may be mounted on
// any mux; it answers 404 for paths outside the prefix.
func (m *Manager) API() http.Handler {
	p := m.opts.APIPrefix
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+p, m.handleCreate)
	mux.HandleFunc("POST "+p+"/{id}/update", m.handleUpdate)
	mux.HandleFunc("GET "+p+"/{id}", m.handleStatus)
	mux.HandleFunc("DELETE "+p+"/{id}", m.handleDelete)
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
	var req CreateRequest
	if !m.readBody(w, r, &req) {
		return
	}
	info, err := m.Create(r.Context(), &req)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, infoResponse{
		Success: true, SessionID: info.SessionID, PreviewURL: info.PreviewURL,
		WSURL: info.WSURL, ExpiresAt: info.ExpiresAt.UnixMilli(),
	})
}

func (m *Manager) handleUpdate(w http.ResponseWriter, r *http.Request) {
	var req UpdateRequest
	if !m.readBody(w, r, &req) {
		return
	}
	res, err := m.Update(r.Context(), r.PathValue("id"), &req)
	if err != nil {
		m.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, updateResponse{
		Success: true, Updated: res.Updated, HMRTriggered: res.HMRTriggered(), HMR: res.HMR,
		Deleted: res.Deleted, Ignored: res.Ignored,
	})
}

func (m *Manager) handleStatus(w http.ResponseWriter, r *http.Request) {
	info, err := m.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		m.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, infoResponse{
		Success: true, SessionID: info.SessionID, PreviewURL: info.PreviewURL,
		Status: info.Status, ExpiresAt: info.ExpiresAt.UnixMilli(), Error: info.Error,
	})
}

func (m *Manager) handleDelete(w http.ResponseWriter, r *http.Request) {
	if err := m.Delete(r.Context(), r.PathValue("id")); err != nil {
		m.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"success": true})
}

// readBody decodes the JSON body into v within the size limit, answering
// 400 itself when it cannot.
func (m *Manager) readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, m.opts.Limits.bodyLimit()))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusBadRequest, CodeTooLarge, "request body larger than "+strconv.FormatInt(tooLarge.Limit, 10)+" bytes")
		} else {
			writeError(w, http.StatusBadRequest, CodeBadJSON, "reading the body: "+err.Error())
		}
		return false
	}
	if err := decodeJSON(body, v); err != nil {
		m.fail(w, r, err)
		return false
	}
	return true
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
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, err.Error())
	case errors.Is(err, ErrClosed):
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

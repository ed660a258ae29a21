package preview

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with errors.Is. The API maps them to HTTP
// statuses: ErrInvalid 400, ErrNotFound 404, ErrLimit 429, ErrDevServer
// 502, ErrUnavailable, ErrRemote, ErrFenced and ErrClosed 503.
var (
	ErrInvalid     = errors.New("vitehost/preview: invalid request")
	ErrNotFound    = errors.New("vitehost/preview: session not found")
	ErrLimit       = errors.New("vitehost/preview: session limit reached")
	ErrDevServer   = errors.New("vitehost/preview: dev server failed")
	ErrUnavailable = errors.New("vitehost/preview: session store unavailable")
	// ErrRemote is what the Manager's methods return for a session that
	// another node runs; the API forwards such requests to that node.
	ErrRemote = errors.New("vitehost/preview: session runs on another node")
	ErrClosed = errors.New("vitehost/preview: manager closed")
	// ErrFenced is a Store's answer to a write whose epoch is older than
	// the session record's: another node has claimed the session since.
	ErrFenced = errors.New("vitehost/preview: the session was claimed by another node")
)

// Error codes of the API's {success: false, error: {code, message}} answers.
const (
	CodeBadJSON       = "bad_json"
	CodeBadPath       = "bad_path"
	CodeBadID         = "bad_id"
	CodeBadDependency = "bad_dependency"
	CodeBadEncoding   = "bad_encoding"
	CodeTooLarge      = "too_large"
	CodeUnauthorized  = "unauthorized"
	CodeNotFound      = "not_found"
	CodeSessionLimit  = "session_limit"
	CodeDevServer     = "dev_server_failed"
	CodeUnavailable   = "unavailable"
	CodeInternal      = "internal"
)

// RequestError is an invalid request: Code says which rule it broke (one of
// the Code constants) and the message what was wrong. It wraps ErrInvalid.
type RequestError struct {
	Code string
	Msg  string
}

func (e *RequestError) Error() string { return "vitehost/preview: " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *RequestError) Unwrap() error { return ErrInvalid }

func invalid(code, format string, args ...any) error {
	return &RequestError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

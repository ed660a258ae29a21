// Package request holds what the preview API accepts in a request (file
// names, encodings and sizes) and the errors of a request that breaks a
// rule. Package preview re-exports the errors: ErrInvalid, ErrQuota,
// RequestError (Error here), QuotaError and the codes of the API's error
// answers.
package request

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrInvalid is wrapped by every *Error.
	ErrInvalid = errors.New("vitehost/preview: invalid request")
	// ErrQuota is wrapped by every *QuotaError.
	ErrQuota = errors.New("vitehost/preview: session quota exceeded")
)

// Codes of the API's answers to an invalid request.
const (
	CodeBadJSON       = "bad_json"
	CodeBadPath       = "bad_path"
	CodeBadID         = "bad_id"
	CodeBadDependency = "bad_dependency"
	CodeBadEncoding   = "bad_encoding"
	CodeViteVersion   = "vite_version"
	CodeTooLarge      = "too_large"
	CodeQuota         = "quota_exceeded"
)

// Error is an invalid request: Code says which rule it broke (one of the
// Code constants) and the message what was wrong. It wraps ErrInvalid.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return "vitehost/preview: " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Invalid returns the *Error of code with a message made as fmt.Sprintf
// makes it.
func Invalid(code, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// QuotaError is a request that would take its session past one of its
// quotas, which hold over the session's whole life. It wraps ErrQuota.
type QuotaError struct {
	// Limit names the quota: "files", "bytes", "directories" or "depth".
	Limit string
	// Max is the quota, and Value what the session would have (for
	// "depth": the components of Path).
	Max, Value int64
	// Path is the file name that broke the "depth" quota.
	Path string
}

// Error names the quota, the value and the limit.
func (e *QuotaError) Error() string {
	switch e.Limit {
	case "depth":
		return fmt.Sprintf("vitehost/preview: file name %.80q has %d path components: at most %d (Limits.MaxPathDepth)", e.Path, e.Value, e.Max)
	case "bytes":
		return fmt.Sprintf("vitehost/preview: the session's files would add up to %d bytes: at most %d over its life (Limits.MaxSessionBytes)", e.Value, e.Max)
	case "directories":
		return fmt.Sprintf("vitehost/preview: the session would have %d directories: at most %d over its life (Limits.MaxSessionDirs)", e.Value, e.Max)
	}
	return fmt.Sprintf("vitehost/preview: the session would have %d files: at most %d over its life (Limits.MaxSessionFiles)", e.Value, e.Max)
}

// Unwrap returns ErrQuota.
func (e *QuotaError) Unwrap() error { return ErrQuota }

package deps

import (
	"errors"
	"fmt"
)

// ErrInstall is returned, wrapped with npm's error code and one-line
// reason, when a dependency set fails to install for a reason of the
// service's (the network, the registry, the disk). A set that cannot be
// resolved as declared is an *InvalidError instead.
var ErrInstall = errors.New("vitehost/preview: dependency install failed")

// ErrInvalid is wrapped by every *InvalidError.
var ErrInvalid = errors.New("vitehost/deps: invalid dependency set")

// Codes of an *InvalidError: the API answers them as they are.
const (
	CodeBadJSON       = "bad_json"
	CodeBadDependency = "bad_dependency"
	CodeViteVersion   = "vite_version"
)

// InvalidError is a dependency set that the client must change: Code says
// which rule it broke (one of the Code constants) and Msg, written for the
// client, what was wrong. It wraps ErrInvalid.
type InvalidError struct {
	Code string
	Msg  string
}

func (e *InvalidError) Error() string { return "vitehost/deps: " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(code, format string, args ...any) error {
	return &InvalidError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

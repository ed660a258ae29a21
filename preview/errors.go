package preview

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vitehost/vitehost/internal/safefs"
	"github.com/vitehost/vitehost/preview/internal/request"
	"github.com/vitehost/vitehost/sandbox"
	"github.com/vitehost/vitehost/vite"
)

// Errors that callers branch on with errors.Is. The API maps them to HTTP
// statuses: ErrInvalid 400, ErrNotFound 404, ErrConflict 409, ErrQuota 413,
// ErrLimit 429, ErrDevServer 502, ErrUnavailable, ErrRemote, ErrFenced and
// ErrClosed 503.
var (
	// ErrInvalid is wrapped by every *RequestError.
	ErrInvalid  = request.ErrInvalid
	ErrNotFound = errors.New("vitehost/preview: session not found")
	// ErrConflict is a create that names a live session but declares
	// another dependency set, or that races another create of the same id.
	ErrConflict = errors.New("vitehost/preview: conflict with the session's state")
	// ErrQuota is wrapped by every *QuotaError.
	ErrQuota       = request.ErrQuota
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
	CodeBadJSON       = request.CodeBadJSON
	CodeBadPath       = request.CodeBadPath
	CodeBadID         = request.CodeBadID
	CodeBadDependency = request.CodeBadDependency
	CodeBadEncoding   = request.CodeBadEncoding
	CodeViteVersion   = request.CodeViteVersion // the vite version is below the floor (see doc.go)
	CodeTooLarge      = request.CodeTooLarge
	CodeBodyTimeout   = "body_timeout" // 408: the request body stopped coming (ServerOptions.BodyTimeout)
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden_origin"       // 403: a browser page of another origin
	CodeMediaType     = "unsupported_media_type" // 415: a POST body that is not application/json
	CodeNotFound      = "not_found"
	CodeConflict      = "conflict"
	CodeQuota         = request.CodeQuota // 413; the answer's error.limit names the quota
	CodeSessionLimit  = "session_limit"
	CodeDiskLimit     = "disk_limit" // 507: the session's disk is full (Options.Sandbox.Limits.Disk, Inodes)
	CodeDevServer     = "dev_server_failed"
	CodeMemoryLimit   = "memory_limit"  // a session's errorCode: its dev server was killed at its memory limit
	CodeProcessLimit  = "process_limit" // a session's errorCode: its dev server reached its process limit
	CodeWatcherLimit  = "watcher_limit" // a session's errorCode: its dev server got no file watcher (the inotify budget of its user)
	CodeUnavailable   = "unavailable"
	CodeInternal      = "internal"
)

// RequestError is an invalid request: Code says which rule it broke (one of
// the Code constants) and Msg what was wrong. It wraps ErrInvalid.
type RequestError = request.Error

// QuotaError is a request that would take its session past one of the
// quotas of Limits, which hold over the session's whole life: Limit names
// the quota ("files", "bytes", "directories" or "depth"), Max is the quota
// and Value what the session would have (for "depth", the components of
// Path). It wraps ErrQuota.
type QuotaError = request.QuotaError

// devServerFailure is the error a client gets when its session's dev server
// failed to start: ErrDevServer with devServerReason. The whole error, with
// the session directory and the server's output, goes to log.
func devServerFailure(log *slog.Logger, err error) error {
	log.Error("vitehost/preview: dev server failed", "err", err)
	return fmt.Errorf("%w: %s", ErrDevServer, devServerReason(err))
}

// devServerReason says why a dev server failed without the host's paths:
// the kind of failure, and the server's last error line with its paths
// and URLs left out.
func devServerReason(err error) string {
	var why string
	var refused *safefs.Error
	switch {
	case errors.As(err, &refused):
		// A file of the project that the host reads (package.json at each
		// start) was replaced by something it does not read: named as the
		// client knows it.
		return "it could not be started: " + refused.Reason()
	case errors.Is(err, sandbox.ErrMemoryLimit):
		return "it reached the memory limit of its sandbox"
	case errors.Is(err, sandbox.ErrPidsLimit):
		return "it reached the process limit of its sandbox"
	case errors.Is(err, sandbox.ErrDiskLimit):
		return "it reached the disk limit of its sandbox"
	case errors.Is(err, sandbox.ErrInodeLimit):
		return "it reached the inode limit of its sandbox"
	case errors.Is(err, vite.ErrWatcherLimit):
		return "it got no file watcher: it reached the inotify limit of its user"
	case errors.Is(err, vite.ErrStartTimeout):
		why = "it was not ready in time"
	case errors.Is(err, vite.ErrStartFailed), errors.Is(err, vite.ErrExited):
		why = "it exited"
	default:
		return "it could not be started"
	}
	var se *vite.StartError
	if errors.As(err, &se) {
		// What the dev server itself reported (a config that throws, a
		// plugin that fails): the client's own error, without paths.
		if msg, ok := strings.CutPrefix(se.Err.Error(), vite.ErrStartFailed.Error()+": "); ok && !errors.Is(se.Err, vite.ErrExited) {
			if len(msg) > 300 {
				msg = msg[:300] + "…"
			}
			return why + ": " + scrubText(msg)
		}
		for i := len(se.Output) - 1; i >= 0; i-- {
			if l := strings.TrimSpace(se.Output[i]); strings.Contains(l, "Error") {
				if len(l) > 300 {
					l = l[:300] + "…"
				}
				return why + ": " + scrubText(l)
			}
		}
	}
	return why
}

package preview

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vitehost/vitehost/ssrproxy"

	"github.com/vitehost/vitehost/preview/internal/request"
)

// CreateRequest is the body of POST {prefix}.
type CreateRequest struct {
	// Files are the project's files. Without a package.json (here or in
	// PackageJSON) the session starts from the React + Vite template and the
	// files replace the template's.
	Files []File `json:"files"`
	// PackageJSON is the project's package.json; only its dependencies and
	// devDependencies are used.
	PackageJSON json.RawMessage `json:"packageJson,omitempty"`
	// SessionID optionally names the session (the form NewID gives). When a
	// live session has this id, the request updates it.
	SessionID string `json:"sessionId,omitempty"`
}

// UpdateRequest is the body of POST {prefix}/{id}/update.
type UpdateRequest struct {
	// Files are written (created or replaced).
	Files []File `json:"files"`
	// Delete names files to remove.
	Delete []string `json:"delete,omitempty"`
	// PackageJSON is the project's package.json, as in CreateRequest (a
	// package.json among Files is the same). A dependency set other than
	// the session's is installed, and the dev server restarts on it.
	PackageJSON json.RawMessage `json:"packageJson,omitempty"`
}

// Limits bound what one request, one session and one node may hold. Zero
// fields take the defaults named beside them.
//
// The session quotas (MaxSession*, MaxPathDepth) hold over a session's whole
// life, not per request: they count what the session holds after the
// request, its template files included, on the node that runs it, which is
// the only writer of its files in the store; a node that takes a session
// over counts the files it restores. A request that would break one is
// refused whole with ErrQuota (413, code "quota_exceeded", error.limit
// naming the quota); one that shrinks a session already over a lowered
// quota passes. They keep one session from exhausting what all share: each
// directory and file is an inotify watch of Vite's watcher (the machine's
// fs.inotify.max_user_watches is shared by every tenant), and each byte
// lives on disk and, on a node of several, in Redis. Limits per client
// (sessions per token or address, request rates) are out of scope: put a
// rate limiter in front of the API.
type Limits struct {
	MaxSessions     int   // live sessions on this node; default 50
	MaxFiles        int   // files (plus deletions) per request; default 1000
	MaxFileBytes    int64 // decoded bytes per file; default 5 MiB
	MaxRequestBytes int64 // decoded bytes per request; default 25 MiB
	MaxPathLength   int   // bytes per file name; default 512

	MaxSessionFiles int   // files one session holds; default 2000
	MaxSessionBytes int64 // bytes of the files one session holds; default 64 MiB
	MaxSessionDirs  int   // directories one session's files make; default 500
	MaxPathDepth    int   // components of a file name ("src/App.tsx" has 2); default 16

	// MaxSessionWebSockets bounds the WebSockets open at once to one
	// session's preview (HMR sockets, Vite's pings, the app's own), each a
	// connection and a descriptor to its dev server; more are refused with
	// 429 before the upgrade. Default 32.
	MaxSessionWebSockets int
	// MaxSessionRequests bounds the HTTP/1 requests in flight at once to
	// one session's preview, each holding a connection of the node's
	// Server until the dev server answers, which the tenant's code may
	// never do; more are answered 429 at once. HTTP/2 streams share their
	// connection and are not counted. Keep MaxSessions times the sum of
	// this and MaxSessionWebSockets below ServerOptions.MaxConns, so that
	// previews cannot hold every connection of the node. Default
	// DefaultMaxSessionRequests.
	MaxSessionRequests int
	// MaxBytesInFlight bounds the bytes of the API request bodies this
	// node holds at once (each request also holds its decoded files, at
	// most as many bytes again). A request takes its share, its
	// Content-Length or, without one, the most a body may be, before its
	// body is read, and keeps it until it is answered; one that does not
	// get it within 30 s is answered 503 with Retry-After, code
	// "unavailable" (before its body is sent, when the client sent
	// "Expect: 100-continue"). Default DefaultMaxBytesInFlight.
	MaxBytesInFlight int64
	// MaxWebSocketMessage bounds a WebSocket message a client sends to a
	// session's preview (one frame, or a fragmented message's frames
	// together), on Vite's sockets and the project's own: one over it
	// closes the socket with 1009 before any byte of it reaches the dev
	// server. What the dev server sends is not bounded. Default
	// ssrproxy.DefaultMaxViteMessage (1 MiB).
	MaxWebSocketMessage int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxSessions <= 0 {
		l.MaxSessions = 50
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = 1000
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = 5 << 20
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = 25 << 20
	}
	if l.MaxPathLength <= 0 {
		l.MaxPathLength = 512
	}
	if l.MaxSessionFiles <= 0 {
		l.MaxSessionFiles = 2000
	}
	if l.MaxSessionBytes <= 0 {
		l.MaxSessionBytes = 64 << 20
	}
	if l.MaxSessionDirs <= 0 {
		l.MaxSessionDirs = 500
	}
	if l.MaxPathDepth <= 0 {
		l.MaxPathDepth = 16
	}
	if l.MaxBytesInFlight <= 0 {
		l.MaxBytesInFlight = DefaultMaxBytesInFlight
	}
	if l.MaxSessionWebSockets <= 0 {
		l.MaxSessionWebSockets = DefaultMaxSessionWebSockets
	}
	if l.MaxSessionRequests <= 0 {
		l.MaxSessionRequests = DefaultMaxSessionRequests
	}
	if l.MaxWebSocketMessage <= 0 {
		l.MaxWebSocketMessage = ssrproxy.DefaultMaxViteMessage
	}
	return l
}

// bodyLimit is the most bytes a request body may have: the decoded limit
// grown by base64's 4/3 and JSON's escaping, plus room for the envelope.
func (l Limits) bodyLimit() int64 { return l.MaxRequestBytes*3/2 + 1<<20 }

// checkedFiles is a request's files after validation: what to write, what
// was dropped, and the package.json they carried, if any.
type checkedFiles struct {
	write       []pendingFile
	ignored     []string
	packageJSON []byte
}

// requestLimits are the bounds of l that hold for one request's files.
func (l Limits) requestLimits() request.Limits {
	return request.Limits{
		MaxFiles: l.MaxFiles, MaxFileBytes: l.MaxFileBytes, MaxRequestBytes: l.MaxRequestBytes,
		MaxPathLength: l.MaxPathLength, MaxPathDepth: l.MaxPathDepth,
	}
}

// sentFiles decodes the files of a request made in Go. A file whose
// content is too large for any encoding to fit Limits.MaxFileBytes is
// left undecoded: checkSent refuses it.
func sentFiles(files []File, l Limits) []request.Sent {
	out := make([]request.Sent, len(files))
	for i, f := range files {
		out[i] = request.Sent{Name: f.Name, SentLen: len(f.Content)}
		if int64(len(f.Content))*3/4 <= l.MaxFileBytes {
			out[i].Data, out[i].Err = request.Decode(f.Name, f.Content, f.Encoding)
		}
	}
	return out
}

// checkSent validates every file of a request before anything is written
// (request.Check): names, encodings and sizes. allowConfig keeps files
// that Node would run.
func checkSent(files []request.Sent, deletes []string, l Limits, allowConfig bool) (checkedFiles, error) {
	c, err := request.Check(files, deletes, l.requestLimits(), allowConfig)
	if err != nil {
		return checkedFiles{}, err
	}
	out := checkedFiles{ignored: c.Ignored, packageJSON: c.PackageJSON, write: make([]pendingFile, len(c.Write))}
	for i, f := range c.Write {
		out.write[i] = pendingFile{name: f.Name, data: f.Data}
	}
	return out, nil
}

// decodeJSON decodes the JSON value data holds into v with a clear error.
// json.Unmarshal reads data where it lies (a Decoder would copy it into a
// buffer of its own), and refuses anything after the value.
func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return request.Invalid(CodeBadJSON, "malformed JSON: %v", err)
	}
	return nil
}

// describeFiles is for logs: a short list of names.
func describeFiles(files []pendingFile) string {
	names := make([]string, 0, min(len(files), 6))
	for i, f := range files {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(files)-5))
			break
		}
		names = append(names, f.name)
	}
	return strings.Join(names, ", ")
}

package preview

import (
	"errors"

	"github.com/vitehost/vitehost/preview/internal/deps"
)

// This file is the edge between the Manager and its dependency sets
// (internal/deps): the names of the set that preview's callers use, and
// the translation of the set's refusals into the API's request errors.

// Deps is a normalized dependency set: package name to version spec, with
// dependencies and devDependencies merged (a preview installs both).
type Deps = deps.Set

// DefaultVite is the vite spec added to a dependency set that lacks one: a
// session cannot start without it.
const DefaultVite = deps.DefaultVite

// ErrInstall is returned, wrapped with npm's error code and one-line
// reason, when a dependency set fails to install for a reason of the
// service's (the network, the registry, the disk). A set that cannot be
// resolved as declared is a *RequestError instead.
var ErrInstall = deps.ErrInstall

// ParsePackageJSON reads the dependencies and devDependencies of a
// client-sent package.json and checks every name and spec: only registry
// packages, with exact versions, ranges or dist-tags. Git, GitHub, file,
// link, workspace and URL specs are refused. Scripts and every other field
// are ignored: nothing of the client's package.json runs.
func ParsePackageJSON(data []byte) (Deps, error) {
	d, err := deps.Parse(data)
	return d, requestError(err)
}

// Warning is something about a session's dependencies that the client
// should know and that does not stop the session: the create answer and
// the event stream carry it.
type Warning = deps.Warning

// The codes of a Warning.
const (
	WarnViteAdvisories = deps.WarnViteAdvisories // its vite has published advisories on reading the dev server's files
	WarnLegacyPeerDeps = deps.WarnLegacyPeerDeps // npm refused a peer conflict; installed with --legacy-peer-deps
	WarnViteAdded      = deps.WarnViteAdded      // the package.json had no vite; the template's was added
)

// checkViteRange refuses a declared vite spec all of whose releases lie
// below floor, before anything resolves: a *RequestError with
// CodeViteVersion that proposes the newest line set's plugins accept.
func checkViteRange(spec, floor string, set Deps) error {
	return requestError(deps.CheckViteRange(spec, floor, set))
}

// completeDeps returns a client's set ready to run (see deps.Complete):
// one without vite gets the template's, with a warning.
func completeDeps(set Deps) (Deps, []Warning, error) {
	template, err := templateDeps()
	if err != nil {
		return nil, nil, err
	}
	out, warnings, err := deps.Complete(set, template)
	return out, warnings, requestError(err)
}

// requestError returns the *RequestError of a set that deps refused, and
// any other error as it is.
func requestError(err error) error {
	var ie *deps.InvalidError
	if errors.As(err, &ie) {
		return &RequestError{Code: ie.Code, Msg: ie.Msg}
	}
	return err
}

// scrubText removes URLs, addresses and the host's paths from a line of a
// tool's output.
func scrubText(s string) string { return deps.ScrubText(s) }

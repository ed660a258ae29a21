package deps

// Warning is something about a dependency set that the client should know
// and that does not stop its session: Code says what (one of the Warn
// constants), Message, written for the client, what to do about it.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Codes of a Warning.
const (
	// WarnViteAdvisories: the session's vite has published advisories on
	// reading the dev server's files.
	WarnViteAdvisories = "vite_advisories"
	// WarnLegacyPeerDeps: npm refused the set for a peer conflict, and it
	// was installed with --legacy-peer-deps, as pnpm and yarn would.
	WarnLegacyPeerDeps = "legacy_peer_deps"
	// WarnViteAdded: the package.json had no vite, and the template's
	// vite and React plugin were added.
	WarnViteAdded = "vite_added"
)

package deps

// Progress is one step of a set's resolution and install, for a caller that
// shows it (the session's event stream).
type Progress struct {
	Phase Phase `json:"phase"`
	// Packages is how many packages the install fetches or links: set with
	// PhaseDownloading.
	Packages int `json:"packages,omitempty"`
}

// Phase names a step of an install.
type Phase string

// The steps of an install, in order. A set already installed goes straight
// to PhaseDone. With the package store, one pnpm run resolves, fetches and
// links (storeinstall.go): PhaseResolving spans it, and PhaseDownloading,
// with the packages new to the set, and PhaseLinking follow it as the
// install is put in place.
const (
	PhaseResolving   Phase = "resolving"   // the registry's metadata is read into a lockfile
	PhaseDownloading Phase = "downloading" // the packages the lockfile pins are fetched
	PhaseLinking     Phase = "linking"     // the install is put in place
	PhaseDone        Phase = "done"
)

// progressFunc is a caller's report function; nil reports nothing.
type progressFunc func(Progress)

func (f progressFunc) report(p Progress) {
	if f != nil {
		f(p)
	}
}

// notify reports p to every request that waits for call.
func (c *Cache) notify(call *installCall, p Progress) {
	c.mu.Lock()
	fs := append([]progressFunc(nil), call.watchers...)
	c.mu.Unlock()
	for _, f := range fs {
		f.report(p)
	}
}

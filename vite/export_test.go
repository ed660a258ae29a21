package vite

// Internals for the tests of package vite_test.
var (
	GroupPIDs = groupPIDs
)

// SetPick replaces the port picker until the returned function restores it.
func SetPick(f func(httpPort, hmrPort int) (int, int, error)) (restore func()) {
	old := pick
	pick = func(httpPort, hmrPort int) (ports, error) {
		h, m, err := f(httpPort, hmrPort)
		return ports{http: h, hmr: m, fixedHTTP: httpPort != 0, fixedHMR: hmrPort != 0}, err
	}
	return func() { pick = old }
}

// PickPorts is the real port picker.
func PickPorts(httpPort, hmrPort int) (int, int, error) {
	p, err := pickPorts(httpPort, hmrPort)
	return p.http, p.hmr, err
}

package vite

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/phayes/freeport"
)

// maxPortAttempts bounds the starts of one launch that fail because another
// process took a picked port between the pick and the bind.
const maxPortAttempts = 5

// ports is one pick of the two ports a dev server binds.
type ports struct {
	http, hmr int
	// fixedHTTP and fixedHMR are set for ports the caller chose: losing
	// one of those is final, a new pick cannot help.
	fixedHTTP, fixedHMR bool
}

// errPortRace is what a launch attempt returns when a port it was given is
// taken; launch then picks again.
type errPortRace struct{ port int }

func (e *errPortRace) Error() string { return fmt.Sprintf("port %d is already in use", e.port) }

// pick is pickPorts; tests replace it to lose a port race on purpose.
var pick = pickPorts

// pickPorts returns the ports of the next start: the caller's where fixed,
// else free ones. This is the one place where the launcher picks ports.
//
// phayes/freeport finds a free port by binding port 0 on localhost and
// closing the listener again; it holds all the listeners of one call until
// the last is bound, so the two ports differ. The dev server binds them
// moments later with strict ports, and a port that another process took in
// between comes back as errPortRace: the launch then picks again, at most
// maxPortAttempts times.
func pickPorts(httpPort, hmrPort int) (ports, error) {
	p := ports{http: httpPort, hmr: hmrPort, fixedHTTP: httpPort != 0, fixedHMR: hmrPort != 0}
	var want []*int
	for _, port := range []*int{&p.http, &p.hmr} {
		if *port == 0 {
			want = append(want, port)
		}
	}
	if len(want) == 0 {
		return p, nil
	}
	free, err := freeport.GetFreePorts(len(want))
	if err != nil {
		return p, fmt.Errorf("vitehost/vite: pick a free port: %w", err)
	}
	for i, port := range want {
		*port = free[i]
	}
	return p, nil
}

// isFixed reports whether port is one the caller chose.
func (p ports) isFixed(port int) bool {
	return (p.fixedHTTP && port == p.http) || (p.fixedHMR && port == p.hmr)
}

// portRace returns the port of a lost port race in err's chain.
func portRace(err error) (int, bool) {
	var r *errPortRace
	if errors.As(err, &r) {
		return r.port, true
	}
	return 0, false
}

// dialHost returns the host for URLs of a listener bound to host: the
// loopback address of the same family for a wildcard bind.
func dialHost(host string) string {
	switch host {
	case "", "0.0.0.0":
		return "127.0.0.1"
	case "::", "[::]":
		return "::1"
	}
	return host
}

// listenURL returns the http URL of a listener bound to host:port.
func listenURL(host string, port int) *url.URL {
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(dialHost(host), strconv.Itoa(port))}
}

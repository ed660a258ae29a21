package ssrproxy

// The headers that decide how a request is relayed: whether it asks for a
// protocol switch, whether it is Vite's own WebSocket, and which headers
// describe a connection rather than the request.

import (
	"iter"
	"net/http"
	"strings"
)

// isUpgrade reports whether h asks to switch protocols.
func isUpgrade(h http.Header) bool {
	return len(h.Values("Upgrade")) > 0 && hasToken(h.Values("Connection"), "upgrade", true)
}

// isViteSocket reports whether a WebSocket handshake is Vite's client: its
// Sec-WebSocket-Protocol lists vite-hmr (the HMR channel) or vite-ping (the
// "is the server back?" probe). Subprotocol names are compared exactly, as
// Vite does.
func isViteSocket(h http.Header) bool {
	v := h.Values("Sec-WebSocket-Protocol")
	return hasToken(v, "vite-hmr", false) || hasToken(v, "vite-ping", false)
}

// tokens yields the elements of comma-separated header values, without the
// spaces and tabs around them and without empty elements.
func tokens(values []string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, v := range values {
			for v != "" {
				var elem string
				elem, v, _ = strings.Cut(v, ",")
				elem = strings.Trim(elem, " \t")
				if elem != "" && !yield(elem) {
					return
				}
			}
		}
	}
}

// hasToken reports whether token is an element of the comma-separated
// values, compared ASCII case-insensitively when fold is set.
func hasToken(values []string, token string, fold bool) bool {
	for elem := range tokens(values) {
		if elem == token || fold && strings.EqualFold(elem, token) {
			return true
		}
	}
	return false
}

// hopHeaders are the headers that describe one connection, not the request
// (RFC 9110, 7.6.1).
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopHeaders deletes the hop-by-hop headers of h and the headers that
// its Connection header names.
func removeHopHeaders(h http.Header) {
	for name := range tokens(h.Values("Connection")) {
		h.Del(name)
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// validUpgrade reports whether an Upgrade value is a printable ASCII token
// that can be sent on.
func validUpgrade(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

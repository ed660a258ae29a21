package ssrproxy

// The headers that decide how a request is relayed: whether it asks for a
// protocol switch, whether it is Vite's own WebSocket, and which headers
// describe a connection rather than the request.

import (
	"iter"
	"net/http"

	"github.com/vitehost/vitehost/internal/hop"
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

// tokens, hasToken and removeHopHeaders are internal/hop's, shared with
// preview's forwarding between nodes.
func tokens(values []string) iter.Seq[string] { return hop.Tokens(values) }

func hasToken(values []string, token string, fold bool) bool {
	return hop.HasToken(values, token, fold)
}

func removeHopHeaders(h http.Header) { hop.Remove(h) }

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

// Package hop reads the headers that describe one HTTP connection rather
// than its request (RFC 9110, 7.6.1), for the two relays of this module:
// ssrproxy in front of a dev server and preview's forwarding between nodes.
package hop

import (
	"iter"
	"net/http"
	"strings"
)

// Tokens yields the elements of comma-separated header values, without the
// spaces and tabs around them and without empty elements.
func Tokens(values []string) iter.Seq[string] {
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

// HasToken reports whether token is an element of the comma-separated
// values, compared ASCII case-insensitively when fold is set.
func HasToken(values []string, token string, fold bool) bool {
	for elem := range Tokens(values) {
		if elem == token || fold && strings.EqualFold(elem, token) {
			return true
		}
	}
	return false
}

// headers are the headers that describe one connection, not the request.
var headers = []string{
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

// Remove deletes the hop-by-hop headers of h and the headers that its
// Connection header names.
func Remove(h http.Header) {
	for name := range Tokens(h.Values("Connection")) {
		h.Del(name)
	}
	for _, name := range headers {
		h.Del(name)
	}
}

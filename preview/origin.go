package preview

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// This file is what keeps the pages of other sites from using the API
// through their visitors' browsers. A page can send a POST to any address
// without the browser asking first (a CORS "simple request") only when its
// body has the type text/plain, application/x-www-form-urlencoded or
// multipart/form-data, or none: so the API takes POST bodies of type
// application/json only (415 otherwise), which a browser sends to another
// origin only after a preflight that the API does not grant. Requests that
// carry an Origin other than PublicURL's own or one of AllowedOrigins get
// 403, which also covers DNS rebinding (a page whose own host name resolves
// to the service). Clients that are not browsers send no Origin and are not
// affected; the bearer token (Options.Token) is what authenticates them.

// parseOrigin returns the canonical form of an origin: lowercase scheme and
// host, without the scheme's default port.
func parseOrigin(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.User != nil || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if port != "" || strings.Contains(host, ":") {
		host = net.JoinHostPort(host, port)
		host = strings.TrimSuffix(host, ":") // an IPv6 literal without a port: [::1]
	}
	return scheme + "://" + host, true
}

// origins is the set of origins whose pages may call the API.
type origins struct {
	own     string
	allowed map[string]bool // own included
}

func newOrigins(public *url.URL, allowed []string) origins {
	own, _ := parseOrigin(public.Scheme + "://" + public.Host) // PublicURL was checked
	o := origins{own: own, allowed: map[string]bool{own: true}}
	for _, a := range allowed {
		o.allowed[a] = true // canonical already (withDefaults)
	}
	return o
}

// checkOrigin answers 403 for a request whose Origin is not allowed and
// returns the error code it wrote; "" lets the request through. A request
// from an allowed origin other than the API's own gets the CORS headers
// that let its page read the answer.
func (m *Manager) checkOrigin(w http.ResponseWriter, r *http.Request) string {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	canon, ok := parseOrigin(origin)
	if !ok || !m.origins.allowed[canon] {
		return writeError(w, http.StatusForbidden, CodeForbidden,
			"the API does not take requests from pages of "+strings.ToValidUTF8(origin, "?")+": only from its own origin and Options.AllowedOrigins")
	}
	if canon != m.origins.own {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	return ""
}

// preflight answers the CORS preflight of the allowed origins: their pages
// may send JSON bodies and the token.
func (m *Manager) preflight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" || r.Header.Get("Origin") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if code := m.checkOrigin(w, r); code != "" {
			m.metrics.countRequest("preflight", code)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		m.metrics.countRequest("preflight", "ok")
	})
}

// checkJSONBody answers 415 for a body that is not declared as JSON and
// returns the error code it wrote; "" lets the request through.
func checkJSONBody(w http.ResponseWriter, r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "application/json" {
		return ""
	}
	w.Header().Set("Accept-Post", "application/json")
	return writeError(w, http.StatusUnsupportedMediaType, CodeMediaType, "the body must be JSON sent with Content-Type: application/json")
}

// checkToken answers 401 when a token is configured and the request does
// not carry it, and returns the error code it wrote; "" lets the request
// through. Both sides are hashed first so that the comparison takes the
// same time whatever the length of the guess.
func (m *Manager) checkToken(w http.ResponseWriter, r *http.Request) string {
	if m.opts.Token == "" {
		return ""
	}
	want := sha256.Sum256([]byte(m.opts.Token))
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vitehost-preview"`)
		return writeError(w, http.StatusUnauthorized, CodeUnauthorized, "missing or wrong API token (Authorization: Bearer <token>)")
	}
	return ""
}

// authorize wraps next in the token check, for handlers outside the API
// (Metrics).
func (m *Manager) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.checkToken(w, r) == "" {
			next.ServeHTTP(w, r)
		}
	})
}

package preview

import (
	"net/http"
	"net/url"
	"strings"
)

// This file keeps a preview's responses unreadable to other origins. Vite
// answers CORS requests itself: 6.0.9+ (and 5.4.12+) allow any origin on
// localhost, 127.0.0.1 or [::1] by default (server.cors), so that a page of
// preview-x.localhost could fetch preview-y.localhost's page, with its HMR
// token; older releases, and a project's server.cors: true, allow every
// origin. The router takes out every Access-Control-* header of a
// response to a request from another origin, whatever the Vite version
// and the project's config: the browser then refuses the page the response
// (and the preflight of anything but a simple request fails).

// crossOrigin reports whether r comes from a page of another origin than
// the host it asks: its Origin header names another host (or "null", an
// opaque origin). A request without Origin is same-origin or not a CORS
// request, whose response a page cannot read.
func crossOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	return err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host)
}

// noCORS is a ResponseWriter that sends no Access-Control-* header.
type noCORS struct {
	http.ResponseWriter
}

func (w noCORS) strip() {
	h := w.ResponseWriter.Header()
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
}

func (w noCORS) WriteHeader(code int) {
	w.strip()
	w.ResponseWriter.WriteHeader(code)
}

func (w noCORS) Write(p []byte) (int, error) {
	w.strip() // when nothing called WriteHeader: once sent, stripping does nothing
	return w.ResponseWriter.Write(p)
}

// Flush passes a flush on; the headers go out with it, so they are
// stripped first.
func (w noCORS) Flush() {
	w.strip()
	http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (a WebSocket's
// hijack, deadlines).
func (w noCORS) Unwrap() http.ResponseWriter { return w.ResponseWriter }

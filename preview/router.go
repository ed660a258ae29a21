package preview

import (
	"context"
	"errors"
	"html/template"
	"net"
	"net/http"
	"path"
	"strings"
	"time"
)

// Router returns the handler for the whole public domain: a request for
// preview-{id}.<domain> goes to that session's dev server through its
// ssrproxy (pages and modules over HTTP, the HMR socket at /hmr), an unknown
// or expired session gets a 404 page, and every other host goes to
// fallback (the API, the host application). A nil fallback answers 404.
//
// On a node of several (Options.NodeAddr), a session that another node
// runs is forwarded there, WebSockets included, and a session whose node is
// gone is taken over: the page shows "starting" until it runs here. The
// sessions this node runs are served without a store call.
func (m *Manager) Router(fallback http.Handler) http.Handler {
	if fallback == nil {
		fallback = http.NotFoundHandler()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := m.sessionHost(r.Host)
		if !ok {
			fallback.ServeHTTP(w, r)
			return
		}
		if actsOnHost(r) {
			notFoundPage(w, id)
			return
		}
		if crossOrigin(r) {
			w = noCORS{w} // cors.go: no page of another origin reads a preview
		}
		// A session that stopped here meanwhile (errStopped) is located
		// again by visit.
		err := visitDo(r.Context(), m, id, adoptOrphan, func(loc location) error {
			if loc.remote {
				return m.relay(w, r, loc, nil)
			}
			return m.serveSession(w, r, loc.s)
		})
		if err != nil && !errors.Is(err, errForwarded) {
			m.routerError(w, r, id, err)
		}
	})
}

// hostEndpoints are dev-server endpoints that act on the machine that runs
// the dev server rather than serve the preview: Vite's launch-editor
// middleware starts $EDITOR with a file the request names. Vite mounts it
// with connect, which matches path prefixes without regard to case.
var hostEndpoints = []string{"/__open-in-editor"}

// actsOnHost reports whether r asks for one of hostEndpoints.
func actsOnHost(r *http.Request) bool {
	for _, p := range []string{r.URL.Path, r.URL.RawPath} {
		p = strings.ToLower(path.Clean("/" + p))
		for _, e := range hostEndpoints {
			if strings.HasPrefix(p, e) {
				return true
			}
		}
	}
	return false
}

// How long a request waits for a session's dev server that is starting or
// waking: then a navigation gets the "starting" page, which reloads
// itself, and anything else a 503, which Vite's client answers by trying
// again (a vite-ping handshake from an open tab fails, as it must while
// the server is down).
const (
	navigationWait = 5 * time.Second
	requestWait    = 30 * time.Second
)

// serveSession serves r from session s of this node, waking it when it
// hibernates. It returns errStopped, having written nothing, when s stopped
// here meanwhile (it was deleted, or another node claimed it).
func (m *Manager) serveSession(w http.ResponseWriter, r *http.Request, s *session) error {
	if deniedRequest(r, m.fsRoots(s)) {
		forbidden(w)
		return nil
	}
	s.touch()
	s.warm.note(r)
	upgrade := r.Header.Get("Upgrade") != ""
	switch {
	case upgrade:
		if max := m.opts.Limits.MaxSessionWebSockets; !s.holdSocket(max) {
			tooManySockets(w, max)
			return nil
		}
		defer s.dropSocket()
	case r.ProtoMajor == 1:
		if max := m.opts.Limits.MaxSessionRequests; !s.holdRequest(max) {
			tooManyRequests(w, max)
			return nil
		}
		defer s.dropRequest()
	}
	if p := s.proxy.Load(); p != nil {
		m.metrics.countProxied(upgrade)
		p.ServeHTTP(w, r)
		return nil
	}
	wait := requestWait
	if isNavigation(r) {
		wait = navigationWait
	}
	why := r.Method + " " + r.URL.Path
	if p := r.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		why += " (WebSocket " + p + ")"
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	run, err := s.serving(ctx, why)
	cancel()
	switch {
	case err == nil:
		m.metrics.countProxied(upgrade)
		run.proxy.ServeHTTP(w, r)
	case errors.Is(err, errStopped):
		return err
	case errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		startingPage(w, r)
	default:
		m.routerError(w, r, s.id, err)
	}
	return nil
}

// isNavigation reports whether r is a browser loading a page.
func isNavigation(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Upgrade") == "" && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// routerError answers a preview request that could not be served.
func (m *Manager) routerError(w http.ResponseWriter, r *http.Request, id string, err error) {
	var re *RequestError
	switch {
	case errors.Is(err, ErrNotFound), errors.As(err, &re):
		notFoundPage(w, id)
	case errors.Is(err, ErrClosed):
		w.Header().Set(closedHeader, "1")
		unavailablePage(w, r, "The preview service is restarting.")
	case errors.Is(err, ErrUnavailable):
		m.log.Warn("vitehost/preview: cannot find the session's node", "session", id, "err", err)
		unavailablePage(w, r, "The preview service cannot reach its session store.")
	case errors.Is(err, ErrLimit):
		m.log.Warn("vitehost/preview: cannot take the session over", "session", id, "err", err)
		unavailablePage(w, r, "The preview service is at capacity.")
	case errors.Is(err, ErrDevServer):
		// Its start failed, and said why in the log and in its status.
		unavailablePage(w, r, "The preview's dev server failed to start.")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
	default:
		m.log.Error("vitehost/preview: preview request failed", "session", id, "err", err)
		unavailablePage(w, r, "The preview is not available.")
	}
}

// sessionHost returns the session id of a preview host name, matched
// against the public URL's host name; the port is not compared (a load
// balancer may rewrite it).
func (m *Manager) sessionHost(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	label, domain, ok := strings.Cut(host, ".")
	if !ok || domain != strings.ToLower(m.public.Hostname()) {
		return "", false
	}
	id, ok := strings.CutPrefix(label, "preview-")
	return id, ok
}

var notFoundTmpl = template.Must(template.New("404").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview not found</title>
<style>body{font-family:system-ui,sans-serif;margin:4rem auto;max-width:36rem;color:#333}</style></head>
<body><h1>Preview not found</h1><p>There is no preview session <code>{{.}}</code>. It may have expired or been deleted.</p></body></html>
`))

func notFoundPage(w http.ResponseWriter, id string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	notFoundTmpl.Execute(w, id)
}

const startingHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Starting preview</title>
<meta http-equiv="refresh" content="1">
<style>body{font-family:system-ui,sans-serif;margin:4rem auto;max-width:36rem;color:#333}</style></head>
<body><h1>Starting the preview…</h1><p>This page reloads by itself when the preview is ready.</p></body></html>
`

const unavailableHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Preview unavailable</title>
<meta http-equiv="refresh" content="2">
<style>body{font-family:system-ui,sans-serif;margin:4rem auto;max-width:36rem;color:#333}</style></head>
<body><h1>Preview temporarily unavailable</h1><p>{{.}} This page tries again by itself.</p></body></html>
`

var unavailableTmpl = template.Must(template.New("503").Parse(unavailableHTML))

// unavailablePage answers 503: a page that reloads itself for a browser
// navigation, the reason in plain text otherwise (a failed handshake for
// Vite's client, which then waits and tries again).
func unavailablePage(w http.ResponseWriter, r *http.Request, why string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "2")
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		unavailableTmpl.Execute(w, why)
		return
	}
	http.Error(w, why, http.StatusServiceUnavailable)
}

func startingPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Retry-After", "1")
	if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(startingHTML))
		return
	}
	http.Error(w, "preview is starting", http.StatusServiceUnavailable)
}

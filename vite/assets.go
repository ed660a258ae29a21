package vite

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"strings"

	"github.com/vitehost/vitehost/hotfile"
)

// ErrNoBuild: Assets was asked for tags while the dev server is not running
// and it has no Manifest.
var ErrNoBuild = errors.New("vitehost/vite: the dev server is not running and there is no build manifest")

// DevSource tells whether the dev server runs and where: *hotfile.Watcher
// (the hot file) and *Server both are one. A nil HTTP target means it does
// not run.
type DevSource interface {
	Targets() hotfile.Targets
}

// AssetsOptions configures NewAssets. A nil *AssetsOptions means the
// defaults: production tags from nothing, which fail with ErrNoBuild.
type AssetsOptions struct {
	// Dev says whether the dev server runs; while it does, the tags load
	// the entries from it. Nil means production always.
	Dev DevSource
	// Manifest gives the tags while the dev server does not run. Nil means
	// there is no build: Tags then fails with ErrNoBuild.
	Manifest *Manifest
	// DevOrigin is the scheme and host the browser reaches the dev server
	// at, such as "http://localhost:5173", for a page whose own origin does
	// not relay to the dev server. "" means the page's own origin: the Go
	// app relays the dev server's paths (ssrproxy.Proxy as its catch-all).
	DevOrigin string
	// DevBase is the dev server's base path; "" means "/".
	DevBase string
	// React adds the preamble of @vitejs/plugin-react (React Fast Refresh)
	// in development, which a page that Vite did not serve must run before
	// any component module: without it the plugin fails with "can't detect
	// preamble".
	React bool
}

// Assets gives the tags that load a page's front-end entries, from the dev
// server while it runs and from the build's manifest otherwise: one value
// for a Go template that works the same from the first go run to
// production. Its methods may be called from any number of goroutines.
type Assets struct {
	dev      DevSource
	manifest *Manifest
	origin   string
	base     string
	react    bool
}

// NewAssets returns Assets configured by opts, which it copies.
func NewAssets(opts *AssetsOptions) *Assets {
	var o AssetsOptions
	if opts != nil {
		o = *opts
	}
	base := o.DevBase
	if !strings.HasPrefix(base, "/") {
		base = "/" + base
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &Assets{
		dev:      o.Dev,
		manifest: o.Manifest,
		origin:   strings.TrimSuffix(o.DevOrigin, "/"),
		base:     base,
		react:    o.React,
	}
}

// Dev reports whether the dev server runs now, which is what Tags decides
// by: one atomic load for a *hotfile.Watcher or a *Server.
func (a *Assets) Dev() bool {
	return a.dev != nil && a.dev.Targets().HTTP != nil
}

// Tags returns the HTML that loads the entries: while the dev server runs,
// Vite's client (/@vite/client), the React preamble with
// AssetsOptions.React, and each entry from the dev server (a stylesheet
// link for a CSS entry, a module script otherwise); else Manifest.Tags. An
// entry is a path from the project root, such as "src/main.ts". nonce, when
// not "", is set on every tag.
func (a *Assets) Tags(nonce string, entries ...string) (template.HTML, error) {
	if !a.Dev() {
		if a.manifest == nil {
			return "", ErrNoBuild
		}
		return a.manifest.Tags(nonce, entries...)
	}
	var b strings.Builder
	attr := ""
	if nonce != "" {
		attr = fmt.Sprintf(` nonce="%s"`, template.HTMLEscapeString(nonce))
	}
	url := func(p string) string {
		return template.HTMLEscapeString(a.origin + a.base + strings.TrimPrefix(p, "/"))
	}
	if a.react {
		// The preamble of Vite's backend integration guide
		// (https://vite.dev/guide/backend-integration): what plugin-react
		// injects into the index.html that Vite serves itself.
		fmt.Fprintf(&b, `<script type="module"%s>
import RefreshRuntime from %s
RefreshRuntime.injectIntoGlobalHook(window)
window.$RefreshReg$ = () => {}
window.$RefreshSig$ = () => (type) => type
window.__vite_plugin_react_preamble_installed__ = true
</script>
`, attr, jsString(a.origin+a.base+"@react-refresh"))
	}
	fmt.Fprintf(&b, `<script type="module" src="%s"%s></script>`, url("@vite/client"), attr)
	for _, e := range entries {
		if isCSS(e) {
			fmt.Fprintf(&b, "\n"+`<link rel="stylesheet" href="%s"%s>`, url(e), attr)
		} else {
			fmt.Fprintf(&b, "\n"+`<script type="module" src="%s"%s></script>`, url(e), attr)
		}
	}
	return template.HTML(b.String()), nil
}

// jsString returns s as a JavaScript string literal that is safe inside a
// script element: json.Marshal escapes <, > and &, so that no "</script>"
// ends the element early.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

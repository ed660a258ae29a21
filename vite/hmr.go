package vite

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// hmrClient is where the browser's HMR client connects: Vite's clientPort,
// protocol, host and path options. Zero fields leave Vite's default, which
// is the page's own.
type hmrClient struct {
	Protocol string `json:"protocol,omitempty"`
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Path     string `json:"path,omitempty"`
}

// checkPublic validates the public URL and the HMR path of Options.
func checkPublic(public *url.URL, path string) error {
	if path != "" && (!strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#\\ \t\r\n")) {
		return fmt.Errorf("%w: HMRPath %q must be an absolute URL path without query", ErrInvalidOptions, path)
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: HMRPath %q has a dot segment", ErrInvalidOptions, path)
		}
	}
	if public == nil {
		return nil
	}
	if public.Scheme != "http" && public.Scheme != "https" {
		return fmt.Errorf("%w: PublicURL %q is not an http or https URL", ErrInvalidOptions, public.Redacted())
	}
	if public.Hostname() == "" && public.Port() == "" {
		// "http://:8000" is fine: the page's host name, that port.
		return fmt.Errorf("%w: PublicURL %q has neither a host nor a port", ErrInvalidOptions, public.Redacted())
	}
	if p := public.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("%w: PublicURL %q has an invalid port", ErrInvalidOptions, public.Redacted())
		}
	}
	return nil
}

// browserHMR returns where the browser's HMR client must connect. Behind a
// proxy that is the proxy's public host and port, never the HMR port itself:
// Vite would otherwise send the browser to <page host>:<hmr port> and bypass
// the proxy. Without a public URL the browser talks to the dev server
// directly and connects to the HMR port on the page's host.
func browserHMR(public *url.URL, hmrPort int, path string) hmrClient {
	if public == nil {
		return hmrClient{Protocol: "ws", Port: hmrPort, Path: path}
	}
	c := hmrClient{Protocol: "ws", Host: public.Hostname(), Port: 80, Path: path}
	if public.Scheme == "https" {
		c.Protocol, c.Port = "wss", 443
	}
	if p, err := strconv.Atoi(public.Port()); err == nil {
		c.Port = p
	}
	return c
}

// allowedHosts returns the host names the dev server must accept besides
// its defaults (localhost, *.localhost and IP literals): the public host.
func allowedHosts(public *url.URL) []string {
	if public == nil {
		return nil
	}
	h := public.Hostname()
	if h == "" || h == "localhost" || strings.HasSuffix(h, ".localhost") || net.ParseIP(h) != nil {
		return nil
	}
	return []string{h}
}

// Package vite launches and supervises a front-end dev server (plain Vite
// with the project's own config and plugins, Nuxt 4, or Astro) as a child
// process, and publishes where it listens.
//
// [Start] picks a free HTTP port and a separate free HMR port (or takes the
// caller's), binds both on loopback unless told otherwise, and configures the
// dev server so that the browser's HMR client connects to the public address
// of the proxy in front of it ([Options.PublicURL]), never to the HMR port
// directly. It returns when the dev server answers; [Server.Targets] then
// holds the HTTP and HMR URLs, and the hot files, when asked for, hold them
// too (see package hotfile).
//
// Plain Vite runs through a small Node script embedded in the Go binary: it
// imports the project's own vite, merges the launch settings and
// [Options.Config] over the project's config file, and reports the bound
// ports, the Vite version and the HMR token in one JSON line. Nuxt runs as
// nuxi dev from the project's node_modules with a generated layer that does
// the same for Nuxt's Vite servers. Astro runs through its own dev() API,
// called by a second embedded script that hands Astro's Vite server the same
// settings. Frameworks that are a Vite plugin in the project's config
// (SvelteKit, React Router's framework mode) are plain Vite.
//
// With [Options.Sandbox], plain Vite runs in a bubblewrap sandbox (see
// package sandbox) that sees the project and its dependencies and nothing
// else of the host: the way to run a project whose config and plugins are
// not trusted. The dev server then listens on two Unix sockets, bound by
// this process and handed in, instead of ports: Vite in middleware mode on
// the runner's HTTP server, and its HMR WebSocket on its own server
// ([Options.SocketDir] does the same without a sandbox). [Server.Targets]
// are then URLs of the scheme "unix" whose Path is the socket, and nothing
// the dev server prints can point them anywhere else. The code in the
// sandbox may replace any file of the project: this process reads the
// project's package.json (at each Start) without following a
// symbolic link, without blocking on a FIFO, regular files only and at most
// a few megabytes, and refuses anything else with ErrInvalidPackageJSON. [StartSpare] starts
// such a runner before its project is known, with Vite imported and warmed
// up by one page load of a project of the caller's; [Spare.Start] runs
// the real project in it, in a fraction of the time.
//
// [Server.Hold] and [Hold.Commit] have plain Vite handle a set of file
// writes as one change: the runner holds Vite's file watcher for the files
// while the caller writes them, has Vite handle all of them once they are
// on disk, and reports what Vite did (the hot updates, a full reload, the compile errors
// of the changed modules and of the modules they newly import) as soon as
// Vite has done it. [Options.OnEvent] receives what happens outside
// batches, and with [Options.ClientErrors] the runtime errors that the
// pages report, their stacks mapped to the project's files.
//
// The child runs in its own process group. When it dies, the hot files are
// removed and it is restarted with exponential backoff ([Options.OnCrash]
// hears of each crash; one killed at its sandbox's memory limit is
// restarted [Options.MaxLimitCrashes] times in a row, then left down);
// [Server.Subscribe] reports each change. [Server.Stop] ends the whole group, and the sandbox.
//
// The same package serves the front end in production. [ReadManifest] reads
// Vite's build manifest (.vite/manifest.json, from disk or an embed.FS) and
// [Manifest.Tags] gives an entry's tags as Vite would write them: its module
// script, a modulepreload for each chunk it imports statically, and the
// stylesheets of all of them, with an optional CSP nonce and integrity.
// [Assets] switches between those and the dev server's tags (Vite's client,
// the React Refresh preamble, the entry) by whether the dev server runs: one
// value for a Go template from the first go run to production. [SPA] serves a
// built single-page app. [StartBuilt] runs the built server of Nuxt,
// SvelteKit (adapter-node), Astro (node adapter) or React Router under the
// same supervision as a dev server, on loopback or a Unix socket, for
// ssrproxy to put behind the Go app.
package vite

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Framework names the kind of dev server.
type Framework string

// The frameworks Start knows.
const (
	Auto  Framework = ""      // detect from package.json
	Vite  Framework = "vite"  // plain Vite, any plugins
	Nuxt  Framework = "nuxt"  // Nuxt 4 through nuxi dev
	Astro Framework = "astro" // Astro 5 to 7 through Astro's dev() API
)

// Defaults for the zero values of Options.
const (
	DefaultHost             = "127.0.0.1"
	DefaultViteStartTimeout = 60 * time.Second
	DefaultNuxtStartTimeout = 120 * time.Second
	DefaultStopTimeout      = 5 * time.Second
	DefaultMaxLimitCrashes  = 3
)

// Errors that callers may check with errors.Is. A failed Start returns a
// *StartError that wraps one of them (or the context's error) and quotes the
// child's last output lines, where the details are: ErrStartFailed covers
// whatever the dev server itself reported (a broken config, a plugin that
// throws) and an exit before ready, which also wraps ErrExited.
var (
	// ErrNoPackageJSON: the project directory has no package.json.
	ErrNoPackageJSON = errors.New("vitehost/vite: no package.json")
	// ErrInvalidPackageJSON: package.json is not a JSON object of the usual shape.
	ErrInvalidPackageJSON = errors.New("vitehost/vite: invalid package.json")
	// ErrNotInstalled: node_modules lacks vite (plain Vite), nuxi (Nuxt) or
	// astro (Astro).
	ErrNotInstalled = errors.New("vitehost/vite: dependencies not installed (no node_modules with vite, nuxt or astro)")
	// ErrNoNode: Options.Node (or node on PATH) cannot be run.
	ErrNoNode = errors.New("vitehost/vite: node not found")
	// ErrInvalidOptions: Options that cannot work, named in the message.
	ErrInvalidOptions = errors.New("vitehost/vite: invalid options")
	// ErrPortInUse: a port set in Options is taken, or the race for free
	// ports was lost maxPortAttempts times.
	ErrPortInUse = errors.New("vitehost/vite: port in use")
	// ErrStartTimeout: the dev server was not ready within StartTimeout.
	ErrStartTimeout = errors.New("vitehost/vite: dev server not ready in time")
	// ErrExited: the dev server's process exited when it should not have.
	ErrExited = errors.New("vitehost/vite: dev server exited")
	// ErrStartFailed: the dev server reported a failure or exited before it
	// was ready; its output says why.
	ErrStartFailed = errors.New("vitehost/vite: dev server failed to start")
	// ErrNotRunning: the dev server is down or restarting (or stopped
	// during the call), so a Hold holds nothing or a Commit got no outcome.
	ErrNotRunning = errors.New("vitehost/vite: dev server not running")
	// ErrWatcherLimit: the kernel refused the dev server a file watcher
	// (inotify instances or watches of its user used up); returned by
	// LimitErr.
	ErrWatcherLimit = errors.New("vitehost/vite: watcher limit reached: no file watcher")
)

// StartError is the error of a start that failed: it names the cause and
// carries the child's last output lines.
type StartError struct {
	Dir       string
	Framework Framework
	Err       error    // the cause, wrapping one of the package's errors or a context error
	Output    []string // the child's last output lines, oldest first
}

// Error returns the cause followed by the quoted output lines.
func (e *StartError) Error() string {
	var b strings.Builder
	what := string(e.Framework)
	if what == "" {
		what = "dev server"
	}
	fmt.Fprintf(&b, "vitehost/vite: start %s in %s: %v", what, e.Dir, e.Err)
	if len(e.Output) > 0 {
		b.WriteString("\nlast output lines:")
		for _, l := range e.Output {
			b.WriteString("\n  | ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *StartError) Unwrap() error { return e.Err }

// Package deps is the dependency sets of the preview service: it reads and
// checks a client's package.json into a Set (registry packages only,
// spec.go), resolves a set into a lockfile and installs each resolved set
// once into a node-wide cache that sessions lease and that is kept within
// its bound, through a content-addressable package store (pnpm.go: every
// package version unpacked once per node and hard-linked into the sets) or
// npm-style commands; it translates the installer's failures into what a
// client may see, and holds the policy on which Vite versions a session
// may run.
//
// It knows nothing of sessions: a caller asks a Cache for a set's
// node_modules and holds it for as long as its context lives.
package deps

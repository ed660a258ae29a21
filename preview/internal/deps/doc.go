// Package deps is the dependency sets of the preview service: it reads and
// checks a client's package.json into a Set (registry packages only),
// resolves a set into a lockfile, installs each resolved set once into a
// node-wide cache that sessions lease and that is kept within its bound,
// translates npm's failures into what a client may see, and holds the
// policy on which Vite versions a session may run.
//
// It knows nothing of sessions: a caller asks a Cache for a set's
// node_modules and holds it for as long as its context lives.
package deps

// Package preview serves per-session Vite previews: a client POSTs source
// files, the Manager starts one Vite dev server per session and answers with
// https://preview-{id}.<domain>, and later POSTs of changed files reach the
// open browser through Vite's HMR instead of a redeploy.
//
// A Manager gives two handlers: API, the JSON endpoints (create, update,
// status, delete), and Router, which sends each preview host to its
// session's dev server through an ssrproxy.Proxy (pages, modules and the HMR
// WebSocket at /hmr) and every other host to a fallback, usually the API.
// The files of an update reach Vite as one batch (vite.Server.Batch), once
// all of them are on disk, and the update answers with what Vite did. Each
// session keeps a bounded log of its events (status changes, update
// outcomes, compile errors, the dev server's output, the open pages'
// runtime errors), which the API streams as Server-Sent Events.
// Sessions expire after Options.TTL. Everything a client sends is checked
// before anything is written: paths stay inside the session directory, npm
// runs no lifecycle scripts and installs registry packages only, and files
// that Node would run on the host (vite.config.*, .npmrc, ...) are dropped.
//
// # Several nodes
//
// Any number of nodes can serve one preview domain behind any load
// balancer. Each node is a Manager with
//
//   - the same Store: a redisstore.Store on one Redis (package
//     preview/redisstore), with the same key prefix;
//   - the same PublicURL, APIPrefix and Token;
//   - its own NodeID, and its own NodeAddr: the host:port at which the
//     other nodes reach its Router(API()) handler over plain HTTP, on a
//     network the public cannot reach (the handler on the public listener
//     will do, or a second listener with the same handler);
//   - its own BaseDir. CacheDir may be shared by the nodes of one machine.
//
// A create runs on the node that receives it, so creates spread as the load
// balancer spreads requests: round robin or least connections spread them
// evenly, and sticky sessions are not needed. The node saves the session's
// files (template files and package.json included) to the store before it
// starts Vite.
//
// # Where a request's session is
//
// Every request learns where its session lives in one place, resolve (in
// resolve.go): here (a session of this node, in whatever state), on another
// node (its address), or nowhere. The sessions a node runs are found without
// a store call, so a Redis outage does not stop them (the calls that need
// Redis answer 503, code "unavailable", and change nothing). A request for a
// session that another node runs (preview pages and modules, the HMR
// WebSocket, API update, status and delete) is forwarded to that node,
// marked with ForwardedHeader so that it is never forwarded twice.
//
// # Liveness and fencing
//
// Each node keeps a lease in the store, renewed every LeaseTTL/3. A node
// counts as alive while its lease is; the sessions of a node whose lease ran
// out (or that refuses connections, or is shutting down) are claimed by the
// next node that needs them: of nodes that try at once exactly one wins, and
// it writes the stored files into its BaseDir, starts Vite and serves the
// session with its id, URLs and expiry unchanged. A node that hangs (its
// port accepts connections, nothing answers) is found out by the forwarded
// request that waits ForwardTimeout for its answer; that request then waits
// for the hung node's lease to run out and takes the session over. With the
// defaults, a hung node's sessions are served again by another node at most
// LeaseTTL + ForwardTimeout (16 s) after the hang, and a request that
// arrives once the lease has run out goes to the new owner at once.
// Meanwhile pages show a "starting" page that reloads itself, and the
// browser's Vite client, whose socket broke with the old node, reloads the
// page once the new one answers.
//
// Every claim of a session gets an epoch that only grows, and every write of
// the session's record and files carries it: the store refuses writes from
// an older epoch atomically (ErrFenced). A node whose write is refused stops
// its copy of the session at once and hands the request to the new owner,
// so an update that a hung node acknowledges after it resumes is applied by
// the new owner, never lost. An update stages its files beside their names,
// commits them to the store, and only then renames them into place: a failed
// disk write leaves the store and the disk as they were.
//
// Manager.Close on a node of several leaves its sessions in the store for
// the other nodes to take over; API deletes and expiry remove them
// everywhere. A node that comes back with the same NodeID starts its former
// sessions again when they are next requested, unless another node took
// them over first. Every node also checks the records of its sessions every
// 5 seconds, and at once when its lease had run out: a session that another
// node claimed stops here; a record that a Redis restart lost (Redis
// without persistence) is claimed again and written back, with the
// session's files from the node's disk.
package preview

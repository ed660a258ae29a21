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
// runs no lifecycle scripts and installs registry packages only.
//
// # The sandbox
//
// Every session's dev server runs in a bubblewrap sandbox (package sandbox):
// its own namespaces, no network (Vite listens on Unix sockets that this
// process binds), an unprivileged user, a clean environment, and a file
// system of the system directories, the project at /project and its
// dependency install read-only at /node_modules; memory and processes are
// limited through cgroups where the host has them. Each sandbox runs as a
// host user of its own (Options.Sandbox.UIDs), so that no session shares the
// kernel's per-user budgets (inotify) with another, and each session's files
// live on a disk of its own, of bounded bytes and inodes, mounted at its
// directory (disk.go): what the API and the session's code write share it,
// and a session that fills it, or gets no file watcher, fails alone with a
// status that names the limit. The project therefore
// runs as written, its vite.config, PostCSS, Tailwind and svelte configs and
// .env files included: they reach nothing of the host. The service forces
// only the root, the sockets, the HMR client's public address and the
// allowed hosts. Since every project has the same path, sessions with the
// same dependencies and config get the same optimizer cache key: the first
// one's optimized dependencies are copied to the next ones (optimized.go).
// The sandbox does not defend against kernel exploits; hostile multi-tenant
// fleets should run their nodes in VMs as well. Options.NoSandbox turns it
// off for trusted input: files that Node would run (vite.config.*, .npmrc,
// ...) are then dropped, which does not stop imports from reading host
// files.
//
// # The API as a public service
//
// Session ids. The service makes 128-bit random ids (NewID). A client may
// name its sessions instead ("sessionId" in a create): any id of 1 to 55
// characters (MaxIDLength: preview-{id} must fit one 63-character DNS
// label) of lowercase a-z, 0-9 and inner hyphens, such as "abc123" or a
// lowercase UUID. Upper case is refused with a 400 that names the lowercase
// id: host names are case-insensitive, so "ABC" and "abc" would share one
// preview host. A client-chosen id makes the preview URL exactly as
// guessable as the id: a client that wants private previews uses random
// ids. A create that names a live session updates it (the seed's clients
// name their sessions and send their creates again): the answer has
// "created": false and the update's result, and a package.json with
// another dependency set than the session's answers 409 "conflict"
// (dependencies are fixed for a session's life; delete and create again).
//
// Cross-site requests. POST bodies must be application/json (415
// otherwise) and a request whose Origin is neither PublicURL's origin nor
// one of Options.AllowedOrigins gets 403: a page of another site cannot
// make its visitors' browsers call the API (origin.go says why these two
// rules suffice). Clients that are not browsers are not affected; the
// bearer token (Options.Token) authenticates them, and a service reachable
// by others needs one.
//
// Quotas. Limits bounds each request and, over a session's whole life, the
// files, bytes, directories and path depth it holds (413, code
// "quota_exceeded", error.limit naming the quota), whichever Store keeps
// it and across takeovers. Per-client limits are out of scope.
//
// Installs. A dependency set is resolved first (npm install
// --package-lock-only, about 2 s here) and installed under the hash of the
// resolved lockfile, so that specs npm resolves alike ("^8.0.0", "8.x",
// ">=8 <9") share one install; the resolution of each declared set is
// remembered in CacheDir. At most MaxInstalls resolutions and installs run
// at once, in order of arrival; a create whose client goes away stops its
// install unless another request waits for the same set. CacheMaxBytes
// bounds the cache: the least recently used sets that no session uses are
// removed.
//
// Vite versions. A session runs Vite 6.4.3, 7.3.5, 8.0.16 or later within
// its major line, or a major line newer than 8: the first releases that
// have Vite's WebSocket token and Host checks (5.4.12 and 6.0.9 brought
// them) and that no published advisory on reading the server's files
// affects (the last ones: GHSA-fx2h-pf6j-xcff, fixed in 6.4.3, 7.3.5 and
// 8.0.16; GHSA-p9ff-h696-f583, GHSA-v2wj-q39q-566r and GHSA-4w7w-66w2-5vf9,
// fixed in 6.4.2, 7.3.2 and 8.0.5). Vite 5 is refused: GHSA-fx2h-pf6j-xcff
// affects every 5.x release and none fixes it. An exact version is checked
// when the request arrives; a range once npm has resolved it, before
// anything is installed. Both answer 400, code "vite_version".
//
// Errors. An answer never shows a host path, an address or npm's raw
// output: npm's failures are its error code and one-line reason (400
// "bad_dependency" when the declared set cannot be resolved), a dev server
// that fails says how (its error line with paths removed), compile errors
// name files relative to the project (node_modules/... for dependencies),
// and anything else is a fixed text; the details go to Logger.
//
// Operations. Healthz and Readyz are the liveness and readiness probes
// (Readyz checks the store and the template's dependencies; Prepare
// installs them), and Metrics serves Prometheus metrics from a registry of
// the Manager's own: sessions by status, API answers by operation and code,
// install and start durations, the latency from an update's write to
// Vite's HMR message, proxied requests and open WebSocket tunnels
// (metrics.go lists them).
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
// # Idle sessions
//
// A session that nothing reaches for Options.IdleTimeout (10 minutes by
// default: no request to its preview, no WebSocket message through its
// proxy, no update; status requests do not count) hibernates: its dev
// server stops and no process of it stays, its directory and the
// optimizer's cache in it do, and its status is StatusHibernated. The next
// request wakes it, inside the one resolution path: resolve returns the
// session in whatever state, and the request waits for its dev server (a
// page 5 s at most, then the "starting" page; a module or a WebSocket
// handshake 30 s). An update wakes it and answers as for a running
// session. A tab left open sees its HMR socket close; its Vite client's
// "is the server back?" probe (a vite-ping handshake) wakes the session,
// opens only once the dev server serves, and the page reloads itself, with
// HMR again. On a node of several, a hibernated session whose node is gone
// wakes on the node that takes it over. The Manager keeps Options.Spares
// sandboxed runners started ahead for the template's dependency set, with
// Vite loaded and warmed up on the template: a session that starts or
// wakes in one serves its first page load as fast as a reload.
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

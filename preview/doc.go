// Package preview serves per-session Vite previews: a client POSTs source
// files, the Manager starts one Vite dev server per session and answers with
// https://preview-{id}.<domain>, and later POSTs of changed files reach the
// open browser through Vite's HMR instead of a redeploy.
//
// A Manager gives two handlers: API, the JSON endpoints (create, update,
// status, delete), and Router, which sends each preview host to its
// session's dev server through an ssrproxy.Proxy (pages, modules and the HMR
// WebSocket at /hmr) and every other host to a fallback, usually the API.
// The files of an update reach Vite as one batch (vite.Server.Hold), once
// all of them are on disk, and the update answers with what Vite did. Each
// session keeps a bounded log of its events (status changes, update
// outcomes, compile errors, the dev server's output, the open pages'
// runtime errors), which the API streams as Server-Sent Events.
// Sessions expire after Options.TTL. Everything a client sends is checked
// before anything is written: paths stay inside the session directory, npm
// runs no lifecycle scripts and installs registry packages only (a spec must
// parse as a semver range, a dist-tag or an npm: alias of a registry
// package; paths, tarballs, file:, link:, workspace:, git and URL specs are
// refused before npm starts).
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
// one's optimized dependencies are copied to the next ones
// (internal/launch/optimized.go).
// The code in the sandbox can replace any file of its project at any moment,
// with a symbolic link to a host file, a FIFO, a directory or a huge file:
// this process reads a session directory only through the session's
// os.Root, without following links, regular files only, without blocking,
// within a bound (internal/safefs), and a wake that finds package.json
// replaced fails with a status that names it. The file sync to the store
// reads the files the client wrote, no others; deleting a session removes
// links, never what they point to; and the janitor waits for no one
// session without a deadline.
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
// another dependency set than the session's answers 409 "conflict" (an
// update changes the set).
//
// Dependency changes. An update whose package.json (UpdateRequest.
// PackageJSON, or a package.json among its files) declares another set
// installs it while the dev server serves on the old one, the event stream
// showing the install's steps ("install" events), then stores the files
// and package.json (fenced like any update), stops the dev server, writes
// them and starts it on the new set: the session keeps its id, URL and
// files, and the open pages reload once. UpdateResult.Dependencies says
// what changed, with the versions installed. A set that cannot be
// installed is a *RequestError naming the package and changes nothing.
// Changes apply in the order they arrived, the last one winning; a node
// that takes the session over installs the set its stored package.json
// declares.
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
// Installs. The dependency sets live in a node-wide content-addressable
// package store: pnpm, installed once into CacheDir from npm at a pinned
// release, resolves a set first (into pnpm-lock.yaml, with its cached
// registry metadata before the registry's) and installs it, with no
// lifecycle scripts, under the hash of the resolved lockfile, so that specs
// that resolve alike ("^8.0.0", "8.x", ">=8 <9") share one install; every
// package version is unpacked once into CacheDir/store and hard-linked into
// the sets, in a flat layout as npm's. The resolution of each declared set
// is remembered in CacheDir. At most MaxInstalls resolutions and installs
// run at once, in order of arrival; a create whose client goes away stops
// its install unless another request waits for the same set. CacheMaxBytes
// bounds the cache, the store included and each file counted once: the
// store's files that no set links go first, then the least recently used
// sets that no session uses. InstallCommand and ResolveCommand replace the
// store with npm-style commands.
//
// Vite versions. A session runs Vite 4.5 or later (what real AI-builder
// projects declare: Vite 5.4 for Lovable and bolt.new, 4.5 for
// open-lovable's template). The sandbox confines what its dev server reads
// to the session's files and packages, and the router refuses, for every
// version, the requests of Vite's file-read advisories: what
// server.fs.deny protects (.env, .env.*, *.crt, *.pem, .git) and /@fs/
// paths outside the project and its packages, in any query or encoding. A
// session on a release that such advisories affect (every 4.x and 5.x,
// 6.x before 6.4.3, 7.x before 7.3.5, 8.x before 8.0.16) gets a Warning
// WarnViteAdvisories. Options.ViteFloor refuses older releases: a declared
// range that allows nothing at or above it when the request arrives, with
// the newest line the project's plugins accept; a range resolved below it
// before anything is installed. Both answer 400, code "vite_version".
//
// Warnings. A create's answer (Info.Warnings) and the event stream
// ("warning" events) carry what the client should know about its
// dependencies: an old vite, a peer conflict that npm refused and that was
// installed with --legacy-peer-deps (as pnpm and yarn install it), a vite
// that the service added to a package.json without one.
//
// Crashes and limits. A session's dev server that crashes is restarted,
// with status StatusRestarting meanwhile; one killed at its sandbox's
// memory limit (DefaultSessionMemory unless Options.Sandbox says
// otherwise) is restarted twice, then the session is StatusError with
// ErrorCode CodeMemoryLimit. Each kill is a status event with its code.
//
// Preview hosts. Anyone with a preview URL reaches the session's dev
// server, so the router bounds what such a visitor can do to it and to the
// session's owner. A WebSocket message from a client (one frame, or a
// fragmented message's frames together) over Limits.MaxWebSocketMessage
// (default ssrproxy.DefaultMaxViteMessage, 1 MiB), on Vite's sockets and
// the project's own, ends the socket with a 1009 close before any byte of
// it reaches Vite; what Vite sends is not bounded. A page's runtime error
// reports are limited per socket (30 at once, 3 a second after that), and
// are events of their own class (events.go): they carry "source": "page"
// in the stream, every other event "source": "server", and they are kept
// in a buffer of their own, so that no flood of reports, nor of the dev
// server's output, pushes a status or an update out of a client's replay.
// A response to a request whose Origin is another host goes out without
// any Access-Control-* header (cors.go): Vite's default CORS lets any
// localhost origin read a dev server, and a project may allow every origin,
// but no page of another preview (or site) reads a preview's pages and its
// HMR token.
//
// Errors. An answer never shows a host path, an address or npm's raw
// output: npm's failures are its error code and one-line reason (400
// "bad_dependency" when the declared set cannot be resolved), a dev server
// that fails says how (its error line with paths removed), compile errors
// name files relative to the project (node_modules/... for dependencies),
// and anything else is a fixed text; the details go to Logger.
//
// Connections and memory. Serve Router and API with NewServer: it bounds
// the time to send a request's headers and body, each write of a response
// (event streams and WebSockets go on), the wait of a keep-alive
// connection, and the connections held at once (MaxConns, below the
// process's open-file limit, where a new connection takes the place of
// the longest idle one so that /healthz answers through a flood). An API
// request refused before its body is read (token, origin, media type) is
// answered at once and its connection closed. Limits.MaxSessionWebSockets
// bounds the WebSockets of one preview (429 before the upgrade),
// Limits.MaxSessionRequests its HTTP/1 requests in flight (429 at once:
// a dev server need never answer), and
// Limits.MaxBytesInFlight the request bodies a node holds at once (a
// request waits for its share before its body is read, then gets 503 with
// Retry-After); a body is read once and decoded in place, each file
// straight to its bytes.
//
// Operations. Healthz and Readyz are the liveness and readiness probes
// (Readyz checks the store and the template's dependencies; Prepare
// installs them; its checks run at most once every 3 s, whatever the
// number of callers, as they start a sandbox), and Metrics serves Prometheus metrics from a registry of
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
// request wakes it, inside the one path every request takes: locate returns
// the session in whatever state, and the request waits for its dev server (a
// page 5 s at most, then the "starting" page; a module or a WebSocket
// handshake 30 s). An update wakes it and answers as for a running
// session. A tab left open sees its HMR socket close; its Vite client's
// "is the server back?" probe (a vite-ping handshake) wakes the session,
// opens only once the dev server serves, and the page reloads itself, with
// HMR again. On a node of several, a hibernated session whose node is gone
// wakes on the node that takes it over. The Manager keeps at least
// Options.Spares sandboxed runners started ahead for the template's
// dependency set, with Vite loaded and warmed up on the template, and more
// when sessions of that set arrive faster than one is made, within
// Options.SpareMemory: a session that starts or wakes in one serves its
// first page load as fast as a reload. A wake also loads again, before the
// browser asks, the module URLs that the session's pages requested before
// it slept (kept in this node's memory, bounded).
//
// # Where a request's session is
//
// Every request learns where its session lives in one place, locate (in
// resolve.go), which only reads: here (a session of this node, in whatever
// state), on another node (its address), or nowhere. The sessions a node
// runs are found without a store call, so a Redis outage does not stop them
// (the calls that need Redis answer 503, code "unavailable", and change
// nothing). A request for a session that another node runs (preview pages
// and modules, the HMR WebSocket, API update, status and delete) is
// forwarded to that node, marked with ForwardedHeader so that it is never
// forwarded twice. A request for a session whose node is gone adopts it
// (adopt: this node claims it and starts its dev server), a delete
// excepted; a session that moves during a request is located once more,
// and one that moves again is answered 503.
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

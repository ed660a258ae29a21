// Package vitehost lets Go web applications host Vite and Nuxt dev servers,
// and lets platforms serve instant per-session previews of front-end code.
//
// # Who it is for
//
// A Go web app with a Vite or Nuxt front end launches the dev server itself,
// serves its own routes, and sends every other request to the dev server
// through one http.Handler, so that the browser talks only to the Go port and
// Hot Module Replacement still works (the litestar-vite and
// laravel-vite-plugin way of working, in Go). See examples/hostapp.
//
// A preview service takes source files from a client (an AI app builder, an
// editor), starts one Vite dev server per session behind
// preview-{id}.<domain>, and turns later edits into HMR updates in the open
// browser within milliseconds instead of a redeploy. See
// examples/previewserver.
//
// # Packages
//
//   - hotfile: the hot-file convention. A "hot" file holds the dev server's
//     URL; "hot.hmr" beside it holds the HMR WebSocket's URL when that has a
//     port of its own. Write and Read them atomically; a Watcher follows them
//     and serves the current targets at the cost of an atomic load.
//   - vite: launches and supervises a Vite, Nuxt or Astro dev server as a child
//     process group: picks free ports (ports.go), gives HMR its own loopback
//     listener, points the browser's HMR client at the public URL, writes the
//     hot files when ready, restarts after a crash, stops the whole tree.
//   - ssrproxy: the http.Handler in front of a dev server. Plain HTTP goes to
//     the hot URL; WebSockets with the vite-hmr or vite-ping subprotocol go to
//     the HMR URL (handshake.go is where HTTP becomes a tunnel); every other
//     WebSocket goes to the hot URL. While the dev server is down, navigations
//     get a page that reloads itself once it is back.
//   - sandbox: runs a command in bubblewrap with nothing of the host but what
//     it is given (bwrap.go is the sandbox, every namespace and mount of it),
//     with memory and process limits through cgroups.
//   - preview: sessions (create, update, status, delete, expiry), the JSON API
//     of the JSBundler seed, the preview-{id}.<domain> host router, the shared
//     dependency cache and the session store (files.go is where a session's
//     files are checked and written; resolve.go is where a request learns
//     where its session lives). Every session's dev server runs in the
//     sandbox. preview/redisstore keeps sessions in Redis so that several
//     nodes serve one domain.
//
// # How data flows
//
//	client --HTTP/WS--> preview API ----> preview.Manager --(files)--> session dir
//	                                            | starts/stops
//	                                            v
//	browser --HTTP/WS--> host router -> ssrproxy --HTTP--> dev server HTTP port
//	                                       |      --WS vite-hmr/vite-ping--> HMR port
//	                                       ^ targets
//	                  hotfile.Watcher <--hot, hot.hmr-- vite.Server (writes them when ready)
//
// A Go app uses the lower half: vite.Start writes the hot files, a
// hotfile.Watcher (or the *vite.Server itself) gives ssrproxy its targets.
// The preview package uses all of it, one dev server and one proxy per
// session.
//
// This package holds no code; import the packages above.
package vitehost

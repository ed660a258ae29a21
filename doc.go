// Package vitehost lets Go web applications host Vite and Nuxt dev servers,
// and lets platforms serve instant per-session previews of front-end code.
//
// # Who it is for
//
// A Go web app with a Vite or Nuxt front end launches the dev server itself,
// serves its own routes, and sends every other request to the dev server
// through one http.Handler, so that the browser talks only to the Go port and
// Hot Module Replacement still works (the litestar-vite and
// laravel-vite-plugin way of working, in Go).
//
// A preview service takes source files from a client (an AI app builder, an
// editor), starts one Vite dev server per session behind
// preview-{id}.<domain>, and turns later edits into HMR updates in the open
// browser within milliseconds instead of a redeploy.
//
// # Packages
//
//   - hotfile: the hot-file convention. A "hot" file holds the dev server's
//     URL; "hot.hmr" beside it holds the HMR WebSocket's URL when that has a
//     port of its own. Write and Read them atomically; a Watcher follows them
//     and serves the current targets at the cost of an atomic load.
//
// # How data flows
//
//	client --HTTP/WS--> preview API ----> preview manager --(files)--> session dir
//	                                            | starts/stops
//	                                            v
//	browser --HTTP/WS--> host router -> ssrproxy --HTTP--> dev server HTTP port
//	                                       |      --WS vite-hmr/vite-ping--> HMR port
//	                                       ^ targets
//	                  hotfile.Watcher <--hot, hot.hmr-- vite launcher (writes them when ready)
//
// This package holds no code; import the packages above.
package vitehost

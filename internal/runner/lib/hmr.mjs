// The HMR WebSocket's options, which the Vite, Astro and Nuxt runners all
// set: a listener of the runner's own, and a path that Vite joins to the
// dev server's base.

import http from 'node:http'
import path from 'node:path'
import process from 'node:process'

// hmrSubpath returns the value of the ws/hmr "path" option that makes the
// socket's path equal want: Vite joins the option to the dev server's base
// (/_nuxt/, /app/, ...) for both the listener and the client.
export function hmrSubpath(base, want) {
  if (!want) return undefined
  let rel = path.posix.relative(base || '/', want)
  if (want.endsWith('/') && rel !== '' && !rel.endsWith('/')) rel += '/'
  return rel || undefined
}

// wsOptionKey is the Vite option that holds the WebSocket settings: Vite
// 8.1 renamed server.hmr to server.ws, and setting the old key beside a
// value of the new one loses.
export function wsOptionKey(viteVersion) {
  const [major, minor] = String(viteVersion).split('.').map((n) => parseInt(n, 10))
  return major > 8 || (major === 8 && minor >= 1) ? 'ws' : 'hmr'
}

// hmrListener returns an HTTP server for Vite's WebSocket server to attach
// to: a plain request gets 426.
export function hmrListener() {
  return http.createServer((req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain' })
    res.end('Upgrade Required')
  })
}

// listen makes s listen on where: {fd} (an inherited socket) or {host,
// port}. A failure carries the port as vitehostPort, for the error line.
export function listen(s, where) {
  return new Promise((resolve, reject) => {
    s.once('error', (err) => {
      err.vitehostPort = where.port
      reject(err)
    })
    s.listen(where, () => resolve(s))
  })
}

// portInUse gives err, a failure to start a dev server, the code and port
// the Go side looks for when Vite reports a taken port in its message only.
export function portInUse(err) {
  const m = /Port (\d+) is already in use/.exec(err && err.message)
  if (m) {
    err.code = 'EADDRINUSE'
    err.vitehostPort = Number(m[1])
  }
  return err
}

// closeTimeout bounds a dev server's close, which never finishes while a
// request waits for a dependency optimization that close cancelled (seen on
// Vite 6 and 7 with a module requested right before the stop;
// https://github.com/vitejs/vite/issues/22934). Nothing of a dev server
// needs saving.
export const closeTimeout = 1000

// onStop returns a function that stops the process once: it runs close
// (the dev server's), closes the listeners that listeners() returns then,
// and exits, at the latest after closeTimeout. SIGTERM, SIGINT and SIGHUP
// call it. stopping() reports whether it was called.
export function onStop(close, listeners) {
  let closing = false
  const stop = async () => {
    if (closing) return
    closing = true
    setTimeout(() => process.exit(0), closeTimeout).unref()
    try {
      await close()
    } catch {}
    for (const s of listeners()) {
      if (!s) continue
      s.closeAllConnections?.()
      s.close()
    }
    process.exit(0)
  }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => stop())
  stop.stopping = () => closing
  return stop
}

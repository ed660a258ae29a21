// vitehost Astro runner: starts the Astro dev server of one project through
// Astro's own dev() API, so that Astro builds its Vite server with its
// integrations, while the HMR WebSocket gets a listener of its own on
// loopback and the browser's client is pointed at the public proxy.
//
//   node astro.mjs <projectDir>
//
// It speaks the protocol of runner.mjs (the Go side is
// github.com/vitehost/vitehost/vite):
//   1. It imports the project's own astro (resolved from projectDir) and
//      prints {"vitehost":"loaded","version":...}, the version of the Vite
//      that Astro uses.
//   2. It reads one JSON line from stdin:
//      {"host","port","hmrHost","hmrPort","client":{...},"allowedHosts":[...]}
//   3. It opens the HMR listener, runs dev(), and prints
//      {"vitehost":"ready","port":...,"hmrPort":...,"version":...,"token":...}.
//      When Astro restarts its Vite server (an astro.config edit) with a new
//      token, it prints {"vitehost":"token","token":...}.
//   4. It runs until stdin closes or SIGTERM/SIGINT arrives, then stops the
//      dev server and exits.
// A failure prints {"vitehost":"error","code":...,"message":...} and exits 1.
// The protocol, the package resolution and the HMR listener are runner.mjs's
// modules (lib/).

import fs from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { pathToFileURL } from 'node:url'
import { hmrListener, hmrSubpath, listen, onStop, portInUse, wsOptionKey } from './lib/hmr.mjs'
import { fail, readLines, say } from './lib/protocol.mjs'
import { findPackageDir, readPackage, resolvePackage } from './lib/resolve.mjs'

const projectDir = path.resolve(process.argv[2] || '.')
const who = 'vitehost astro runner'

async function main() {
  // What the stop closes: Astro's dev server (which closes its Vite
  // server) and the HMR listener, once made.
  const run = { devServer: null, hmrServer: null }
  const stop = onStop(async () => {
    if (run.devServer) await run.devServer.stop()
  }, () => [run.hmrServer])

  let astro, viteVersion
  try {
    // The project's astro, and the vite that astro resolves (not
    // necessarily the project's own).
    const dir = findPackageDir('astro', projectDir)
    if (!dir) {
      const err = new Error(`cannot find package "astro" from ${projectDir} (is it installed in node_modules?)`)
      err.code = 'MODULE_NOT_FOUND'
      throw err
    }
    const astroDir = fs.realpathSync(dir)
    const astroVersion = readPackage(astroDir).version
    const viteDir = findPackageDir('vite', astroDir)
    viteVersion = viteDir ? readPackage(viteDir).version : ''
    astro = await import(pathToFileURL(resolvePackage('astro', projectDir)).href)
    if (typeof astro.dev !== 'function') throw new Error(`astro ${astroVersion} has no dev() API`)
  } catch (err) {
    fail(who, err, 'ASTRO_NOT_FOUND')
  }
  say({ vitehost: 'loaded', version: viteVersion })

  const input = readLines(process.stdin, stop)
  const line = await input.next()
  if (line === null) return
  input.handle(() => {}) // the Astro runner takes no batches
  const cfg = JSON.parse(line)

  run.hmrServer = await listen(hmrListener(), { host: cfg.hmrHost, port: cfg.hmrPort })
  const wsKey = wsOptionKey(viteVersion)
  const client = cfg.client || {}

  let ready = false
  let current = null // the Vite server Astro made last
  const vitehostPlugin = {
    name: 'vitehost',
    // Astro also builds short-lived Vite servers of its own from the same
    // config (the content sync after a restart, with command 'build'),
    // which must not be announced; 'serve' keeps the plugin out of them.
    apply: 'serve',
    configResolved(config) {
      // Vite's base is known only now; the path option is relative to it.
      const opts = config.server[wsKey]
      if (opts && typeof opts === 'object') opts.path = hmrSubpath(config.base, client.path)
      // The public host passes Vite's host check. Set here rather than in
      // the inline config, where a project's allowedHosts: true would be
      // merged into a list.
      const hosts = cfg.allowedHosts || []
      if (hosts.length && config.server.allowedHosts !== true) {
        config.server.allowedHosts = [...(config.server.allowedHosts || []), ...hosts]
      }
    },
    configureServer(s) {
      // Astro makes a new Vite server, with a new token, when its config
      // changes; the new one is announced once it listens. A server
      // without our HMR listener is not the dev server.
      if (s.config.server[wsKey]?.server !== run.hmrServer) return
      current = s
      if (!ready) return
      const announce = () => say({ vitehost: 'token', token: s.config.webSocketToken })
      if (s.httpServer) s.httpServer.once('listening', announce)
      else announce()
    },
  }

  try {
    run.devServer = await astro.dev({
      root: projectDir,
      server: { host: cfg.host, port: cfg.port },
      vite: {
        server: {
          // Astro's own dev command moves to the next port when its port is
          // taken; the Go side picks ports and wants to know.
          strictPort: true,
          [wsKey]: {
            server: run.hmrServer,
            clientPort: client.port || undefined,
            protocol: client.protocol || undefined,
            host: client.host || undefined,
          },
        },
        plugins: [vitehostPlugin],
      },
    })
  } catch (err) {
    throw portInUse(err)
  }
  if (stop.stopping()) return
  ready = true
  say({
    vitehost: 'ready',
    port: run.devServer.address.port,
    hmrPort: run.hmrServer.address().port,
    version: viteVersion,
    // dev() returns no Vite server; the plugin saw the one it made.
    token: current ? current.config.webSocketToken : '',
  })
}

main().catch((err) => fail(who, err))

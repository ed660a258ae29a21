// vitehost Nuxt layer: passed to `nuxi dev --extends <this dir>` with
// NUXI_DISABLE_VITE_HMR=1, it gives the client Vite server's HMR WebSocket a
// listener of its own on loopback, points the browser's client at the public
// proxy, and keeps the SSR Vite server's HMR socket off the shared port 24678.
//
// The launch settings come from the VITEHOST_NUXT environment variable (JSON):
//   {"hmrHost":"127.0.0.1","hmrPort":24811,
//    "client":{"protocol":"ws","host":"localhost","port":8000,"path":"/hmr"},
//    "allowedHosts":["localhost"]}
//
// Protocol lines on stdout, each one line of JSON that starts with {"vitehost"::
//   {"vitehost":"listen","port":N}        nuxi's HTTP listener is bound
//   {"vitehost":"vite","token":"..."}     the client Vite server exists (again)
//   {"vitehost":"error","code":...,"message":...,"port":N}

import fs from 'node:fs'
import http from 'node:http'
import process from 'node:process'
// The runner's module of the HMR socket's options, beside this layer in the
// runner's directory (runner.go installs them together).
import { hmrSubpath } from '../lib/hmr.mjs'

const cfg = JSON.parse(process.env.VITEHOST_NUXT || '{}')
const client = cfg.client || {}

// say writes to file descriptor 1 itself: nuxi routes process.stdout through
// consola, whose reporter for non-interactive output (CI=true, or no TTY in
// some versions) prefixes every line with "[log] ", which would hide the
// protocol lines.
function say(msg) {
  const line = Buffer.from(JSON.stringify(msg) + '\n')
  for (let off = 0; off < line.length; ) {
    try {
      off += fs.writeSync(1, line, off)
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err // a full pipe: the Go side drains it
    }
  }
}

// One HMR listener per Nuxt instance: created when the client Vite config is
// built, closed with the instance, so that an in-process reload (a
// nuxt.config edit) binds the same port again.
let hmrServer = null

function listenOnce(port, host) {
  return new Promise((resolve, reject) => {
    const s = http.createServer((req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain' })
      res.end('Upgrade Required')
    })
    s.once('error', reject)
    s.listen(port, host, () => resolve(s))
  })
}

async function listenHMR() {
  // The previous instance's listener may still be closing during a reload.
  for (let i = 0; ; i++) {
    try {
      return await listenOnce(cfg.hmrPort, cfg.hmrHost)
    } catch (err) {
      if (err.code !== 'EADDRINUSE' || i >= 40) {
        say({ vitehost: 'error', code: err.code || 'ERROR', message: err.message, port: cfg.hmrPort })
        throw err
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function closeHMR() {
  if (!hmrServer) return
  hmrServer.closeAllConnections?.()
  hmrServer.close()
  hmrServer = null
}

function addAllowedHosts(server) {
  const hosts = cfg.allowedHosts || []
  if (!hosts.length || server.allowedHosts === true) return
  server.allowedHosts = [...(server.allowedHosts || []), ...hosts]
}

export default {
  hooks: {
    listen(server) {
      const addr = server.address()
      say({ vitehost: 'listen', port: addr && typeof addr === 'object' ? addr.port : 0 })
    },
    async 'vite:extendConfig'(config, { isClient, isServer }) {
      config.server ??= {}
      if (isClient) {
        hmrServer ??= await listenHMR()
        const prev = typeof config.server.hmr === 'object' && config.server.hmr ? config.server.hmr : {}
        config.server.hmr = {
          ...prev,
          server: hmrServer,
          port: undefined,
          clientPort: client.port || undefined,
          protocol: client.protocol || undefined,
          host: client.host || undefined,
          path: hmrSubpath(config.base, client.path),
        }
        addAllowedHosts(config.server)
      } else if (isServer) {
        // Nuxt's nuxt:server-hmr-port plugin would bind 24678-24698 on all
        // interfaces for the SSR server's socket, which no browser uses. A
        // server of our own that never listens takes its place.
        config.server.hmr = { server: new http.Server(), port: cfg.hmrPort }
      }
    },
    'vite:serverCreated'(server, { isClient }) {
      if (isClient) say({ vitehost: 'vite', token: server.config.webSocketToken })
    },
    close() {
      closeHMR()
    },
  },
}

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

import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import process from 'node:process'
import { pathToFileURL } from 'node:url'

const projectDir = path.resolve(process.argv[2] || '.')

function say(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n')
}

function fail(err, code) {
  const message = (err && err.message) || String(err)
  code = code || (err && err.code) || 'ERROR'
  const frames = String((err && err.stack) || '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 4)
  process.stderr.write(`vitehost astro runner: start failed (${code})${frames.length ? '\n' + frames.join('\n') : ''}\n`)
  say({ vitehost: 'error', code, message, port: err && err.vitehostPort })
  process.exit(1)
}

// ---- the project's astro, and the vite that astro resolves.

function findPackageDir(name, fromDir) {
  for (let dir = fromDir; ;) {
    const candidate = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(candidate, 'package.json'))) return fs.realpathSync(candidate)
    const parent = path.dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

function readPackage(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
}

// entryOf returns the file that `import(name)` loads: the "." export for the
// import conditions, or main.
function entryOf(dir) {
  const pkg = readPackage(dir)
  let target = pkg.exports
  if (target && typeof target === 'object' && !Array.isArray(target) && Object.hasOwn(target, '.')) target = target['.']
  const conditions = ['node', 'import', 'module-sync', 'default']
  while (target && typeof target === 'object' && !Array.isArray(target)) {
    const key = conditions.find((c) => Object.hasOwn(target, c))
    target = key ? target[key] : null
  }
  if (Array.isArray(target)) target = target.find((t) => typeof t === 'string')
  return path.join(dir, typeof target === 'string' ? target : pkg.main || 'index.js')
}

// wsOptionKey is the Vite option that holds the WebSocket settings: Vite
// 8.1 renamed server.hmr to server.ws, and setting the old key beside a
// value of the new one loses.
function wsOptionKey(viteVersion) {
  const [major, minor] = viteVersion.split('.').map((n) => parseInt(n, 10))
  return major > 8 || (major === 8 && minor >= 1) ? 'ws' : 'hmr'
}

// hmrSubpath returns the value of the ws/hmr "path" option that makes the
// socket's path equal want: Vite joins the option to its base.
function hmrSubpath(base, want) {
  if (!want) return undefined
  let rel = path.posix.relative(base || '/', want)
  if (want.endsWith('/') && rel !== '' && !rel.endsWith('/')) rel += '/'
  return rel || undefined
}

// ---- stdin: the config line, then EOF as the stop signal.

function readConfigLine() {
  return new Promise((resolve) => {
    let buf = ''
    let done = false
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk) => {
      if (done) return
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl >= 0) {
        done = true
        resolve(buf.slice(0, nl))
      }
    })
    process.stdin.on('end', () => {
      if (!done) {
        done = true
        resolve(null)
      }
      shutdown()
    })
    process.stdin.on('error', () => shutdown())
  })
}

// ---- lifecycle

let devServer = null
let hmrServer = null
let closing = false

// closeTimeout bounds Astro's stop, which waits for Vite's close; nothing of
// a dev server needs saving (see runner.mjs).
const closeTimeout = 1000

async function shutdown() {
  if (closing) return
  closing = true
  setTimeout(() => process.exit(0), closeTimeout).unref()
  try {
    if (devServer) await devServer.stop()
  } catch {}
  if (hmrServer) {
    hmrServer.closeAllConnections?.()
    hmrServer.close()
  }
  process.exit(0)
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => shutdown())

function listenHMR(host, port) {
  return new Promise((resolve, reject) => {
    const s = http.createServer((req, res) => {
      res.writeHead(426, { 'Content-Type': 'text/plain' })
      res.end('Upgrade Required')
    })
    s.once('error', (err) => {
      err.vitehostPort = port
      reject(err)
    })
    s.listen(port, host, () => resolve(s))
  })
}

async function main() {
  let astro, astroVersion, viteVersion
  try {
    const astroDir = findPackageDir('astro', projectDir)
    if (!astroDir) {
      const err = new Error(`cannot find package "astro" from ${projectDir} (is it installed in node_modules?)`)
      err.code = 'MODULE_NOT_FOUND'
      throw err
    }
    astroVersion = readPackage(astroDir).version
    const viteDir = findPackageDir('vite', astroDir)
    viteVersion = viteDir ? readPackage(viteDir).version : ''
    astro = await import(pathToFileURL(entryOf(astroDir)).href)
    if (typeof astro.dev !== 'function') throw new Error(`astro ${astroVersion} has no dev() API`)
  } catch (err) {
    fail(err, 'ASTRO_NOT_FOUND')
  }
  say({ vitehost: 'loaded', version: viteVersion })

  const line = await readConfigLine()
  if (line === null) return
  const cfg = JSON.parse(line)

  hmrServer = await listenHMR(cfg.hmrHost, cfg.hmrPort)
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
      if (s.config.server[wsKey]?.server !== hmrServer) return
      current = s
      if (!ready) return
      const announce = () => say({ vitehost: 'token', token: s.config.webSocketToken })
      if (s.httpServer) s.httpServer.once('listening', announce)
      else announce()
    },
  }

  try {
    devServer = await astro.dev({
      root: projectDir,
      server: { host: cfg.host, port: cfg.port },
      vite: {
        server: {
          // Astro's own dev command moves to the next port when its port is
          // taken; the Go side picks ports and wants to know.
          strictPort: true,
          [wsKey]: {
            server: hmrServer,
            clientPort: client.port || undefined,
            protocol: client.protocol || undefined,
            host: client.host || undefined,
          },
        },
        plugins: [vitehostPlugin],
      },
    })
  } catch (err) {
    const m = /Port (\d+) is already in use/.exec(err && err.message)
    if (m) {
      err.code = 'EADDRINUSE'
      err.vitehostPort = Number(m[1])
    }
    throw err
  }
  if (closing) return
  ready = true
  say({
    vitehost: 'ready',
    port: devServer.address.port,
    hmrPort: hmrServer.address().port,
    version: viteVersion,
    // dev() returns no Vite server; the plugin saw the one it made.
    token: current ? current.config.webSocketToken : '',
  })
}

main().catch((err) => fail(err))

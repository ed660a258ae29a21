// vitehost runner: starts the Vite dev server of one project through Vite's
// JavaScript API, so that the HMR WebSocket gets a listener of its own on
// loopback and the browser's client is pointed at the public proxy.
//
//   node runner.mjs <projectDir>
//
// Protocol (the Go side is github.com/vitehost/vitehost/vite):
//   1. The runner imports the project's own vite (resolved from projectDir,
//      never a global one) and prints {"vitehost":"loaded","version":...}.
//   2. It reads one JSON line from stdin: the launch config.
//   3. It opens the HMR listener, creates and starts the dev server, and prints
//      {"vitehost":"ready","port":...,"hmrPort":...,"version":...,"token":...}.
//      With "listen": {"http": fd, "hmr": fd} in the config, it listens on
//      the Unix sockets it inherited instead (Vite in middleware mode on an
//      HTTP server of its own) and prints "unix": true and no ports.
//      When Vite later restarts itself (a config file edit) with a new token,
//      it prints {"vitehost":"token","token":...}.
//   4. It runs until stdin closes or SIGTERM/SIGINT arrives, then closes the
//      server and exits.
// A config line with "warm": {config, plugins, configFile, modules} (a
// spare runner, started before its project is known) first starts Vite on
// what the project directory holds then, loads its page and every module
// that imports, closes that server and prints {"vitehost":"warmed"}; the
// next line is then the config of step 2. A first page load in a fresh
// process is several times slower than in one whose Vite has served once.
// A failure prints {"vitehost":"error","code":...,"message":...} and exits 1.
// Every protocol line is one line of JSON that starts with {"vitehost":.

import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import process from 'node:process'
import { pathToFileURL } from 'node:url'

const projectDir = path.resolve(process.argv[2] || '.')

function say(msg) {
  process.stdout.write(JSON.stringify({ vitehost: msg.vitehost, ...msg }) + '\n')
}

// fail reports err and exits: the message goes into the error line, which
// the Go side quotes; stderr gets where it was thrown.
function fail(err, code) {
  const message = (err && err.message) || String(err)
  code = code || (err && err.code) || 'ERROR'
  const frames = String((err && err.stack) || '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 4)
  process.stderr.write(`vitehost runner: start failed (${code})${frames.length ? '\n' + frames.join('\n') : ''}\n`)
  say({ vitehost: 'error', code, message, port: err && err.vitehostPort })
  process.exit(1)
}

// ---- module resolution: Node's node_modules lookup and "exports" map, for
// ESM import conditions, from the project directory.

const conditions = new Set(['node', 'import', 'module-sync', 'default'])

function splitSpecifier(spec) {
  const parts = spec.split('/')
  const n = spec.startsWith('@') ? 2 : 1
  return [parts.slice(0, n).join('/'), parts.length > n ? './' + parts.slice(n).join('/') : '.']
}

function findPackageDir(name, fromDir) {
  for (let dir = fromDir; ;) {
    const candidate = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

function conditionalTarget(target) {
  if (typeof target === 'string') return target
  if (target === null || target === undefined) return null
  if (Array.isArray(target)) {
    for (const t of target) {
      const r = conditionalTarget(t)
      if (r) return r
    }
    return null
  }
  for (const key of Object.keys(target)) {
    if (!conditions.has(key)) continue
    const r = conditionalTarget(target[key])
    if (r) return r
  }
  return null
}

function exportsTarget(exp, subpath) {
  const isSubpathMap = typeof exp === 'object' && exp !== null && !Array.isArray(exp) &&
    Object.keys(exp).some((k) => k.startsWith('.'))
  if (!isSubpathMap) return subpath === '.' ? conditionalTarget(exp) : null
  if (Object.hasOwn(exp, subpath)) return conditionalTarget(exp[subpath])
  for (const key of Object.keys(exp)) {
    const star = key.indexOf('*')
    if (star < 0) continue
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1) {
      const match = subpath.slice(prefix.length, subpath.length - suffix.length)
      const t = conditionalTarget(exp[key])
      return t && t.replaceAll('*', match)
    }
  }
  return null
}

// resolveModule returns the file that `import(spec)` from the project would load.
function resolveModule(spec) {
  if (spec.startsWith('.') || path.isAbsolute(spec)) return path.resolve(projectDir, spec)
  const [name, subpath] = splitSpecifier(spec)
  const dir = findPackageDir(name, projectDir)
  if (!dir) {
    const err = new Error(`cannot find package "${name}" from ${projectDir} (is it installed in node_modules?)`)
    err.code = 'MODULE_NOT_FOUND'
    throw err
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  let target
  if (pkg.exports !== undefined) {
    target = exportsTarget(pkg.exports, subpath)
    if (!target) {
      const err = new Error(`package "${name}" does not export "${subpath}" for import`)
      err.code = 'ERR_PACKAGE_PATH_NOT_EXPORTED'
      throw err
    }
  } else {
    target = subpath === '.' ? pkg.main || 'index.js' : subpath
  }
  return path.join(dir, target)
}

async function importModule(spec) {
  return import(pathToFileURL(resolveModule(spec)).href)
}

function packageVersion(name) {
  const dir = findPackageDir(name, projectDir)
  return dir ? JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version : ''
}

// ---- stdin: the config line (two for a spare), then EOF as the stop
// signal.

const stdinLines = []
let stdinWaiter = null
let stdinEnded = false
{
  let buf = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    buf += chunk
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      stdinLines.push(buf.slice(0, nl))
      buf = buf.slice(nl + 1)
    }
    if (stdinWaiter && stdinLines.length) stdinWaiter()
  })
  process.stdin.on('end', () => {
    stdinEnded = true
    if (stdinWaiter) stdinWaiter()
    shutdown()
  })
  process.stdin.on('error', () => shutdown())
}

// readConfigLine returns the next line of stdin, or null once it ended.
async function readConfigLine() {
  while (!stdinLines.length && !stdinEnded) await new Promise((resolve) => (stdinWaiter = resolve))
  stdinWaiter = null
  return stdinLines.length ? stdinLines.shift() : null
}

// ---- lifecycle

let server = null
let hmrServer = null
let httpServer = null // the runner's own, in front of Vite's middlewares (listen mode)
let closing = false

// closeTimeout bounds Vite's own close, which never finishes while a request
// waits for a dependency optimization that close cancelled (seen on Vite 6
// and 7 with a module requested right before the stop;
// https://github.com/vitejs/vite/issues/22934). Nothing of a dev server
// needs saving.
const closeTimeout = 1000

async function shutdown() {
  if (closing) return
  closing = true
  setTimeout(() => process.exit(0), closeTimeout).unref()
  try {
    if (server) await server.close()
  } catch {}
  for (const s of [httpServer, hmrServer]) {
    if (!s) continue
    s.closeAllConnections?.()
    s.close()
  }
  process.exit(0)
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => shutdown())

// listen makes s listen on where: {fd} (an inherited socket) or {host,
// port}.
function listen(s, where) {
  return new Promise((resolve, reject) => {
    s.once('error', (err) => {
      err.vitehostPort = where.port
      reject(err)
    })
    s.listen(where, () => resolve(s))
  })
}

function listenHMR(where) {
  const s = http.createServer((req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain' })
    res.end('Upgrade Required')
  })
  return listen(s, where)
}

// hmrSubpath returns the value of the ws/hmr "path" option that makes the
// socket's path equal want: Vite joins the option to the dev server's base
// (/_nuxt/, /app/, ...) for both the listener and the client.
function hmrSubpath(base, want) {
  if (!want) return undefined
  let rel = path.posix.relative(base || '/', want)
  if (want.endsWith('/') && rel !== '' && !rel.endsWith('/')) rel += '/'
  return rel || undefined
}

function usesWsOption(version) {
  const [major, minor] = version.split('.').map((n) => parseInt(n, 10))
  return major > 8 || (major === 8 && minor >= 1)
}

async function loadPlugins(list) {
  const out = []
  for (const p of list || []) {
    let ns
    try {
      ns = await importModule(p.module)
    } catch (err) {
      err.message = `plugin ${p.module}: ${err.message}`
      throw err
    }
    const name = p.export || 'default'
    let f = ns[name]
    if (name === 'default' && f && typeof f !== 'function' && typeof f.default === 'function') f = f.default
    if (f === undefined) throw new Error(`plugin ${p.module} has no export "${name}"`)
    out.push(typeof f === 'function' ? await (p.hasOptions ? f(p.options) : f()) : f)
  }
  return out
}

// allowModules lets Vite serve the read-only dependencies outside the
// root, and gives it a node_modules of the project's own to write into.
function allowModules(server, root, modules) {
  if (!modules) return
  // Vite falls back from an unwritable node_modules on EACCES only, not on
  // the read-only file system's EROFS
  // (https://github.com/vitejs/vite/issues/18839).
  server.fs = { allow: [root, modules] }
  try {
    fs.mkdirSync(path.join(projectDir, 'node_modules'), { recursive: true })
  } catch {}
}

// maxWarmModules bounds the modules a warm-up loads.
const maxWarmModules = 300

// warm starts Vite with the config w on what the project directory holds,
// loads its page and every module it imports over loopback (the sandbox's
// network has nothing else), and closes it: Vite's code is then compiled
// and its caches filled for the next server of this process.
async function warm(vite, w) {
  const root = projectDir
  const ours = { root, configFile: w.configFile === null ? undefined : w.configFile, logLevel: 'silent', server: { middlewareMode: true, ws: false } }
  allowModules(ours.server, root, w.modules)
  const inline = vite.mergeConfig(w.config || {}, ours)
  inline.plugins = await loadPlugins(w.plugins)
  const s = await vite.createServer(inline)
  const h = http.createServer(s.middlewares)
  try {
    await listen(h, { host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${h.address().port}`
    const seen = new Set(['/'])
    const queue = ['/']
    while (queue.length && seen.size <= maxWarmModules) {
      const p = queue.shift()
      let body = ''
      try {
        const res = await fetch(base + p, { headers: { accept: p === '/' ? 'text/html' : '*/*' } })
        body = await res.text()
      } catch {
        continue
      }
      const specs = p === '/' ? body.matchAll(/<script[^>]*\ssrc=["']([^"']+)["']/g) : body.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\/[^"'\s]+)["']/g)
      for (const m of specs) {
        if (m[1].startsWith('/') && !m[1].startsWith('//') && !seen.has(m[1])) {
          seen.add(m[1])
          queue.push(m[1])
        }
      }
    }
  } finally {
    await s.close()
    h.closeAllConnections()
    h.close()
  }
}

async function main() {
  let vite
  try {
    vite = await importModule('vite')
  } catch (err) {
    fail(err, 'VITE_NOT_FOUND')
  }
  const version = vite.version || packageVersion('vite')
  say({ vitehost: 'loaded', version })

  let line = await readConfigLine()
  if (line === null) return
  let cfg = JSON.parse(line)
  if (cfg.warm) {
    await warm(vite, cfg.warm)
    say({ vitehost: 'warmed', version })
    line = await readConfigLine()
    if (line === null) return
    cfg = JSON.parse(line)
  }

  const sockets = cfg.listen
  hmrServer = await listenHMR(sockets ? { fd: sockets.hmr } : { host: cfg.hmrHost, port: cfg.hmrPort })
  const wsKey = usesWsOption(version) ? 'ws' : 'hmr'
  const client = cfg.client || {}
  const wsOptions = {
    server: hmrServer,
    clientPort: client.port || undefined,
    protocol: client.protocol || undefined,
    host: client.host || undefined,
  }

  let ready = false
  const vitehostPlugin = {
    name: 'vitehost',
    configResolved(config) {
      // The base is known only now; the path option is relative to it.
      const opts = config.server[wsKey]
      if (opts && typeof opts === 'object') opts.path = hmrSubpath(config.base, client.path)
    },
    configureServer(s) {
      // Vite restarts itself on a config file edit, with a new token; the
      // new server is announced once it listens.
      if (!ready) return
      const announce = () => say({ vitehost: 'token', token: s.config.webSocketToken })
      if (s.httpServer) s.httpServer.once('listening', announce)
      else announce()
    },
  }

  const user = cfg.config || {}
  const root = user.root ? path.resolve(projectDir, user.root) : projectDir
  const ours = {
    root,
    configFile: cfg.configFile === null ? undefined : cfg.configFile,
    server: sockets
      // The runner's server serves Vite's middlewares; appType stays the
      // project's (Vite's default, 'spa', serves index.html).
      ? { middlewareMode: true, [wsKey]: wsOptions }
      : { host: cfg.host, port: cfg.port, strictPort: true, [wsKey]: wsOptions },
  }
  if (cfg.allowedHosts && cfg.allowedHosts.length) ours.server.allowedHosts = cfg.allowedHosts
  // The dependencies are a read-only directory outside the root: Vite may
  // serve from it, and writes what it would write into node_modules (the
  // bundled config file, the optimizer's cache) into the project's own.
  allowModules(ours.server, root, cfg.modules)
  // The launch settings win over the caller's inline config; Vite merges
  // the result over the project's config file.
  const inline = vite.mergeConfig(user, ours)
  inline.plugins = [...(await loadPlugins(cfg.plugins)), vitehostPlugin]

  try {
    server = await vite.createServer(inline)
    if (sockets) {
      // Vite keeps server.middlewares the same object across its own
      // restarts (a config file edit), so this server follows them.
      httpServer = await listen(http.createServer(server.middlewares), { fd: sockets.http })
    } else {
      await server.listen()
    }
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
  if (sockets) {
    say({ vitehost: 'ready', unix: true, version, token: server.config.webSocketToken })
    return
  }
  say({
    vitehost: 'ready',
    port: server.httpServer.address().port,
    hmrPort: hmrServer.address().port,
    version,
    token: server.config.webSocketToken,
  })
}

main().catch((err) => fail(err))

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
//   4. Once ready, it reads further JSON lines from stdin, the batches of file
//      changes of the Go side (paths relative to projectDir):
//        {"vitehost":"hold","id":N,"files":[...],"deleted":[...]}
//          the files are about to change: the runner drops the file
//          watcher's events for them and prints {"vitehost":"held","id":N};
//        {"vitehost":"commit","id":N}
//          they are on disk: the runner has Vite handle all of them at once
//          and prints {"vitehost":"batch","id":N,"batch":{...}}, what Vite
//          did (see the batches section).
//      It also prints {"vitehost":"event","event":{...}} for what happens
//      outside batches: HMR messages that edits by other means caused,
//      compile errors, and, with "clientErrors" in the config, the runtime
//      errors that the pages report.
//   5. It runs until stdin closes or SIGTERM/SIGINT arrives, then closes the
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

// ---- stdin: the config line, then the Go side's messages, one JSON line
// each; EOF is the stop signal.

// maxInputLine bounds a line from stdin: a batch of a few thousand paths.
const maxInputLine = 4 << 20

// The lines of stdin: the config lines go to readConfigLine, every later
// one, once handleInput is called, to its handler.
const stdinLines = []
let stdinWaiter = null
let stdinEnded = false
let inputHandler = null

function readStdin() {
  let buf = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (chunk) => {
    buf += chunk
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (inputHandler) inputHandler(line)
      else stdinLines.push(line)
    }
    if (buf.length > maxInputLine) {
      process.stderr.write(`vitehost runner: dropped an input line of more than ${maxInputLine} bytes\n`)
      buf = ''
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

// readConfigLine resolves to the next line of stdin, or null at EOF.
async function readConfigLine() {
  while (!stdinLines.length && !stdinEnded) await new Promise((resolve) => (stdinWaiter = resolve))
  stdinWaiter = null
  return stdinLines.length ? stdinLines.shift() : null
}

// handleInput hands every later line of stdin to onInput.
function handleInput(onInput) {
  inputHandler = onInput
  while (stdinLines.length) onInput(stdinLines.shift())
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

// legacyHMRPlugins follow Vite 4's and 5's HMR step for the batches, as
// the hotUpdate hook and hotUpdateEnvironments do on Vite 6 and later:
// the first handleHotUpdate hook marks a file as reached, and the last one
// schedules the end of the step after the update that Vite sends right
// after the hooks (updateModules runs in the same task once the last hook
// has resolved).
function legacyHMRPlugins() {
  return [
    {
      name: 'vitehost:hmr-pre',
      enforce: 'pre',
      handleHotUpdate: {
        order: 'pre',
        handler(ctx) {
          batches.inflight++
          if (batches.current) batches.current.waiting.delete(path.resolve(ctx.file))
        },
      },
    },
    {
      name: 'vitehost:hmr-post',
      enforce: 'post',
      handleHotUpdate: {
        order: 'post',
        handler() {
          setImmediate(() => {
            batches.inflight = Math.max(0, batches.inflight - 1)
            checkBatch()
          })
        },
      },
    },
  ]
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

// ---- batches: the Go side's writes, handled by Vite as one change
//
// Vite hears of file changes from its watcher (chokidar), one file at a
// time, and computes each HMR update on the disk as it is at that moment:
// an importer that lands before the modules it imports makes the pages fetch
// what is not there yet (an error overlay, then full reloads). For a batch,
// the runner drops the watcher's events for the batch's files from the hold
// on, has Vite handle every file itself once all are on disk (the same
// events, emitted to Vite's listeners), and drops the watcher's late echo of
// those writes: an event for a file whose state on disk is still the one
// the batch left. An edit by other means (an editor) leaves another state
// and goes through the watcher as before.
//
// Vite's handling of an event is asynchronous and returns nothing to wait
// for; the runner knows it is done when every file of the batch reached
// Vite's HMR step (the hotUpdate hook of the client environment) and every
// HMR step under way has sent its messages (the hotUpdateEnvironments
// option, which Vite awaits at the end of each). Meanwhile the messages for
// the browsers are held back, and sent as one: a full reload, or one update
// that names every module.

// batchTimeout bounds the wait for Vite to handle a batch's files: a plugin
// whose watchChange hook throws stops Vite's handling of that file before
// the HMR step.
const batchTimeout = 10_000
const maxTransforms = 500 // modules a batch's outcome transforms to find compile errors
const maxErrors = 20
const maxLanded = 10_000 // files whose batch state is remembered for the echo

const originalEmit = Symbol('vitehost.emit')
const originalSend = Symbol('vitehost.send')
const wrappedHotUpdateEnvironments = Symbol('vitehost.hotUpdateEnvironments')

const batches = {
  holds: new Map(), // batch id -> {id, files, deleted, existed}
  held: new Map(), // absolute path -> number of holds that name it
  landed: new Map(), // absolute path -> its state (fileState) when a batch had Vite handle it
  queue: Promise.resolve(), // commits, one at a time
  current: null, // the batch Vite is handling: {waiting, payloads, done}
  errors: new Set(), // the last batch's compile errors (errorKey)
  inflight: 0, // Vite's HMR steps under way
}

let devServer = null // the newest server Vite made (it makes another when it restarts itself)
let clientErrors = false // the config's clientErrors: pages report their runtime errors

// projectPath returns the absolute path of a path relative to the project,
// or null for one that leaves it.
function projectPath(rel) {
  if (typeof rel !== 'string' || rel === '' || rel.includes('\0')) return null
  const abs = path.resolve(projectDir, rel)
  return abs.startsWith(projectDir + path.sep) ? abs : null
}

// fileState identifies what is at p now: a rename or a write changes it.
function fileState(p) {
  try {
    const st = fs.statSync(p, { bigint: true })
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
  } catch {
    return 'gone'
  }
}

function onInput(line) {
  let msg
  try {
    msg = JSON.parse(line)
  } catch {
    return
  }
  if (!msg || typeof msg !== 'object' || typeof msg.id !== 'number') return
  if (msg.vitehost === 'hold') {
    hold(msg)
  } else if (msg.vitehost === 'commit') {
    batches.queue = batches.queue.then(() => commit(msg)).catch((err) => {
      process.stderr.write(`vitehost runner: batch ${msg.id}: ${(err && err.stack) || err}\n`)
      say({ vitehost: 'batch', id: msg.id, batch: { incomplete: true } })
    })
  }
}

function hold(msg) {
  const paths = (list) => (Array.isArray(list) ? list : []).map(projectPath).filter(Boolean)
  const b = { id: msg.id, files: [...new Set(paths(msg.files))], deleted: [...new Set(paths(msg.deleted))] }
  b.existed = new Set([...b.files, ...b.deleted].filter((p) => fs.existsSync(p)))
  for (const p of [...b.files, ...b.deleted]) batches.held.set(p, (batches.held.get(p) || 0) + 1)
  batches.holds.set(b.id, b)
  say({ vitehost: 'held', id: b.id })
}

async function commit(msg) {
  const b = batches.holds.get(msg.id)
  if (!b) {
    say({ vitehost: 'batch', id: msg.id, batch: { incomplete: true } })
    return
  }
  batches.holds.delete(b.id)
  for (const p of [...b.files, ...b.deleted]) {
    const n = batches.held.get(p) - 1
    if (n > 0) batches.held.set(p, n)
    else batches.held.delete(p)
    batches.landed.delete(p) // to the end of the insertion order
    batches.landed.set(p, fileState(p))
  }
  while (batches.landed.size > maxLanded) batches.landed.delete(batches.landed.keys().next().value)
  const result = await handleBatch(b)
  batches.errors = new Set((result.errors || []).map(errorKey))
  say(fitLine({ vitehost: 'batch', id: b.id, batch: result }))
}

// dropWatcherEvent reports whether the watcher's event for file is one a
// batch handles or handled: the file is held, or is as a batch left it.
function dropWatcherEvent(kind, file) {
  if (kind !== 'add' && kind !== 'change' && kind !== 'unlink') return false
  const p = path.resolve(file)
  if (batches.held.has(p)) return true
  const state = batches.landed.get(p)
  if (state === undefined) return false
  if (fileState(p) === state) return true
  batches.landed.delete(p) // changed since: the watcher's again
  return false
}

// restartsVite reports whether Vite restarts itself for a change of file
// (its config file, a file the config imports, an env file) instead of
// sending HMR messages.
function restartsVite(s, file) {
  const c = s.config
  if (file === c.configFile || (c.configFileDependencies || []).includes(file)) return true
  if (c.envDir === false) return false
  const dir = c.envDir || c.root
  return ['.env', '.env.local', `.env.${c.mode}`, `.env.${c.mode}.local`].some((n) => path.join(dir, n) === file)
}

// handleBatch has Vite handle the files of b, which are on disk now, and
// returns what it did.
async function handleBatch(b) {
  const result = { updates: [], fullReload: false, reloadPath: '', restarted: false, errors: [], incomplete: false }
  const s = devServer
  if (!s || closing) {
    result.incomplete = true
    return result
  }
  const events = []
  for (const p of b.deleted) if (b.existed.has(p) && !fs.existsSync(p)) events.push(['unlink', p])
  for (const p of b.files) if (fs.existsSync(p)) events.push([b.existed.has(p) ? 'change' : 'add', p])
  // Vite 4 and 5 have no environments: their HMR step is the
  // handleHotUpdate hooks (legacyHMRPlugins), which run for changes only.
  const legacy = !s.environments
  const hmr = s.config.server.hmr !== false && !(s.config.experimental && s.config.experimental.bundledDev)
  const cur = { waiting: new Set(), payloads: [], done: null }
  const finished = new Promise((resolve) => (cur.done = resolve))
  for (const [kind, p] of events) {
    if (restartsVite(s, p)) result.restarted = true
    else if (!legacy || kind === 'change') cur.waiting.add(p)
  }
  const wait = hmr && !result.restarted && (cur.waiting.size > 0 || !legacy) && events.length > 0
  if (wait) batches.current = cur
  const emit = s.watcher[originalEmit] || s.watcher.emit.bind(s.watcher)
  for (const [kind, p] of events) {
    emit(kind, p)
    emit('all', kind, p)
  }
  if (wait) {
    checkBatch()
    const timer = setTimeout(() => {
      result.incomplete = true
      cur.done()
    }, batchTimeout)
    await finished
    clearTimeout(timer)
    batches.current = null
    flush(s, cur.payloads, result)
  }
  if (result.restarted) {
    result.fullReload = true
    result.reloadPath = '*'
    return result
  }
  const seen = new Set(result.errors.map(errorKey))
  for (const e of await compileErrors(s, b)) {
    if (result.errors.length >= maxErrors) break
    if (!seen.has(errorKey(e))) {
      seen.add(errorKey(e))
      result.errors.push(e)
    }
  }
  return result
}

// checkBatch ends the wait for the current batch once Vite has handled all
// of its files.
function checkBatch() {
  const cur = batches.current
  if (cur && cur.waiting.size === 0 && batches.inflight === 0) cur.done()
}

// flush sends the browsers what Vite sent them during the batch, as one
// message, and records it in result.
function flush(s, payloads, result) {
  const send = s.ws[originalSend] || s.ws.send
  let reload = null
  const updates = new Map()
  const rest = []
  for (const p of payloads) {
    if (p.type === 'full-reload') {
      reload = reload && reload.path !== p.path ? { ...p, path: '*' } : p
    } else if (p.type === 'update') {
      for (const u of p.updates || []) {
        const key = `${u.type} ${u.path} ${u.acceptedPath}`
        updates.delete(key)
        updates.set(key, u)
      }
    } else {
      rest.push(p)
    }
  }
  if (reload) {
    // The pages reload: updates would be lost on them.
    result.fullReload = true
    result.reloadPath = reload.path || '*'
    send.call(s.ws, reload)
  } else if (updates.size > 0) {
    result.updates = [...updates.values()].map((u) => ({ type: u.type, path: u.path, acceptedPath: u.acceptedPath, timestamp: u.timestamp }))
    send.call(s.ws, { type: 'update', updates: [...updates.values()] })
  }
  for (const p of rest) {
    if (p.type === 'error' && p.err && result.errors.length < maxErrors) result.errors.push(compileError(p.err))
    send.call(s.ws, p)
  }
}

// compileErrors transforms the modules of the batch's files that Vite's
// module graph knows (the pages loaded them), and the modules they import
// that are in the batch or were never transformed (a new component), the
// way the browser's requests would, and returns their compile errors.
async function compileErrors(s, b) {
  // Vite 4 and 5: the server itself has the client's module graph.
  const env = s.environments ? s.environments.client : { moduleGraph: s.moduleGraph, transformRequest: (url) => s.transformRequest(url) }
  if (!env || typeof env.transformRequest !== 'function') return []
  const inBatch = new Set(b.files)
  const cacheDir = s.config.cacheDir
  const seen = new Set()
  const errors = []
  let next = []
  const visit = (mod) => {
    if (!mod || seen.has(mod) || seen.size >= maxTransforms) return
    const f = mod.file
    if (!f || !f.startsWith(projectDir + path.sep) || f.includes(`${path.sep}node_modules${path.sep}`)) return
    if ((cacheDir && f.startsWith(cacheDir + path.sep)) || mod.type === 'asset') return
    seen.add(mod)
    next.push(mod)
  }
  for (const f of b.files) for (const mod of env.moduleGraph.getModulesByFile(f) || []) visit(mod)
  while (next.length > 0) {
    const round = next
    next = []
    await Promise.all(round.map(async (mod) => {
      try {
        await env.transformRequest(mod.url)
      } catch (err) {
        errors.push(compileError(err))
        return
      }
      for (const dep of mod.importedModules) if (inBatch.has(dep.file) || !dep.transformResult) visit(dep)
    }))
  }
  return errors
}

// ---- errors and events: what the Go side gets is relative to the project.

const ansi = /\x1b\[[0-9;]*[A-Za-z]/g
// locInMessage finds "file:line:column" in a message: Vite 8's oxc
// transform reports the position only there ("─[ src/App.tsx:3:1 ]").
const locInMessage = /([^\s[\]()'"]+):(\d+):(\d+)/

function clip(v, n) {
  const s = typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v)
  return s.length > n ? s.slice(0, n) + '…' : s
}

// The Go side's clients see no paths of the machine: project files are
// relative to the project, dependencies start at node_modules/.
const modulesPrefix = /(?:\/[^\s/'"()[\]]+)*\/node_modules\//g

function withoutProject(s) {
  return s.split(projectDir + path.sep).join('').replace(modulesPrefix, 'node_modules/')
}

// publicFile returns the name of the file at f for the Go side's clients,
// or null for a file outside the project and its dependencies.
function publicFile(f) {
  f = f.replace(/\?.*$/, '')
  if (f.startsWith(projectDir + path.sep)) return f.slice(projectDir.length + 1)
  const i = f.lastIndexOf(`${path.sep}node_modules${path.sep}`)
  return i >= 0 ? f.slice(i + 1) : null
}

function relativeFile(f) {
  return publicFile(f) ?? path.basename(f.replace(/\?.*$/, ''))
}

function compileError(e) {
  const message = clip(withoutProject(String((e && e.message) || e).replace(ansi, '')), 4000)
  let file = (e && ((e.loc && e.loc.file) || e.id)) || ''
  let line = (e && e.loc && e.loc.line) || 0
  let column = (e && e.loc && e.loc.column) || 0
  if (!line) {
    const m = locInMessage.exec(message)
    if (m) {
      line = Number(m[2])
      column = Number(m[3])
      if (!file) file = m[1]
    }
  }
  return {
    message,
    file: clip(relativeFile(String(file)), 1000),
    line: Number.isSafeInteger(line) ? line : 0,
    column: Number.isSafeInteger(column) ? column : 0,
    frame: clip(withoutProject(String((e && e.frame) || '').replace(ansi, '')), 4000),
    plugin: clip((e && e.plugin) || '', 200),
  }
}

function errorKey(e) {
  return `${e.file}:${e.line}:${e.column}:${e.message}`
}

// maxLine keeps a protocol line below the Go side's limit (64 KiB).
const maxLine = 60_000

// fitLine shortens msg until its line fits.
function fitLine(msg) {
  const size = () => Buffer.byteLength(JSON.stringify(msg))
  const b = msg.batch
  const e = msg.event
  for (let round = 0; size() > maxLine && round < 4; round++) {
    if (b) {
      b.truncated = true
      b.errors = (b.errors || []).slice(0, round < 2 ? 5 : 0).map((x) => ({ ...x, message: clip(x.message, 1000), frame: '' }))
      b.updates = (b.updates || []).slice(0, [200, 50, 10, 0][round])
    }
    if (e) {
      e.stack = clip(e.stack, [4000, 1000, 0, 0][round])
      e.message = clip(e.message, [2000, 500, 100, 100][round])
      e.page = clip(e.page, 500)
      if (e.error) e.error = { ...e.error, frame: '', message: clip(e.error.message, 500) }
      if (e.updates) e.updates = e.updates.slice(0, [200, 50, 10, 0][round])
    }
  }
  return msg
}

// observe reports a message for the browsers that no batch caused: an edit
// by other means, a compile error found by a page's request.
function observe(payload) {
  if (payload.type === 'update') {
    const updates = (payload.updates || []).map((u) => ({ type: u.type, path: u.path, acceptedPath: u.acceptedPath, timestamp: u.timestamp }))
    say(fitLine({ vitehost: 'event', event: { type: 'hmr', updates } }))
  } else if (payload.type === 'full-reload') {
    say({ vitehost: 'event', event: { type: 'hmr', fullReload: true, reloadPath: clip(payload.path || '*', 1000) } })
  } else if (payload.type === 'error' && payload.err) {
    // A page's request for a module that the last batch's outcome already
    // reported broken is no news.
    const e = compileError(payload.err)
    if (!batches.errors.has(errorKey(e))) say(fitLine({ vitehost: 'event', event: { type: 'compile-error', error: e } }))
  }
}

// attach makes a server that Vite made follow the batches and report its
// messages; configureServer calls it for each, restarts included.
function attach(s) {
  devServer = s
  batches.inflight = 0 // HMR steps of the old server never finish
  const w = s.watcher
  if (w && !w[originalEmit]) {
    const emit = w.emit
    w[originalEmit] = emit.bind(w)
    w.emit = function (event, ...args) {
      const kind = event === 'all' ? args[0] : event
      const file = event === 'all' ? args[1] : args[0]
      if (typeof file === 'string' && dropWatcherEvent(kind, file)) return false
      return emit.call(this, event, ...args)
    }
    w.on('error', watcherError)
  }
  const ws = s.ws
  if (ws && !ws[originalSend]) {
    const send = ws.send
    ws[originalSend] = send
    ws.send = function (...args) {
      const payload = typeof args[0] === 'object' && args[0] !== null ? args[0] : null
      if (payload && batches.current && (payload.type === 'update' || payload.type === 'full-reload' || payload.type === 'error')) {
        batches.current.payloads.push(payload)
        return
      }
      if (payload) observe(payload)
      return send.apply(this, args)
    }
    if (clientErrors) ws.on('vitehost:error', (data, client) => reportClientError(s, data, client))
  }
  checkBatch()
}

// watcherError reports a file watcher that the kernel refused: inotify
// instances (EMFILE) or watches (ENOSPC) of the user are used up. Without a
// watcher, edits on disk reach no page, silently; the Go side fails the
// session instead. Other errors of the watcher are chokidar's to log. The
// first report is enough.
let watcherReported = false
function watcherError(err) {
  const code = err && err.code
  if ((code !== 'EMFILE' && code !== 'ENOSPC') || watcherReported) return
  watcherReported = true
  say({ vitehost: 'event', event: { type: 'watcher-error', code, message: String(err.message || err).slice(0, 300) } })
}

// watchWatcherErrors finds the watcher's errors in what Vite logs: Vite
// makes its watcher, which starts watching at once, before any hook but
// configResolved sees the server, so that the errors of the first watches
// reach only Vite's own listener, which logs "file watcher error: ..."
// (Vite 5 to 8, server/index.ts). attach's listener gets the later ones.
const wrappedLogger = Symbol('vitehost.wrappedLogger')
function watchWatcherErrors(logger) {
  if (!logger || typeof logger.error !== 'function' || logger[wrappedLogger]) return
  const error = logger.error
  logger[wrappedLogger] = true
  logger.error = function (msg, ...rest) {
    const m = /file watcher error: (EMFILE|ENOSPC)\b/.exec(String(msg).replace(/\x1b\[[0-9;]*m/g, ''))
    if (m) watcherError({ code: m[1], message: String(msg) })
    return error.call(this, msg, ...rest)
  }
}

// ---- runtime errors of the pages: a module the runner adds to each page
// (clientErrors) reports them over the HMR socket as Vite custom events.

const clientModuleURL = '/@vitehost/client'
const clientModuleID = '\0vitehost-client'
const clientModule = `// vitehost: reports this page's runtime errors to the dev server.
const hot = import.meta.hot
if (hot) {
  const limit = 30
  const windowMs = 10000
  let count = 0
  let since = Date.now()
  const moduleLoad = /Failed to fetch dynamically imported module|error loading dynamically imported module|Importing a module script failed/
  const text = (v) => {
    if (v instanceof Error) return v.message
    if (typeof v === 'string') return v
    try { return JSON.stringify(v) } catch { return String(v) }
  }
  const format = (args) => {
    if (typeof args[0] !== 'string' || !/%[sdifoOc]/.test(args[0])) return args.map(text).join(' ')
    let i = 1
    const head = args[0].replace(/%[sdifoOc]/g, (m) => m === '%c' ? (i++, '') : i < args.length ? text(args[i++]) : m)
    return [head, ...args.slice(i).map(text)].join(' ')
  }
  const report = (kind, message, stack) => {
    const now = Date.now()
    if (now - since > windowMs) { since = now; count = 0 }
    if (++count > limit) return
    try {
      hot.send('vitehost:error', { kind, message: String(message).slice(0, 4000), stack: String(stack || '').slice(0, 16000), page: location.href.slice(0, 2000) })
    } catch {}
  }
  addEventListener('error', (e) => {
    const t = e.target
    if (t && t !== window && t.tagName) {
      report('module-load', 'failed to load ' + t.tagName.toLowerCase() + ' ' + (t.src || t.href || '') + ' (or a module it imports)', '')
      return
    }
    const err = e.error
    const message = (err && err.message) || e.message || 'error'
    const stack = (err && err.stack) || (e.filename ? '    at ' + e.filename + ':' + e.lineno + ':' + e.colno : '')
    report(moduleLoad.test(message) ? 'module-load' : 'error', message, stack)
  }, true)
  addEventListener('unhandledrejection', (e) => {
    const r = e.reason
    const message = (r && r.message) || text(r)
    report(moduleLoad.test(message) ? 'module-load' : 'unhandledrejection', message, r && r.stack)
  })
  const consoleError = console.error
  console.error = function (...args) {
    const err = args.find((a) => a instanceof Error)
    report('console.error', format(args), err ? err.stack : new Error().stack)
    return consoleError.apply(this, args)
  }
}
`

// clientErrorsHooks are the vitehost plugin's hooks that add the module to
// every page the dev server serves. They are not a plugin of their own:
// Vite's optimized-dependency cache is keyed by the plugins' names, and a
// session with the module shares the cache of one without it.
function clientErrorsHooks() {
  let base = '/'
  return {
    configResolved(config) {
      base = config.base || '/'
    },
    resolveId(id) {
      if (id === clientModuleURL) return clientModuleID
    },
    load(id) {
      if (id === clientModuleID) return clientModule
    },
    transformIndexHtml() {
      return [{ tag: 'script', attrs: { type: 'module', src: path.posix.join(base, clientModuleURL) }, injectTo: 'head-prepend' }]
    },
  }
}

const clientKinds = new Set(['error', 'unhandledrejection', 'module-load', 'console.error'])
// A page in a render loop reports without end, and anyone who can open the
// page can send reports on a socket of their own: each socket may send
// clientBurst reports at once and clientRate a second after that (what the
// page's module itself sends at most: 30 in 10 s), so that one socket that
// floods uses up its own budget and no other page's. Vite hands a listener
// the same client object for every message of a socket (getSocketClient in
// Vite 6-8's ws.ts); the buckets go with the sockets.
const clientBurst = 30
const clientRate = 3
const clientBuckets = new WeakMap()
const noClient = {} // the bucket of reports that come without a client

// takeReport reports whether client may send one more report now.
function takeReport(client) {
  const key = client && typeof client === 'object' ? client : noClient
  const now = Date.now()
  let b = clientBuckets.get(key)
  if (!b) {
    b = { tokens: clientBurst, at: now }
    clientBuckets.set(key, b)
  }
  b.tokens = Math.min(clientBurst, b.tokens + ((now - b.at) * clientRate) / 1000)
  b.at = now
  if (b.tokens < 1) return false
  b.tokens--
  return true
}

async function reportClientError(s, data, client) {
  if (!data || typeof data !== 'object') return
  if (!takeReport(client)) return
  let mapped = { stack: '', file: '', line: 0, column: 0 }
  try {
    mapped = await mapStack(s, clip(data.stack, 16000))
  } catch {}
  say(fitLine({
    vitehost: 'event',
    event: {
      type: 'client-error',
      kind: clientKinds.has(data.kind) ? data.kind : 'error',
      message: clip(withoutProject(clip(data.message, 4000)), 4000),
      page: clip(data.page, 2000),
      ...mapped,
    },
  }))
}

const frameURL = /(https?:\/\/[^\s()]+?):(\d+):(\d+)/

// mapStack rewrites the stack's frames from the URLs the browser ran to the
// project's files, through the source maps of Vite's module graph, and
// returns it with the first frame in the project's own files.
async function mapStack(s, stack) {
  const out = { stack: '', file: '', line: 0, column: 0 }
  const lines = []
  for (const line of stack.split('\n').slice(0, 50)) {
    if (line.includes(clientModuleURL)) continue // the reporter's own frames
    const m = frameURL.exec(line)
    const pos = m && (await originalPosition(s, m[1], Number(m[2]), Number(m[3])))
    if (!pos) {
      lines.push(line)
      continue
    }
    lines.push(line.slice(0, m.index) + `${pos.file}:${pos.line}:${pos.column}` + line.slice(m.index + m[0].length))
    if (!out.file && !pos.file.startsWith('/') && !pos.file.includes('node_modules/')) {
      out.file = pos.file
      out.line = pos.line
      out.column = pos.column
    }
  }
  out.stack = lines.join('\n')
  return out
}

// originalPosition maps a position (1-based line and column) in the module
// at href, as Vite served it, to the project file it came from.
async function originalPosition(s, href, line, column) {
  let u
  try {
    u = new URL(href)
  } catch {
    return null
  }
  u.searchParams.delete('t') // the HMR timestamp; Vite's own removal wants 13 digits
  let url = u.pathname + u.search
  const base = s.config.base || '/'
  if (base !== '/' && url.startsWith(base)) url = url.slice(base.length - 1)
  const graph = s.environments && s.environments.client && s.environments.client.moduleGraph
  if (!graph) return null
  let mod
  try {
    mod = await graph.getModuleByUrl(url)
  } catch {
    return null
  }
  if (!mod || !mod.file) return null
  if (!mod.transformResult) {
    // An HMR update invalidated it since the page loaded it; the page runs
    // the newest version as a rule.
    try {
      await s.environments.client.transformRequest(mod.url)
    } catch {
      return null
    }
  }
  const map = mod.transformResult && mod.transformResult.map
  if (!map || typeof map.mappings !== 'string' || map.mappings === '') {
    const file = publicFile(mod.file)
    return file && { file, line, column } // served as written
  }
  const pos = lookupMapping(map.mappings, line - 1, column - 1)
  if (!pos || !Array.isArray(map.sources) || typeof map.sources[pos.source] !== 'string') return null
  let src = (map.sourceRoot || '') + map.sources[pos.source]
  if (src.startsWith('file://')) src = new URL(src).pathname
  if (!path.isAbsolute(src)) src = path.resolve(path.dirname(mod.file), src)
  const file = publicFile(src)
  return file && { file, line: pos.line + 1, column: pos.column + 1 }
}

const base64 = new Map([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].map((c, i) => [c, i]))

// lookupMapping decodes a source map's mappings (base64 VLQ) up to the
// generated line line0 and returns the original position of the last
// segment at or before column col0 (all 0-based), or null.
function lookupMapping(mappings, line0, col0) {
  let source = 0
  let oLine = 0
  let oCol = 0
  let best = null
  let i = 0
  for (let l = 0; l <= line0 && i <= mappings.length; l++) {
    let gCol = 0
    while (i < mappings.length && mappings[i] !== ';') {
      if (mappings[i] === ',') {
        i++
        continue
      }
      const seg = []
      while (i < mappings.length && mappings[i] !== ',' && mappings[i] !== ';') {
        let value = 0
        let shift = 0
        let digit
        do {
          digit = base64.get(mappings[i++])
          if (digit === undefined) return best
          value += (digit & 31) * 2 ** shift
          shift += 5
        } while (digit & 32)
        seg.push(value % 2 ? -Math.floor(value / 2) : Math.floor(value / 2))
      }
      gCol += seg[0] || 0
      if (seg.length >= 4) {
        source += seg[1]
        oLine += seg[2]
        oCol += seg[3]
        if (l === line0 && gCol <= col0) best = { source, line: oLine, column: oCol }
      }
    }
    i++ // the ';'
  }
  return best
}

// ---- optimized dependencies outside the refresh transform (issue 23)
//
// With Vite >= 8, @vitejs/plugin-react sets oxc.jsxRefreshInclude to every
// .js/.ts file and excludes /node_modules/ only; Vite's oxc plugin then
// transforms, with a source map, every module that the include matches,
// even when it turns the refresh off for it. The optimized dependencies
// sit in the project's own cacheDir (.vite-cache) when the project's
// node_modules is shared or read-only: each dev server then transformed
// react-dom's 1 MB chunk on its first page load, about 0.8 s of a fresh
// runner's first page load here (and as much for every session that
// starts in a spare, whose module graph is new). Excluding the cacheDir
// from the refresh filter leaves those files as the optimizer wrote them,
// as Vite does for its default cacheDir under node_modules.

// skipOptimizedDeps is a config hook that adds the cacheDir to the refresh
// filter's exclusions when a plugin set the filter: setting an exclusion
// alone would make the filter match every other file.
function skipOptimizedDeps(config) {
  const oxc = config.oxc
  if (!oxc || typeof oxc !== 'object' || !oxc.jsxRefreshInclude || !config.cacheDir) return
  const dir = path.resolve(config.root ? path.resolve(projectDir, config.root) : projectDir, config.cacheDir)
  if (dir.split(path.sep).includes('node_modules')) return
  const escaped = dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return { oxc: { jsxRefreshExclude: [new RegExp('^' + escaped + '/')] } }
}

// warmPlugin stands in, in a spare's warm-up, for the vitehost plugin of
// the project's server (main): Vite's optimized-dependency cache is keyed by
// the plugins' names, and a warm-up without it found the template's
// optimized dependencies stale and optimized them again (a second of CPU,
// and the optimizer's memory kept by the spare).
function warmPlugin() {
  return { name: 'vitehost', config: skipOptimizedDeps }
}

// maxWarmModules bounds the modules a warm-up loads.
const maxWarmModules = 300

// warm starts Vite with the config w on what the project directory holds,
// loads its page and every module it imports over loopback (the sandbox's
// network has nothing else), and closes it: Vite's code is then compiled
// and its caches filled for the next server of this process.
async function warm(vite, w) {
  const root = projectDir
  const ours = {
    root,
    configFile: w.configFile === null ? undefined : w.configFile,
    logLevel: 'silent',
    server: { middlewareMode: true, ws: false },
  }
  if (w.modules) {
    ours.server.fs = { allow: [root, w.modules] } // as for the project, below
    try {
      fs.mkdirSync(path.join(projectDir, 'node_modules'), { recursive: true })
    } catch {}
  }
  const inline = vite.mergeConfig(w.config || {}, ours)
  inline.plugins = [...(await loadPlugins(w.plugins)), warmPlugin()]
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

  readStdin()
  let line = await readConfigLine()
  if (line === null) return
  let cfg = JSON.parse(line)
  if (cfg.warm) {
    await warm(vite, cfg.warm)
    say({ vitehost: 'warmed', version })
    line = await readConfigLine()
    if (line === null) return
    cfg = JSON.parse(line)
    // The real project may have been mounted over the directory the
    // warm-up ran in (a sandbox's disk): the working directory still
    // holds the one below, where the project's code must not write.
    process.chdir(projectDir)
  }
  handleInput(onInput)
  clientErrors = !!cfg.clientErrors

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
      // Vite awaits this at the end of each file's HMR step: a batch is
      // handled when no step is under way (see the batches section).
      const inner = config.server.hotUpdateEnvironments
      if (!inner || !inner[wrappedHotUpdateEnvironments]) {
        const wrapped = async (server, hmr) => {
          try {
            if (inner) await inner(server, hmr)
            else await Promise.all(Object.values(server.environments).map((env) => hmr(env)))
          } finally {
            batches.inflight = Math.max(0, batches.inflight - 1)
            checkBatch()
          }
        }
        wrapped[wrappedHotUpdateEnvironments] = true
        config.server.hotUpdateEnvironments = wrapped
      }
      watchWatcherErrors(config.logger)
    },
    hotUpdate: {
      // First, so that a plugin that throws in its own hook cannot keep
      // the batch waiting for this file.
      order: 'pre',
      handler(options) {
        if (this.environment && this.environment.name !== 'client') return
        batches.inflight++
        if (batches.current) batches.current.waiting.delete(path.resolve(options.file))
      },
    },
    configureServer(s) {
      attach(s)
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
  if (cfg.modules) {
    // The dependencies are a read-only directory outside the root: Vite
    // may serve from it, and writes what it would write into
    // node_modules (the bundled config file, the optimizer's cache) into
    // the project's own. Vite falls back from an unwritable node_modules
    // on EACCES only, not on the read-only file system's EROFS
    // (https://github.com/vitejs/vite/issues/18839).
    ours.server.fs = { allow: [root, cfg.modules] }
    try {
      fs.mkdirSync(path.join(projectDir, 'node_modules'), { recursive: true })
    } catch {}
  }
  // The launch settings win over the caller's inline config; Vite merges
  // the result over the project's config file.
  const inline = vite.mergeConfig(user, ours)
  if (clientErrors) {
    const hooks = clientErrorsHooks()
    const configResolved = vitehostPlugin.configResolved
    Object.assign(vitehostPlugin, hooks, {
      configResolved(config) {
        configResolved.call(this, config)
        hooks.configResolved(config)
      },
    })
  }
  vitehostPlugin.config = skipOptimizedDeps
  inline.plugins = [...(await loadPlugins(cfg.plugins)), vitehostPlugin]
  if (parseInt(version, 10) < 6) inline.plugins.push(...legacyHMRPlugins())

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

// Runtime errors of the pages: a module the runner adds to each page
// (the clientErrors config) reports them over the HMR socket as Vite custom
// events; the runner maps their stacks to the project's files and reports
// them as events.

import fs from 'node:fs'
import path from 'node:path'
import { clip, fitLine, say } from './protocol.mjs'
import { originalOf } from './sourcemap.mjs'

export const clientModuleURL = '/@vitehost/client'
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
export function clientErrorsHooks() {
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

// reportBudget returns takeReport(client), which reports whether client
// may send one more report now; its buckets are its own.
export function reportBudget(now = Date.now) {
  const buckets = new WeakMap()
  const noClient = {} // the bucket of reports that come without a client
  return (client) => {
    const key = client && typeof client === 'object' ? client : noClient
    const t = now()
    let b = buckets.get(key)
    if (!b) {
      b = { tokens: clientBurst, at: t }
      buckets.set(key, b)
    }
    b.tokens = Math.min(clientBurst, b.tokens + ((t - b.at) * clientRate) / 1000)
    b.at = t
    if (b.tokens < 1) return false
    b.tokens--
    return true
  }
}

// clientErrorReporter returns the listener of the vitehost:error event of
// a dev server's WebSocket: report(s, data, client). files is a reporter
// (report.mjs) of the project.
export function clientErrorReporter(files) {
  const takeReport = reportBudget()
  return async (s, data, client) => {
    if (!data || typeof data !== 'object') return
    if (!takeReport(client)) return
    let mapped = { stack: '', file: '', line: 0, column: 0 }
    try {
      mapped = await mapStack(s, files, clip(data.stack, 16000))
    } catch {}
    say(fitLine({
      vitehost: 'event',
      event: {
        type: 'client-error',
        kind: clientKinds.has(data.kind) ? data.kind : 'error',
        message: clip(files.withoutProject(clip(data.message, 4000)), 4000),
        page: clip(data.page, 2000),
        ...mapped,
      },
    }))
  }
}

const frameURL = /(https?:\/\/[^\s()]+?):(\d+):(\d+)/

// mapStack rewrites the stack's frames from the URLs the browser ran to the
// project's files, through the source maps of Vite's module graph, and
// returns it with the first frame in the project's own files.
async function mapStack(s, files, stack) {
  const out = { stack: '', file: '', line: 0, column: 0 }
  const lines = []
  const depsMaps = new Map() // the optimizer's maps read for this stack
  for (const line of stack.split('\n').slice(0, 50)) {
    if (line.includes(clientModuleURL)) continue // the reporter's own frames
    const m = frameURL.exec(line)
    const pos = m && (await originalPosition(s, files, depsMaps, m[1], Number(m[2]), Number(m[3])))
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
// at href, as Vite served it, to the project file it came from; depsMaps
// keeps the optimizer's maps it reads.
async function originalPosition(s, files, depsMaps, href, line, column) {
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
  let map = mod.transformResult && mod.transformResult.map
  if (!map || typeof map.mappings !== 'string' || map.mappings === '') map = optimizedMap(s, depsMaps, mod.file)
  if (!map || typeof map.mappings !== 'string' || map.mappings === '') {
    const file = files.publicFile(mod.file)
    return file && { file, line, column } // served as written
  }
  const pos = originalOf(map, line - 1, column - 1)
  if (!pos) return null
  let src = pos.source
  if (src.startsWith('file://')) src = new URL(src).pathname
  if (!path.isAbsolute(src)) src = path.resolve(path.dirname(mod.file), src)
  const file = files.publicFile(src)
  return file && { file, line: pos.line + 1, column: pos.column + 1 }
}

// optimizedMap returns the optimizer's source map of the optimized
// dependency at file, which is sent with a link to it rather than a map
// of its own (optimized.mjs), or null for any other module.
function optimizedMap(s, depsMaps, file) {
  const dir = s.config.cacheDir && path.join(s.config.cacheDir, 'deps') + path.sep
  if (!dir || !file.startsWith(dir)) return null
  if (!depsMaps.has(file)) {
    let map = null
    try {
      map = JSON.parse(fs.readFileSync(file + '.map', 'utf8'))
    } catch {}
    depsMaps.set(file, map)
  }
  return depsMaps.get(file)
}

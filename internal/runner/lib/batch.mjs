// Batches: the Go side's writes, handled by Vite as one change.
//
// Vite hears of file changes from its watcher (chokidar), one file at a
// time, and computes each HMR update on the disk as it is at that moment:
// an importer that lands before the modules it imports makes the pages fetch
// what is not there yet (an error overlay, then full reloads). For a batch,
// the runner drops the watcher's events for the batch's files from the hold
// on (watchfilter.mjs), has Vite handle every file itself once all are on
// disk (the same events, emitted to Vite's listeners), and drops the
// watcher's late echo of those writes.
//
// Vite's handling of an event is asynchronous and returns nothing to wait
// for; the runner knows it is done when every file of the batch reached
// Vite's HMR step (the hotUpdate hook of the client environment) and every
// HMR step under way has sent its messages (the hotUpdateEnvironments
// option, which Vite awaits at the end of each). Meanwhile the messages for
// the browsers are held back, and sent as one: a full reload, or one update
// that names every module (vitepatch.mjs has the patches).

import fs from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { clip, fitLine, say } from './protocol.mjs'
import { errorKey } from './report.mjs'
import { patchSend, patchWatcher } from './vitepatch.mjs'
import { watchFilter } from './watchfilter.mjs'

// batchTimeout bounds the wait for Vite to handle a batch's files: a plugin
// whose watchChange hook throws stops Vite's handling of that file before
// the HMR step.
const batchTimeout = 10_000
const maxTransforms = 500 // modules a batch's outcome transforms to find compile errors
const maxErrors = 20

// batcher returns the batches of one runner for the project in projectDir:
//   input(line)      a line of stdin after the config (hold, commit, release,
//                    abandon)
//   attach(s, opts)  follow a dev server Vite made (restarts included);
//                    opts.onWatcherError gets the watcher's errors,
//                    opts.onSocket(ws, s) runs once per WebSocket server
//   started(file)    Vite's HMR step for file began
//   ended()          an HMR step sent its messages
// stopping() reports whether the runner is stopping; files is the
// project's reporter (report.mjs).
export function batcher({ projectDir, files, stopping }) {
  const filter = watchFilter()
  const holds = new Map() // batch id -> {id, files, deleted, existed}
  let queue = Promise.resolve() // commits, one at a time
  let current = null // the batch Vite is handling: {waiting, payloads, done}
  let lastErrors = new Set() // the last batch's compile errors (errorKey)
  let inflight = 0 // Vite's HMR steps under way
  let dev = null // the newest server Vite made: {s, emit, send}
  let handling = null // the commit under way: {id, giveUp}

  // projectPath returns the absolute path of a path relative to the
  // project, or null for one that leaves it.
  const projectPath = (rel) => {
    if (typeof rel !== 'string' || rel === '' || rel.includes('\0')) return null
    const abs = path.resolve(projectDir, rel)
    return abs.startsWith(projectDir + path.sep) ? abs : null
  }

  const checkBatch = () => {
    if (current && current.waiting.size === 0 && inflight === 0) current.done()
  }

  function input(line) {
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
      queue = queue.then(() => commit(msg)).catch((err) => {
        process.stderr.write(`vitehost runner: batch ${msg.id}: ${(err && err.stack) || err}\n`)
        say({ vitehost: 'batch', id: msg.id, batch: { incomplete: true } })
      })
    } else if (msg.vitehost === 'abandon') {
      abandon(msg.id)
    } else if (msg.vitehost === 'release') {
      queue = queue.then(() => release(msg)).catch((err) => {
        process.stderr.write(`vitehost runner: released batch ${msg.id}: ${(err && err.stack) || err}\n`)
      })
    }
  }

  function hold(msg) {
    const paths = (list) => (Array.isArray(list) ? list : []).map(projectPath).filter(Boolean)
    const b = { id: msg.id, files: [...new Set(paths(msg.files))], deleted: [...new Set(paths(msg.deleted))] }
    b.existed = new Set([...b.files, ...b.deleted].filter((p) => fs.existsSync(p)))
    filter.hold([...b.files, ...b.deleted])
    holds.set(b.id, b)
    say({ vitehost: 'held', id: b.id })
  }

  async function commit(msg) {
    const b = holds.get(msg.id)
    if (!b) {
      say({ vitehost: 'batch', id: msg.id, batch: { incomplete: true } })
      return
    }
    holds.delete(b.id)
    filter.land([...b.files, ...b.deleted])
    if (b.abandoned) {
      await handle(b, { quiet: true })
      return
    }
    let giveUp
    const gaveUp = new Promise((resolve) => (giveUp = resolve))
    handling = { id: b.id, giveUp }
    try {
      const result = await handle(b, { gaveUp })
      lastErrors = new Set((result.errors || []).map(errorKey))
      say(fitLine({ vitehost: 'batch', id: b.id, batch: result }))
    } finally {
      handling = null
    }
  }

  // abandon is the word of a commit's writer that it no longer waits for
  // the outcome (its deadline passed): a plugin of the project's whose
  // hook never returns, in Vite's HMR step or in a transform of the
  // outcome's, then holds neither the batches after it, one at a time for
  // the life of the dev server, nor their HMR steps. A commit still in
  // the queue is handled as a release.
  function abandon(id) {
    const b = holds.get(id)
    if (b) b.abandoned = true
    else if (handling && handling.id === id) handling.giveUp()
  }

  // release ends the hold of a batch whose writer gave up (a failed write,
  // a caller gone): Vite handles its files as they are on disk now, in
  // order with the commits, and nobody waits for an outcome, so none is
  // computed or sent.
  async function release(msg) {
    const b = holds.get(msg.id)
    if (!b) return
    holds.delete(b.id)
    filter.land([...b.files, ...b.deleted])
    await handle(b, { quiet: true })
  }

  // handle has Vite handle the files of b, which are on disk now, and
  // returns what it did; quiet leaves out the compile errors of modules
  // the pages have not asked for (a released batch reports nothing). It
  // returns what it has, incomplete, once gaveUp resolves.
  async function handle(b, { quiet = false, gaveUp = new Promise(() => {}) } = {}) {
    const result = { updates: [], fullReload: false, reloadPath: '', restarted: false, errors: [], incomplete: false }
    const d = dev
    if (!d || stopping()) {
      result.incomplete = true
      return result
    }
    const s = d.s
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
    if (wait) current = cur
    for (const [kind, p] of events) {
      d.emit(kind, p)
      d.emit('all', kind, p)
    }
    if (wait) {
      checkBatch()
      const timer = setTimeout(() => {
        result.incomplete = true
        cur.done()
      }, batchTimeout)
      gaveUp.then(() => {
        result.incomplete = true
        // Steps that outlived the batch are not waited for again.
        inflight = 0
        cur.done()
      })
      await finished
      clearTimeout(timer)
      current = null
      flush(d, cur.payloads, result)
    }
    if (result.restarted) {
      result.fullReload = true
      result.reloadPath = '*'
      return result
    }
    if (quiet) return result
    const seen = new Set(result.errors.map(errorKey))
    const errors = await Promise.race([compileErrors(s, b), gaveUp.then(() => null)])
    if (errors === null) {
      result.incomplete = true
      return result
    }
    for (const e of errors) {
      if (result.errors.length >= maxErrors) break
      if (!seen.has(errorKey(e))) {
        seen.add(errorKey(e))
        result.errors.push(e)
      }
    }
    return result
  }

  // flush sends the browsers what Vite sent them during the batch, as one
  // message, and records it in result.
  function flush(d, payloads, result) {
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
      d.send(reload)
    } else if (updates.size > 0) {
      result.updates = [...updates.values()].map((u) => ({ type: u.type, path: u.path, acceptedPath: u.acceptedPath, timestamp: u.timestamp }))
      d.send({ type: 'update', updates: [...updates.values()] })
    }
    for (const p of rest) {
      if (p.type === 'error' && p.err && result.errors.length < maxErrors) result.errors.push(files.compileError(p.err))
      d.send(p)
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
          errors.push(files.compileError(err))
          return
        }
        for (const dep of mod.importedModules) if (inBatch.has(dep.file) || !dep.transformResult) visit(dep)
      }))
    }
    return errors
  }

  // observe reports a message for the browsers that no batch caused: an
  // edit by other means, a compile error found by a page's request.
  function observe(payload) {
    if (payload.type === 'update') {
      const updates = (payload.updates || []).map((u) => ({ type: u.type, path: u.path, acceptedPath: u.acceptedPath, timestamp: u.timestamp }))
      say(fitLine({ vitehost: 'event', event: { type: 'hmr', updates } }))
    } else if (payload.type === 'full-reload') {
      say({ vitehost: 'event', event: { type: 'hmr', fullReload: true, reloadPath: clip(payload.path || '*', 1000) } })
    } else if (payload.type === 'error' && payload.err) {
      // A page's request for a module that the last batch's outcome already
      // reported broken is no news.
      const e = files.compileError(payload.err)
      if (!lastErrors.has(errorKey(e))) say(fitLine({ vitehost: 'event', event: { type: 'compile-error', error: e } }))
    }
  }

  // intercept keeps back the messages of the batch under way, and reports
  // the others.
  function intercept(payload) {
    if (current && (payload.type === 'update' || payload.type === 'full-reload' || payload.type === 'error')) {
      current.payloads.push(payload)
      return true
    }
    observe(payload)
    return false
  }

  function attach(s, { onWatcherError, onSocket } = {}) {
    inflight = 0 // HMR steps of the old server never finish
    const w = s.watcher ? patchWatcher(s.watcher, filter.drop) : null
    if (w && w.patched && onWatcherError) s.watcher.on('error', onWatcherError)
    const ws = s.ws ? patchSend(s.ws, intercept) : null
    if (ws && ws.patched && onSocket) onSocket(s.ws, s)
    dev = {
      s,
      emit: w ? w.emit : (...args) => s.watcher.emit(...args),
      send: ws ? ws.send : (p) => s.ws.send(p),
    }
    checkBatch()
  }

  return {
    input,
    attach,
    started(file) {
      inflight++
      if (current) current.waiting.delete(path.resolve(file))
    },
    ended() {
      inflight = Math.max(0, inflight - 1)
      checkBatch()
    },
  }
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

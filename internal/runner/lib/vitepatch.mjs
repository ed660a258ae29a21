// The runner's patches of Vite's internals: Vite has no API for what a
// batch needs (to hear of a set of files as one change, to know when Vite
// is done with them, to send the pages one message), so the runner wraps
// the objects Vite hands its plugins. Each patch is idempotent per object
// (a Symbol marks it) and keeps the original for the runner's own calls.
//
// Vite's handling, for reference (vitejs/vite, packages/vite/src/node/server/):
// index.ts registers watcher.on('change'|'add'|'unlink', ...) listeners that
// call onHMRUpdate -> handleHMRUpdate (hmr.ts) for one file each, and
// handleHMRUpdate ends in updateModules, which calls hot.send({type:
// 'update'|'full-reload', ...}) for that file alone. Several files written
// at once are several HMR steps, each computed on the disk of its moment:
// https://github.com/vitejs/vite/pull/16222 (a checkout's change event
// handled before its add and unlink; Vite closed it without a fix) and
// https://github.com/vitejs/vite/issues/10118 (duplicated modules after
// fast successive changes) are the races that follow.

const originalEmit = Symbol('vitehost.emit')
const originalSend = Symbol('vitehost.send')
const wrappedHotUpdateEnvironments = Symbol('vitehost.hotUpdateEnvironments')
const wrappedLogger = Symbol('vitehost.wrappedLogger')

// patchWatcher makes the file watcher (chokidar's FSWatcher, which Vite
// creates in server/index.ts and hands to plugins as server.watcher) skip
// the events that drop(kind, file) reports, for Vite's listeners and every
// plugin's alike: chokidar calls emit for each event, 'all' included, and
// no listener of Vite's can be removed and re-added in order. It returns
// emit(event, ...args), which reaches the listeners unfiltered, and whether
// this call patched w (false: an earlier one did).
export function patchWatcher(w, drop) {
  const patched = !w[originalEmit]
  if (patched) {
    const emit = w.emit
    w[originalEmit] = emit.bind(w)
    w.emit = function (event, ...args) {
      const kind = event === 'all' ? args[0] : event
      const file = event === 'all' ? args[1] : args[0]
      if (typeof file === 'string' && drop(kind, file)) return false
      return emit.call(this, event, ...args)
    }
  }
  return { emit: w[originalEmit], patched }
}

// patchSend routes what Vite sends the pages on its WebSocket (server.ws,
// whose send updateModules in server/hmr.ts calls for each HMR step)
// through intercept(payload), which returns true for a payload it keeps
// back. It returns the original send, bound to ws, for the payloads sent
// later, and whether this call patched ws.
export function patchSend(ws, intercept) {
  const patched = !ws[originalSend]
  if (patched) {
    const send = ws.send
    ws[originalSend] = send
    ws.send = function (...args) {
      const payload = typeof args[0] === 'object' && args[0] !== null ? args[0] : null
      if (payload && intercept(payload)) return
      return send.apply(this, args)
    }
  }
  const send = ws[originalSend]
  return { send: (payload) => send.call(ws, payload), patched }
}

// wrapHotUpdateEnvironments wraps the server.hotUpdateEnvironments option
// of a resolved config (Vite 6+, experimental) so that ended() runs after
// each HMR step: handleHMRUpdate in server/hmr.ts awaits it as the step's
// last act, after every environment's updateModules, with the default
// that runs all environments in parallel written out here.
export function wrapHotUpdateEnvironments(config, ended) {
  const inner = config.server.hotUpdateEnvironments
  if (inner && inner[wrappedHotUpdateEnvironments]) return
  const wrapped = async (server, hmr) => {
    try {
      if (inner) await inner(server, hmr)
      else await Promise.all(Object.values(server.environments).map((env) => hmr(env)))
    } finally {
      ended()
    }
  }
  wrapped[wrappedHotUpdateEnvironments] = true
  config.server.hotUpdateEnvironments = wrapped
}

// legacyHMRPlugins follow Vite 4's and 5's HMR step, as the hotUpdate hook
// and hotUpdateEnvironments do on Vite 6 and later: the first
// handleHotUpdate hook calls started(file), and the last one ended() after
// the update that Vite sends right after the hooks (handleHMRUpdate in
// Vite 5's server/hmr.ts runs updateModules in the same task once the last
// hook has resolved).
export function legacyHMRPlugins(started, ended) {
  return [
    {
      name: 'vitehost:hmr-pre',
      enforce: 'pre',
      handleHotUpdate: {
        order: 'pre',
        handler(ctx) {
          started(ctx.file)
        },
      },
    },
    {
      name: 'vitehost:hmr-post',
      enforce: 'post',
      handleHotUpdate: {
        order: 'post',
        handler() {
          setImmediate(ended)
        },
      },
    },
  ]
}

// watcherErrors returns report(err), which reports a file watcher that the
// kernel refused: inotify instances (EMFILE) or watches (ENOSPC) of the
// user are used up. Without a watcher, edits on disk reach no page,
// silently; the Go side fails the session instead. Other errors of the
// watcher are chokidar's to log. The first report is enough.
export function watcherErrors(say) {
  let reported = false
  return (err) => {
    const code = err && err.code
    if ((code !== 'EMFILE' && code !== 'ENOSPC') || reported) return
    reported = true
    say({ vitehost: 'event', event: { type: 'watcher-error', code, message: String(err.message || err).slice(0, 300) } })
  }
}

// watchLoggedErrors finds the watcher's errors in what Vite logs: Vite
// makes its watcher, which starts watching at once, before any hook but
// configResolved sees the server, so that the errors of the first watches
// reach only Vite's own listener, watcher.on('error', ...) in
// server/index.ts, which logs "file watcher error: ..." (Vite 5 to 8).
// Later ones reach the runner's own listener on the watcher.
export function watchLoggedErrors(logger, report) {
  if (!logger || typeof logger.error !== 'function' || logger[wrappedLogger]) return
  const error = logger.error
  logger[wrappedLogger] = true
  logger.error = function (msg, ...rest) {
    const m = /file watcher error: (EMFILE|ENOSPC)\b/.exec(String(msg).replace(/\x1b\[[0-9;]*m/g, ''))
    if (m) report({ code: m[1], message: String(msg) })
    return error.call(this, msg, ...rest)
  }
}

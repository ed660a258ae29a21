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
//
// The concerns are modules of lib/, shared with astro.mjs and the Nuxt
// layer where they do the same: protocol (stdout lines, stdin), resolve
// (the project's packages), hmr (the WebSocket's listener and path, the
// stop), batch and watchfilter (the batches), vitepatch (the patches of
// Vite's internals), report and clienterrors (errors in the Go side's
// terms), sourcemap, optimized and warm. This file wires them into one
// dev server; what several concerns need is passed to them, never shared
// through module-level state.

import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import process from 'node:process'
import { batcher } from './lib/batch.mjs'
import { clientErrorReporter, clientErrorsHooks } from './lib/clienterrors.mjs'
import { hmrListener, hmrSubpath, listen, onStop, portInUse, wsOptionKey } from './lib/hmr.mjs'
import { linkOptimizedMaps, skipOptimizedDeps } from './lib/optimized.mjs'
import { fail, readLines, say } from './lib/protocol.mjs'
import { reporter } from './lib/report.mjs'
import { importModule, loadPlugins, packageVersion } from './lib/resolve.mjs'
import { legacyHMRPlugins, watcherErrors, watchLoggedErrors, wrapHotUpdateEnvironments } from './lib/vitepatch.mjs'
import { warm, warmClient } from './lib/warm.mjs'

const projectDir = path.resolve(process.argv[2] || '.')
const who = 'vitehost runner'

async function main() {
  // What the stop closes: the dev server and the listeners, once made.
  const run = { server: null, hmrServer: null, httpServer: null }
  const stop = onStop(async () => {
    if (run.server) await run.server.close()
  }, () => [run.httpServer, run.hmrServer])

  let vite
  try {
    vite = await importModule('vite', projectDir)
  } catch (err) {
    fail(who, err, 'VITE_NOT_FOUND')
  }
  const version = vite.version || packageVersion('vite', projectDir)
  say({ vitehost: 'loaded', version })

  const input = readLines(process.stdin, stop)
  let line = await input.next()
  if (line === null) return
  let cfg = JSON.parse(line)
  if (cfg.warm) {
    await warm(vite, cfg.warm, projectDir)
    say({ vitehost: 'warmed', version })
    line = await input.next()
    if (line === null) return
    cfg = JSON.parse(line)
    // The real project may have been mounted over the directory the
    // warm-up ran in (a sandbox's disk): the working directory still
    // holds the one below, where the project's code must not write.
    process.chdir(projectDir)
  }
  const files = reporter(projectDir)
  const batches = batcher({ projectDir, files, stopping: stop.stopping })
  input.handle(batches.input)
  const clientErrors = !!cfg.clientErrors
  const reportClientError = clientErrors ? clientErrorReporter(files) : null
  const watcherError = watcherErrors(say)

  const sockets = cfg.listen
  run.hmrServer = await listen(hmrListener(), sockets ? { fd: sockets.hmr } : { host: cfg.hmrHost, port: cfg.hmrPort })
  const wsKey = wsOptionKey(version)
  const client = cfg.client || {}
  const wsOptions = {
    server: run.hmrServer,
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
      // handled when no step is under way (batch.mjs).
      wrapHotUpdateEnvironments(config, batches.ended)
      watchLoggedErrors(config.logger, watcherError)
    },
    hotUpdate: {
      // First, so that a plugin that throws in its own hook cannot keep
      // the batch waiting for this file.
      order: 'pre',
      handler(options) {
        if (this.environment && this.environment.name !== 'client') return
        batches.started(options.file)
      },
    },
    configureServer(s) {
      batches.attach(s, {
        onWatcherError: watcherError,
        onSocket: clientErrors ? (ws) => ws.on('vitehost:error', (data, c) => reportClientError(s, data, c)) : undefined,
      })
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
  vitehostPlugin.config = skipOptimizedDeps(projectDir)
  inline.plugins = [...(await loadPlugins(cfg.plugins, projectDir)), vitehostPlugin, linkOptimizedMaps()]
  if (parseInt(version, 10) < 6) inline.plugins.push(...legacyHMRPlugins(batches.started, batches.ended))

  try {
    run.server = await vite.createServer(inline)
    if (sockets) {
      // Vite keeps server.middlewares the same object across its own
      // restarts (a config file edit), so this server follows them.
      run.httpServer = await listen(http.createServer(run.server.middlewares), { fd: sockets.http })
    } else {
      await run.server.listen()
    }
  } catch (err) {
    throw portInUse(err)
  }
  if (stop.stopping()) return
  warmClient(run.server)
  ready = true
  if (sockets) {
    say({ vitehost: 'ready', unix: true, version, token: run.server.config.webSocketToken })
    return
  }
  say({
    vitehost: 'ready',
    port: run.server.httpServer.address().port,
    hmrPort: run.hmrServer.address().port,
    version,
    token: run.server.config.webSocketToken,
  })
}

main().catch((err) => fail(who, err))

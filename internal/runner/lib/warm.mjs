// A spare runner's warm-up: before its project is known, the runner starts
// Vite on what the project directory holds then (the template), loads its
// page and every module that imports, and closes that server, so that
// Vite's code is compiled and its caches filled for the next server of the
// process. A first page load in a fresh process is several times slower
// than in one whose Vite has served once.
//
// This is not preview/warm.go's job done twice: that one loads a live
// session's modules through its dev server's socket, from the Go side; this
// one runs before there is a session, on a server that listens on the
// sandbox's own loopback, which nothing outside the sandbox reaches, and
// that exists only for the warm-up.
//
// warmClient is the one piece of warming that every start does: Vite's
// client, transformed as the dev server starts.

import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { listen } from './hmr.mjs'
import { skipOptimizedDeps } from './optimized.mjs'
import { loadPlugins } from './resolve.mjs'

// warmClient has the dev server s transform Vite's client, without
// waiting: every page of a dev server loads it, no module imports it (so
// Vite's pre-transform of static imports never reaches it), and the Go
// side's warm-up leaves it to Vite (preview/warm.go's packageModule),
// whose source map of it costs more at each send than its transform. The
// page's request then finds it transformed, and its import (Vite's env
// module) too. Vite 4 has no warmupRequest; its page pays the transform.
export function warmClient(s) {
  const client = s.environments?.client
  if (client?.warmupRequest) client.warmupRequest('/@vite/client')
  else if (s.warmupRequest) s.warmupRequest('/@vite/client')
}

// maxWarmModules bounds the modules a warm-up loads (as preview/warm.go's
// constant of the same name).
const maxWarmModules = 300

// warmPlugin stands in, in a spare's warm-up, for the vitehost plugin of
// the project's server: Vite's optimized-dependency cache is keyed by the
// plugins' names, and a warm-up without it found the template's optimized
// dependencies stale and optimized them again (a second of CPU, and the
// optimizer's memory kept by the spare).
function warmPlugin(projectDir) {
  return { name: 'vitehost', config: skipOptimizedDeps(projectDir) }
}

// warm starts Vite (the module vite) with the config w, {config, plugins,
// configFile, modules}, on what projectDir holds, loads its page and every
// module it imports over loopback, and closes it.
export async function warm(vite, w, projectDir) {
  const root = projectDir
  const ours = {
    root,
    configFile: w.configFile === null ? undefined : w.configFile,
    logLevel: 'silent',
    server: { middlewareMode: true, ws: false },
  }
  if (w.modules) {
    ours.server.fs = { allow: [root, w.modules] } // as for the project (runner.mjs)
    try {
      fs.mkdirSync(path.join(projectDir, 'node_modules'), { recursive: true })
    } catch {}
  }
  const inline = vite.mergeConfig(w.config || {}, ours)
  inline.plugins = [...(await loadPlugins(w.plugins, projectDir)), warmPlugin(projectDir)]
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
      for (const spec of importsOf(p === '/', body)) {
        if (!seen.has(spec)) {
          seen.add(spec)
          queue.push(spec)
        }
      }
    }
  } finally {
    await s.close()
    h.closeAllConnections()
    h.close()
  }
}

// importsOf returns the root-relative URLs that a page (html) or a module
// as Vite serves it loads.
export function importsOf(html, body) {
  const specs = html ? body.matchAll(/<script[^>]*\ssrc=["']([^"']+)["']/g) : body.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\/[^"'\s]+)["']/g)
  const out = []
  for (const m of specs) if (m[1].startsWith('/') && !m[1].startsWith('//')) out.push(m[1])
  return out
}

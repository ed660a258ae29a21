'use strict'
// Runs pnpm's bundle from a V8 code cache:
//
//   node pnpmcode.cjs <pnpm's package directory> <cache file> <pnpm's arguments...>
//
// pnpm is one 8 MB script (dist/pnpm.cjs) that Node compiles at every run:
// 0.25 s of a 1 s install here. Node 22 caches compiled modules itself
// (module.enableCompileCache, which pnpm's bin calls); Node 20 has no such
// API, and the bin's fallback, require('v8-compile-cache'), fails there: the
// package is bundled in dist/node_modules, out of the bin's reach.
//
// The cache is written at the exit of a run that found none, or found it
// rejected (V8 checks its own version and flags and the source's length),
// so that it holds the functions the run compiled, not just the top level:
// of a run that succeeded, which went through the whole install (a refused
// set stops early).
// The file is pnpm's, one per pnpm version (it lives in the version's
// directory, which never changes once installed), and only this service
// writes it: written whole, then renamed, so that runs at once read either
// none or all of it.
const fs = require('node:fs')
const path = require('node:path')
const vm = require('node:vm')
const Module = require('node:module')

const [pkg, cacheFile] = process.argv.splice(2, 2)
const file = path.join(pkg, 'dist', 'pnpm.cjs')
// As when pnpm's bin is started: pnpm reads its package.json beside
// require.main (../package.json) and gives scripts require.main's file as
// npm_execpath.
module.filename = process.argv[1] = path.join(pkg, 'bin', 'pnpm.cjs')

let cachedData
try {
  cachedData = fs.readFileSync(cacheFile)
} catch {}
const script = new vm.Script(Module.wrap(fs.readFileSync(file, 'utf8')), {
  filename: file,
  cachedData,
  // import() as in a module Node loads. The constant came in Node 20.12;
  // before it, an import() would fail, and pnpm 10's bundle has none.
  importModuleDynamically: vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER,
})
if (cachedData === undefined || script.cachedDataRejected) {
  process.once('exit', (code) => {
    if (code !== 0) return
    const tmp = `${cacheFile}.${process.pid}.tmp`
    try {
      fs.writeFileSync(tmp, script.createCachedData())
      fs.renameSync(tmp, cacheFile)
    } catch {
      try {
        fs.rmSync(tmp, { force: true })
      } catch {}
    }
  })
}

const m = new Module(file, module)
m.filename = file
// What pnpm's bin sets before it loads the bundle: the start of "Done in".
globalThis.pnpm__startedAt = Date.now()
script.runInThisContext().call(m.exports, m.exports, Module.createRequire(file), m, file, path.dirname(file))

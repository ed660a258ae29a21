// How the optimized dependencies are served (issue 23): outside the refresh
// transform, and without a source map inlined into each.
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

import fs from 'node:fs'
import path from 'node:path'

// skipOptimizedDeps returns the config hook, for the project in
// projectDir, that adds the cacheDir to the refresh filter's exclusions
// when a plugin set the filter: setting an exclusion alone would make the
// filter match every other file.
export function skipOptimizedDeps(projectDir) {
  return (config) => {
    const oxc = config.oxc
    if (!oxc || typeof oxc !== 'object' || !oxc.jsxRefreshInclude || !config.cacheDir) return
    const dir = path.resolve(config.root ? path.resolve(projectDir, config.root) : projectDir, config.cacheDir)
    if (dir.split(path.sep).includes('node_modules')) return
    const escaped = dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    return { oxc: { jsxRefreshExclude: [new RegExp('^' + escaped + '/')] } }
  }
}

// linkOptimizedMaps returns the plugin that sends each optimized
// dependency with a link to the optimizer's source map beside it, instead
// of a map inlined into every answer. Vite's send() inlines the module's
// map as base64, or, when the file carries no map (Vite 8's optimizer
// writes the .map without the comment), makes a map of the file onto
// itself with its whole text in it
// (https://github.com/vitejs/vite/pull/13514): react-dom's 0.9 MB chunk
// went out as 3.1 MB, and making that cost each dev server about 0.1 s on
// every page's first load. A map of { mappings: '' } tells send() to add
// none; the comment points the browser's devtools at the optimizer's own
// map, which Vite serves from the deps directory when asked (its
// transform middleware, for a .map of an optimized dependency).
export function linkOptimizedMaps() {
  let depsDir = null
  return {
    name: 'vitehost:optimized-maps',
    apply: 'serve',
    configResolved(config) {
      if (config.cacheDir) depsDir = path.join(config.cacheDir, 'deps') + path.sep
    },
    transform(code, id) {
      if (!depsDir) return
      const file = id.split('?', 1)[0]
      if (!file.startsWith(depsDir) || !file.endsWith('.js')) return
      const map = file + '.map'
      if (!fs.existsSync(map)) return
      // Vite 4 to 7 keep esbuild's own comment in the code they load.
      const link = '//# sourceMappingURL=' + path.basename(map)
      return { code: code.includes(link) ? code : code + '\n' + link + '\n', map: { mappings: '' } }
    },
  }
}

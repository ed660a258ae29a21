// Optimized dependencies outside the refresh transform (issue 23).
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

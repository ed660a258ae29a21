// The optimized dependencies' source maps linked, not inlined
// (lib/optimized.mjs), on real files.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { linkOptimizedMaps } from '../lib/optimized.mjs'

let dir
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitehost-optimized-'))
  fs.mkdirSync(path.join(dir, '.vite-cache', 'deps'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'src'))
})
after(() => fs.rmSync(dir, { recursive: true, force: true }))

function plugin() {
  const p = linkOptimizedMaps()
  p.configResolved({ cacheDir: path.join(dir, '.vite-cache') })
  return p
}

test('an optimized dependency with a map beside it links the map and asks for none inline', () => {
  const file = path.join(dir, '.vite-cache', 'deps', 'react-dom_client.js')
  fs.writeFileSync(file, 'export default 1\n')
  fs.writeFileSync(file + '.map', '{"version":3,"sources":["x"],"mappings":"AAAA"}')
  const out = plugin().transform('export default 1\n', file + '?v=1234abcd')
  assert.deepEqual(out.map, { mappings: '' })
  assert.equal(out.code, 'export default 1\n\n//# sourceMappingURL=react-dom_client.js.map\n')
})

test('a dependency that links its map already keeps that one link', () => {
  const file = path.join(dir, '.vite-cache', 'deps', 'chunk-linked.js')
  fs.writeFileSync(file + '.map', '{"version":3,"sources":["x"],"mappings":"AAAA"}')
  const code = 'export {}\n//# sourceMappingURL=chunk-linked.js.map\n'
  const out = plugin().transform(code, file)
  assert.deepEqual(out.map, { mappings: '' })
  assert.equal(out.code, code)
})

test('other modules, and a dependency without a map, are left alone', () => {
  const p = plugin()
  const nomap = path.join(dir, '.vite-cache', 'deps', 'chunk-nomap.js')
  fs.writeFileSync(nomap, 'export {}\n')
  assert.equal(p.transform('export {}\n', nomap), undefined)
  const own = path.join(dir, 'src', 'App.js')
  fs.writeFileSync(own, 'export {}\n')
  fs.writeFileSync(own + '.map', '{}')
  assert.equal(p.transform('export {}\n', own), undefined)
  assert.equal(p.transform('{}', path.join(dir, '.vite-cache', 'deps', '_metadata.json')), undefined)
  assert.equal(linkOptimizedMaps().transform('export {}\n', nomap), undefined, 'before the config is known')
})

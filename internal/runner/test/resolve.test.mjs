// The runner's package resolution against Node's own: fixture packages
// with overlapping patterns, conditions in several orders, arrays, null
// targets and legacy mains, each resolved by the runner and by Node's
// import.meta.resolve from a module in the same directory.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { exportsResolve, patternKeyCompare, resolvePackage } from '../lib/resolve.mjs'

let root
let nodeResolve
let conditions

// The fixture: package name -> {package.json fields, files to create}.
const packages = {
  over: {
    exports: {
      './*': './all/*.js',
      './a/*': './a/*.js',
      './a/b/*': './ab/*.js',
      './a/*.css': './css/*.css',
      './x': './x.js',
      './feat/*.js': './f/*.js',
      './feat/*': './g/*.js',
      './private/*': null,
      './gone/*': './gone/*.js',
    },
    files: ['all/z.js', 'all/a/q.js', 'a/c.js', 'a/b/c.js', 'ab/c.js', 'css/k.css', 'a/k.css.js', 'x.js', 'f/k.js', 'g/k.js', 'g/k.js.js', 'all/private/q.js'],
  },
  cond: {
    exports: {
      '.': { require: './r.js', import: { browser: './b.js', node: './n.js' }, default: './d.js' },
      './sub': [{ worker: './w.js' }, './s.js'],
      './only-require': { require: './r.js' },
      './def': { default: './d.js', import: './i.js' },
      './nested/*': { node: { import: './ni/*.js', require: './nr/*.js' }, default: './nd/*.js' },
      './sync': { 'module-sync': './sync.js', default: './d.js' },
    },
    files: ['r.js', 'b.js', 'n.js', 'd.js', 'w.js', 's.js', 'i.js', 'ni/x.js', 'nr/x.js', 'nd/x.js', 'sync.js'],
  },
  sugar: { exports: './main.js', files: ['main.js', 'other.js'] },
  sugarcond: { exports: { import: './m.mjs', default: './m.cjs' }, files: ['m.mjs', 'm.cjs'] },
  legacy: { main: 'lib/main', files: ['lib/main.js', 'lib/other.js'] },
  legacydir: { main: 'lib', files: ['lib/index.js'] },
  nomain: { files: ['index.js'] },
  nullexports: { exports: null, main: 'm.js', files: ['m.js'] },
  '@s/p': { exports: { './*': { import: './esm/*.mjs' }, '.': './esm/index.mjs' }, files: ['esm/index.mjs', 'esm/deep/x.mjs'] },
}

const specs = [
  'over/x', 'over/z', 'over/a/c', 'over/a/b/c', 'over/a/q', 'over/a/k.css', 'over/feat/k.js', 'over/feat/k', 'over/private/q',
  'over/gone/q', 'over', 'over/a/../x',
  'cond', 'cond/sub', 'cond/only-require', 'cond/def', 'cond/nested/x', 'cond/sync', 'cond/missing',
  'sugar', 'sugar/other.js', 'sugarcond',
  'legacy', 'legacy/lib/other.js', 'legacydir', 'nomain', 'nullexports',
  '@s/p', '@s/p/deep/x',
]

before(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'vitehost-resolve-'))
  for (const [name, p] of Object.entries(packages)) {
    const dir = path.join(root, 'node_modules', name)
    const pkg = { name, version: '1.0.0', type: 'module' }
    if ('exports' in p) pkg.exports = p.exports
    if (p.main) pkg.main = p.main
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg))
    for (const f of p.files) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true })
      fs.writeFileSync(path.join(dir, f), 'export default 1\n')
    }
  }
  // Node's answer, from a module in a directory below the fixture's root
  // (the node_modules lookup walks up).
  const probe = path.join(root, 'src', 'probe.mjs')
  fs.mkdirSync(path.dirname(probe))
  fs.writeFileSync(probe, 'export const resolve = (s) => import.meta.resolve(s)\n')
  nodeResolve = (await import(pathToFileURL(probe).href)).resolve
  // The conditions of this Node's import(): module-sync is one from Node
  // 22.10 on.
  conditions = fileURLToPath(nodeResolve('cond/sync')).endsWith('sync.js') ? ['node', 'import', 'module-sync'] : ['node', 'import']
})

after(() => fs.rmSync(root, { recursive: true, force: true }))

// outcome is what resolving spec gives: the file, or the error's code.
function outcome(f) {
  try {
    return f()
  } catch (err) {
    return err.code
  }
}

for (const spec of specs) {
  test(`${spec} resolves as Node resolves it`, () => {
    const want = outcome(() => fileURLToPath(nodeResolve(spec)))
    const got = outcome(() => resolvePackage(spec, path.join(root, 'src'), conditions))
    // Node checks that the file exists; the runner leaves that to import().
    if (want === 'ERR_MODULE_NOT_FOUND' && typeof got === 'string') {
      assert.equal(fs.existsSync(got), false, `${spec}: Node found no ${got}`)
      return
    }
    assert.equal(got, want)
  })
}

test('the most specific pattern wins, whatever the order of the keys', () => {
  const targets = { './*': './root/*', './a/*': './a/*', './a/b/*': './ab/*', './a/b/*.js': './abjs/*' }
  const keys = Object.keys(targets)
  const orders = [keys, [...keys].reverse(), [keys[2], keys[0], keys[3], keys[1]], [keys[1], keys[3], keys[0], keys[2]]]
  for (const order of orders) {
    const exp = Object.fromEntries(order.map((k) => [k, targets[k]]))
    assert.equal(exportsResolve('/pkg', exp, './a/b/c.js'), '/pkg/abjs/c')
    assert.equal(exportsResolve('/pkg', exp, './a/b/c'), '/pkg/ab/c')
    assert.equal(exportsResolve('/pkg', exp, './a/c'), '/pkg/a/c')
    assert.equal(exportsResolve('/pkg', exp, './c'), '/pkg/root/c')
  }
})

test('patternKeyCompare orders by the part before *, then by length', () => {
  const keys = ['./*', './a/*.js', './a/*', './a/b/*', './*.js']
  assert.deepEqual(keys.sort(patternKeyCompare), ['./a/b/*', './a/*.js', './a/*', './*.js', './*'])
})

test('exports that mix subpaths and conditions are invalid', () => {
  assert.throws(() => exportsResolve('/pkg', { '.': './a.js', import: './b.js' }, '.'), { code: 'ERR_INVALID_PACKAGE_CONFIG' })
})

test('a pattern match may not step out of the package', () => {
  assert.throws(() => exportsResolve('/pkg', { './*': './lib/*' }, './x/../../y'), { code: 'ERR_INVALID_MODULE_SPECIFIER' })
  assert.throws(() => exportsResolve('/pkg', { './x': '../x.js' }, './x'), { code: 'ERR_INVALID_PACKAGE_TARGET' })
})

// Errors in the Go side's terms (lib/report.mjs), the client reports'
// budget (lib/clienterrors.mjs) and the warm-up's import scan
// (lib/warm.mjs).

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { reportBudget } from '../lib/clienterrors.mjs'
import { errorKey, reporter } from '../lib/report.mjs'
import { importsOf } from '../lib/warm.mjs'

const files = reporter('/srv/p')

test('errors name project files relative to the project, dependencies from node_modules/', () => {
  const e = files.compileError({
    message: '\x1b[31m/srv/p/src/App.tsx: Unexpected token\x1b[39m in /home/u/.cache/deps/node_modules/react/index.js',
    id: '/srv/p/src/App.tsx?v=123',
    loc: { line: 3, column: 7 },
    frame: '1 | x\n  | ^',
    plugin: 'vite:oxc',
  })
  assert.deepEqual(e, {
    message: 'src/App.tsx: Unexpected token in node_modules/react/index.js',
    file: 'src/App.tsx',
    line: 3,
    column: 7,
    frame: '1 | x\n  | ^',
    plugin: 'vite:oxc',
  })
  assert.equal(errorKey(e), 'src/App.tsx:3:7:src/App.tsx: Unexpected token in node_modules/react/index.js')
})

test('a position found only in the message is taken from there', () => {
  const e = files.compileError({ message: '  ╭─[ src/main.ts:12:5 ]' })
  assert.equal(e.file, 'main.ts') // not a path under the project: its name only
  assert.equal(e.line, 12)
  assert.equal(e.column, 5)
})

test('files outside the project and its dependencies are not public', () => {
  assert.equal(files.publicFile('/srv/p/src/a.ts?import'), 'src/a.ts')
  assert.equal(files.publicFile('/x/node_modules/vue/index.js'), 'node_modules/vue/index.js')
  assert.equal(files.publicFile('/etc/passwd'), null)
  assert.equal(files.publicFile('/srv/pother/a.ts'), null)
})

test('each client has a budget of reports of its own', () => {
  let now = 0
  const take = reportBudget(() => now)
  const a = {}
  const b = {}
  let n = 0
  while (take(a)) n++
  assert.equal(n, 30, 'a burst of 30')
  assert.equal(take(b), true, 'another socket is not held back')
  now += 1000
  assert.equal(take(a), true)
  assert.equal(take(a), true)
  assert.equal(take(a), true)
  assert.equal(take(a), false, '3 a second after the burst')
})

test('the warm-up follows module scripts of the page and root-relative imports', () => {
  const page = '<script type="module" src="/@vite/client"></script><script src="//cdn/x.js"></script><script type="module" src="/src/main.tsx"></script>'
  assert.deepEqual(importsOf(true, page), ['/@vite/client', '/src/main.tsx'])
  const mod = 'import a from "/node_modules/.vite/deps/react.js?v=1"\nimport "/src/a.css"\nconst l = import("/src/lazy.tsx")\nimport x from "https://x/y.js"\nexport { b } from \'/src/b.ts\''
  assert.deepEqual(importsOf(false, mod), ['/node_modules/.vite/deps/react.js?v=1', '/src/a.css', '/src/lazy.tsx', '/src/b.ts'])
})

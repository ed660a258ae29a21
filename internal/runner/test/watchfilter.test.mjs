// The watcher filter of the batches (lib/watchfilter.mjs) on real files.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { watchFilter } from '../lib/watchfilter.mjs'

let dir
before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vitehost-watch-'))))
after(() => fs.rmSync(dir, { recursive: true, force: true }))

function file(name, data) {
  const p = path.join(dir, name)
  if (data === undefined) fs.rmSync(p, { force: true })
  else fs.writeFileSync(p, data)
  return p
}

test('a held file drops the file events, and no others', () => {
  const f = watchFilter()
  const p = file('held.js', 'a')
  f.hold([p])
  for (const kind of ['add', 'change', 'unlink']) assert.equal(f.drop(kind, p), true, kind)
  assert.equal(f.drop('addDir', p), false)
  assert.equal(f.drop('change', file('other.js', 'b')), false)
  // The watcher's path may be unclean.
  assert.equal(f.drop('change', path.join(dir, 'x', '..', 'held.js')), true)
})

test('a landed file drops the echo until it changes, then never again', () => {
  const f = watchFilter()
  const p = file('landed.js', 'one')
  f.hold([p])
  f.land([p])
  assert.equal(f.drop('change', p), true, 'the echo of the batch write')
  assert.equal(f.drop('change', p), true, 'a second echo')
  file('landed.js', 'two, by an editor')
  assert.equal(f.drop('change', p), false)
  file('landed.js', 'one') // as the batch left it, but written again
  assert.equal(f.drop('change', p), false, 'forgotten once changed')
})

test('a deleted file drops the unlink echo, and a new file at its path goes through', () => {
  const f = watchFilter()
  const p = file('deleted.js', 'x')
  f.hold([p])
  file('deleted.js')
  f.land([p])
  assert.equal(f.drop('unlink', p), true)
  file('deleted.js', 'back')
  assert.equal(f.drop('add', p), false)
})

test('a file held by two batches stays held until both landed', () => {
  const f = watchFilter()
  const p = file('twice.js', 'a')
  f.hold([p])
  f.hold([p])
  f.land([p])
  file('twice.js', 'written by the second batch')
  assert.equal(f.drop('change', p), true, 'still held by the second')
  f.land([p])
  assert.equal(f.drop('change', p), true)
})

test('the landed states kept are bounded, oldest forgotten first', () => {
  const f = watchFilter(2)
  const ps = ['l1.js', 'l2.js', 'l3.js'].map((n) => file(n, n))
  for (const p of ps) {
    f.hold([p])
    f.land([p])
  }
  assert.equal(f.drop('change', ps[0]), false)
  assert.equal(f.drop('change', ps[1]), true)
  assert.equal(f.drop('change', ps[2]), true)
})

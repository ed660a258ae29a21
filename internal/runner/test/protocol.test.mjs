// The protocol's line fitting and stdin reading (lib/protocol.mjs), and the
// HMR options (lib/hmr.mjs).

import assert from 'node:assert/strict'
import { PassThrough } from 'node:stream'
import { test } from 'node:test'
import { hmrSubpath, wsOptionKey } from '../lib/hmr.mjs'
import { clip, fitLine, maxLine, readLines } from '../lib/protocol.mjs'

const size = (msg) => Buffer.byteLength(JSON.stringify(msg))

test('a line that fits is left as it is', () => {
  const msg = { vitehost: 'batch', id: 1, batch: { updates: [{ type: 'js-update', path: '/src/a.ts' }], errors: [] } }
  const before = JSON.stringify(msg)
  assert.equal(JSON.stringify(fitLine(msg)), before)
})

test('a batch line too long for the Go side is cut to fit, and says so', () => {
  const updates = Array.from({ length: 5000 }, (_, i) => ({ type: 'js-update', path: `/src/components/c${i}.tsx`, acceptedPath: `/src/components/c${i}.tsx`, timestamp: 1 }))
  const errors = Array.from({ length: 20 }, () => ({ message: 'é'.repeat(4000), frame: 'x'.repeat(4000), file: 'a.ts', line: 1, column: 1 }))
  const msg = fitLine({ vitehost: 'batch', id: 7, batch: { updates, errors } })
  assert.ok(size(msg) <= maxLine, `${size(msg)} bytes`)
  assert.equal(msg.batch.truncated, true)
  assert.ok(msg.batch.updates.length > 0, 'the first updates are kept')
  assert.deepEqual(msg.batch.updates[0], updates[0])
})

test('an event line too long is cut to fit, multi-byte text counted in bytes', () => {
  const msg = fitLine({ vitehost: 'event', event: { type: 'client-error', message: '😀'.repeat(30000), stack: 'at x\n'.repeat(20000), page: 'p'.repeat(2000) } })
  assert.ok(size(msg) <= maxLine, `${size(msg)} bytes`)
  assert.ok(msg.event.message.length > 0)
})

test('clip cuts at n characters and marks it', () => {
  assert.equal(clip('abcdef', 3), 'abc…')
  assert.equal(clip('abc', 3), 'abc')
  assert.equal(clip(undefined, 3), '')
  assert.equal(clip(12345, 2), '12…')
})

test('stdin: the first lines are read, later ones handled, the end signalled', async () => {
  const stream = new PassThrough()
  let ended = 0
  const input = readLines(stream, () => ended++)
  stream.write('{"a":1}\n{"b"')
  assert.equal(await input.next(), '{"a":1}')
  stream.write(':2}\n{"c":3}\n')
  assert.equal(await input.next(), '{"b":2}')
  const later = []
  input.handle((l) => later.push(l))
  stream.write('{"d":4}\n')
  await new Promise((r) => setImmediate(r))
  assert.deepEqual(later, ['{"c":3}', '{"d":4}'])
  stream.end()
  await new Promise((r) => stream.once('end', r))
  assert.equal(ended, 1)
})

test('stdin: next resolves to null at the end', async () => {
  const stream = new PassThrough()
  const input = readLines(stream, () => {})
  const line = input.next()
  stream.end('partial without newline')
  assert.equal(await line, null)
})

test('hmrSubpath makes the socket path relative to the base', () => {
  assert.equal(hmrSubpath('/', '/hmr'), 'hmr')
  assert.equal(hmrSubpath('/_nuxt/', '/hmr'), '../hmr')
  assert.equal(hmrSubpath('/app/', '/app/ws/'), 'ws/')
  assert.equal(hmrSubpath('/app/', '/app/'), undefined)
  assert.equal(hmrSubpath(undefined, '/x/y'), 'x/y')
  assert.equal(hmrSubpath('/', ''), undefined)
})

test('wsOptionKey follows the rename of server.hmr in Vite 8.1', () => {
  assert.equal(wsOptionKey('5.4.0'), 'hmr')
  assert.equal(wsOptionKey('8.0.3'), 'hmr')
  assert.equal(wsOptionKey('8.1.0'), 'ws')
  assert.equal(wsOptionKey('9.0.0-beta.1'), 'ws')
  assert.equal(wsOptionKey(''), 'hmr')
})

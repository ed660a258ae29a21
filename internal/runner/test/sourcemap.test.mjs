// Source map lookup (lib/sourcemap.mjs) on maps whose segments are
// encoded here, so that the expected positions are known.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { originalOf } from '../lib/sourcemap.mjs'

const digits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

// vlq encodes one value as base64 VLQ.
function vlq(v) {
  let n = v < 0 ? (-v << 1) | 1 : v << 1
  let out = ''
  do {
    let d = n & 31
    n >>>= 5
    if (n > 0) d |= 32
    out += digits[d]
  } while (n > 0)
  return out
}

// encode returns the mappings of lines, each a list of segments
// [genColumn] or [genColumn, source, line, column], all absolute.
function encode(lines) {
  let source = 0
  let line = 0
  let column = 0
  return lines.map((segs) => {
    let gen = 0
    return segs.map((s) => {
      let out = vlq(s[0] - gen)
      gen = s[0]
      if (s.length >= 4) {
        out += vlq(s[1] - source) + vlq(s[2] - line) + vlq(s[3] - column)
        source = s[1]
        line = s[2]
        column = s[3]
      }
      return out
    }).join(',')
  }).join(';')
}

const map = {
  version: 3,
  sources: ['App.tsx', 'util.ts'],
  names: [],
  mappings: encode([
    [[0, 0, 0, 0], [10, 0, 0, 6], [30, 1, 4, 2]], // line 0
    [], // line 1: no segments
    [[4, 0, 7, 0], [12], [20, 1, 100, 3]], // line 2: an unmapped segment at 12
    [[2, 1, 2000, 70000]], // line 3: large values
  ]),
}

test('a position maps to the last segment at or before it on its line', () => {
  assert.deepEqual(originalOf(map, 0, 0), { source: 'App.tsx', line: 0, column: 0 })
  assert.deepEqual(originalOf(map, 0, 9), { source: 'App.tsx', line: 0, column: 0 })
  assert.deepEqual(originalOf(map, 0, 10), { source: 'App.tsx', line: 0, column: 6 })
  assert.deepEqual(originalOf(map, 0, 500), { source: 'util.ts', line: 4, column: 2 })
  assert.deepEqual(originalOf(map, 2, 5), { source: 'App.tsx', line: 7, column: 0 })
  assert.deepEqual(originalOf(map, 2, 25), { source: 'util.ts', line: 100, column: 3 })
  assert.deepEqual(originalOf(map, 3, 2), { source: 'util.ts', line: 2000, column: 70000 })
})

test('a position before the first segment of its line maps to nothing', () => {
  assert.equal(originalOf(map, 1, 3), null) // the previous line's segment is not this line's
  assert.equal(originalOf(map, 2, 3), null)
  assert.equal(originalOf(map, 3, 1), null)
})

test('a segment without a source maps to nothing', () => {
  assert.equal(originalOf(map, 2, 12), null)
  assert.equal(originalOf(map, 2, 19), null)
})

test('sourceRoot comes before the source', () => {
  assert.deepEqual(originalOf({ ...map, sourceRoot: '/src/' }, 0, 10), { source: '/src/App.tsx', line: 0, column: 6 })
})

test('maps that are not maps give nothing', () => {
  assert.equal(originalOf(null, 0, 0), null)
  assert.equal(originalOf({ mappings: 'AAAA' }, 0, 0), null)
  assert.equal(originalOf({ sources: ['a'], mappings: '' }, 0, 0), null)
})

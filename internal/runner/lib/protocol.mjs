// The runner's side of the protocol with package vite (Go): protocol lines
// on stdout, each one line of JSON that starts with {"vitehost":, and the
// lines of stdin. See runner.mjs for the messages.

import process from 'node:process'

// say writes msg as one protocol line; "vitehost" comes first, which the
// Go side's quick check of a line looks for.
export function say(msg) {
  process.stdout.write(JSON.stringify({ vitehost: msg.vitehost, ...msg }) + '\n')
}

// fail reports err and exits: the message goes into the error line, which
// the Go side quotes; stderr gets where it was thrown, after who (the
// runner's name in the log).
export function fail(who, err, code) {
  const message = (err && err.message) || String(err)
  code = code || (err && err.code) || 'ERROR'
  const frames = String((err && err.stack) || '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 4)
  process.stderr.write(`${who}: start failed (${code})${frames.length ? '\n' + frames.join('\n') : ''}\n`)
  say({ vitehost: 'error', code, message, port: err && err.vitehostPort })
  process.exit(1)
}

// clip returns v as a string of at most n characters (and an ellipsis).
export function clip(v, n) {
  const s = typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v)
  return s.length > n ? s.slice(0, n) + '…' : s
}

// maxLine keeps a protocol line below the Go side's limit (64 KiB).
export const maxLine = 60_000

// fitLine shortens msg, a batch or event line, until it fits in maxLine
// bytes, and returns it: fewer updates and errors, shorter stacks and
// messages, in up to four rounds.
export function fitLine(msg) {
  const size = () => Buffer.byteLength(JSON.stringify(msg))
  const b = msg.batch
  const e = msg.event
  for (let round = 0; size() > maxLine && round < 4; round++) {
    if (b) {
      b.truncated = true
      b.errors = (b.errors || []).slice(0, round < 2 ? 5 : 0).map((x) => ({ ...x, message: clip(x.message, 1000), frame: '' }))
      b.updates = (b.updates || []).slice(0, [200, 50, 10, 0][round])
    }
    if (e) {
      e.stack = clip(e.stack, [4000, 1000, 0, 0][round])
      e.message = clip(e.message, [2000, 500, 100, 100][round])
      e.page = clip(e.page, 500)
      if (e.error) e.error = { ...e.error, frame: '', message: clip(e.error.message, 500) }
      if (e.updates) e.updates = e.updates.slice(0, [200, 50, 10, 0][round])
    }
  }
  return msg
}

// maxInputLine bounds a line from stdin: a batch of a few thousand paths.
export const maxInputLine = 4 << 20

// readLines reads the lines of stream (stdin): next() resolves to the next
// line, or null at the end; handle(f) hands every later line, and those
// not yet read, to f instead. onEnd runs when the stream ends or fails
// (the Go side's stop signal).
export function readLines(stream, onEnd) {
  const lines = []
  let waiter = null
  let ended = false
  let handler = null
  let buf = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk) => {
    buf += chunk
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      if (handler) handler(line)
      else lines.push(line)
    }
    if (buf.length > maxInputLine) {
      process.stderr.write(`vitehost runner: dropped an input line of more than ${maxInputLine} bytes\n`)
      buf = ''
    }
    if (waiter && lines.length) waiter()
  })
  stream.on('end', () => {
    ended = true
    if (waiter) waiter()
    onEnd()
  })
  stream.on('error', () => onEnd())
  return {
    async next() {
      while (!lines.length && !ended) await new Promise((resolve) => (waiter = resolve))
      waiter = null
      return lines.length ? lines.shift() : null
    },
    handle(f) {
      handler = f
      while (lines.length) f(lines.shift())
    },
  }
}

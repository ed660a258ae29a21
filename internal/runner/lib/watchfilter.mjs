// Which of the file watcher's events a batch stands in for. A batch's files
// are held from the moment the Go side announces them until Vite has been
// told of them (the commit); then each is as the batch left it until
// something else writes it. The watcher's events for a file in either state
// are the batch's writes, which the batch reports to Vite itself.

import fs from 'node:fs'
import path from 'node:path'

// maxLanded bounds the files whose state after a batch is remembered for
// the watcher's late echo.
export const maxLanded = 10_000

// fileState identifies what is at p now: a rename or a write changes it.
export function fileState(p) {
  try {
    const st = fs.statSync(p, { bigint: true })
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`
  } catch {
    return 'gone'
  }
}

// watchFilter returns the filter of one runner: hold(paths) and
// land(paths) for the batches' files (absolute paths), and drop(kind,
// file) for the watcher's events.
export function watchFilter(limit = maxLanded) {
  const held = new Map() // absolute path -> number of holds that name it
  const landed = new Map() // absolute path -> its state (fileState) when a batch had Vite handle it
  return {
    // hold notes that a batch is about to write paths.
    hold(paths) {
      for (const p of paths) held.set(p, (held.get(p) || 0) + 1)
    },
    // land notes that the batch that held paths wrote them: the watcher's
    // events for them are dropped while they stay as they are now.
    land(paths) {
      for (const p of paths) {
        const n = held.get(p) - 1
        if (n > 0) held.set(p, n)
        else held.delete(p)
        landed.delete(p) // to the end of the insertion order
        landed.set(p, fileState(p))
      }
      while (landed.size > limit) landed.delete(landed.keys().next().value)
    },
    // drop reports whether the watcher's event of kind for file is one a
    // batch handles or handled: the file is held, or is as a batch left it.
    drop(kind, file) {
      if (kind !== 'add' && kind !== 'change' && kind !== 'unlink') return false
      const p = path.resolve(file)
      if (held.has(p)) return true
      const state = landed.get(p)
      if (state === undefined) return false
      if (fileState(p) === state) return true
      landed.delete(p) // changed since: the watcher's again
      return false
    },
  }
}

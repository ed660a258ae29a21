// Errors as the Go side's clients see them: no paths of the machine.
// Project files are relative to the project, dependencies start at
// node_modules/.

import path from 'node:path'
import { clip } from './protocol.mjs'

const ansi = /\x1b\[[0-9;]*[A-Za-z]/g
// locInMessage finds "file:line:column" in a message: Vite 8's oxc
// transform reports the position only there ("─[ src/App.tsx:3:1 ]").
const locInMessage = /([^\s[\]()'"]+):(\d+):(\d+)/
const modulesPrefix = /(?:\/[^\s/'"()[\]]+)*\/node_modules\//g

// reporter returns the functions that put errors and files of the project
// in projectDir into the Go side's terms.
export function reporter(projectDir) {
  const withoutProject = (s) => s.split(projectDir + path.sep).join('').replace(modulesPrefix, 'node_modules/')

  // publicFile returns the name of the file at f for the Go side's
  // clients, or null for a file outside the project and its dependencies.
  const publicFile = (f) => {
    f = f.replace(/\?.*$/, '')
    if (f.startsWith(projectDir + path.sep)) return f.slice(projectDir.length + 1)
    const i = f.lastIndexOf(`${path.sep}node_modules${path.sep}`)
    return i >= 0 ? f.slice(i + 1) : null
  }

  const relativeFile = (f) => publicFile(f) ?? path.basename(f.replace(/\?.*$/, ''))

  // compileError returns e, an error of Vite's or a plugin's, as the
  // protocol's error object.
  const compileError = (e) => {
    const message = clip(withoutProject(String((e && e.message) || e).replace(ansi, '')), 4000)
    let file = (e && ((e.loc && e.loc.file) || e.id)) || ''
    let line = (e && e.loc && e.loc.line) || 0
    let column = (e && e.loc && e.loc.column) || 0
    if (!line) {
      const m = locInMessage.exec(message)
      if (m) {
        line = Number(m[2])
        column = Number(m[3])
        if (!file) file = m[1]
      }
    }
    return {
      message,
      file: clip(relativeFile(String(file)), 1000),
      line: Number.isSafeInteger(line) ? line : 0,
      column: Number.isSafeInteger(column) ? column : 0,
      frame: clip(withoutProject(String((e && e.frame) || '').replace(ansi, '')), 4000),
      plugin: clip((e && e.plugin) || '', 200),
    }
  }

  return { withoutProject, publicFile, compileError }
}

// errorKey identifies a compile error, to report each once.
export function errorKey(e) {
  return `${e.file}:${e.line}:${e.column}:${e.message}`
}

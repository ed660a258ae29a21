// Source map lookup through Node's own parser (node:module's SourceMap,
// Node 18.8 and later).

import { SourceMap } from 'node:module'

// originalOf returns where the generated position line0:col0 (both
// 0-based) of a module with the source map map came from: the source as
// the map names it (sourceRoot prepended), its line and column, 0-based;
// or null when the map places no source at or before the column on that
// line. A map that Node cannot parse gives null too.
export function originalOf(map, line0, col0) {
  if (!map || typeof map.mappings !== 'string' || !Array.isArray(map.sources)) return null
  let entry
  try {
    // SourceMap keeps no reference to its payload's later changes; Vite's
    // map objects may carry extra methods, which the copy drops.
    entry = new SourceMap({ version: 3, sources: map.sources, names: map.names || [], mappings: map.mappings }).findEntry(line0, col0)
  } catch {
    return null
  }
  // findEntry answers with the last mapping at or before the position,
  // which may be on an earlier line, or a segment that maps to no source.
  if (!entry || entry.generatedLine !== line0 || typeof entry.originalSource !== 'string') return null
  return { source: (map.sourceRoot || '') + entry.originalSource, line: entry.originalLine, column: entry.originalColumn }
}

// Module resolution as Node's ESM loader does it, from a directory the
// runner is not in (the project's): the node_modules lookup, the package's
// "exports" by PACKAGE_EXPORTS_RESOLVE (the most specific pattern wins;
// conditions in the order the package lists them), and "main" by
// LEGACY_MAIN_RESOLVE, both of https://nodejs.org/api/esm.html#resolution-algorithm-specification.
// Node 20 has no API for it: import.meta.resolve takes no parent without
// --experimental-import-meta-resolve, and require.resolve applies the
// "require" condition.

import fs from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

// importConditions are the conditions of Node's import(); "module-sync" is
// one from Node 22.10 on, and a package that lists it gives the same
// module to both.
export const importConditions = ['node', 'import', 'module-sync']

// resolveError returns an Error with code, Node's code for the failure.
function resolveError(code, message) {
  const err = new Error(message)
  err.code = code
  return err
}

// splitSpecifier returns the package name of a bare specifier and the
// subpath within it ("." or "./...").
export function splitSpecifier(spec) {
  const parts = spec.split('/')
  const n = spec.startsWith('@') ? 2 : 1
  return [parts.slice(0, n).join('/'), parts.length > n ? './' + parts.slice(n).join('/') : '.']
}

// findPackageDir returns the directory of package name as seen from
// fromDir (the first node_modules/name/package.json up the tree), or null.
export function findPackageDir(name, fromDir) {
  for (let dir = fromDir; ;) {
    const candidate = path.join(dir, 'node_modules', name)
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) return null
    dir = parent
  }
}

export function readPackage(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
}

// patternKeyCompare orders pattern keys ("./x/*.js") most specific first:
// the longer part before "*", then the longer key (PATTERN_KEY_COMPARE).
export function patternKeyCompare(a, b) {
  const baseA = a.indexOf('*')
  const baseB = b.indexOf('*')
  if (baseA > baseB) return -1
  if (baseB > baseA) return 1
  if (a.length > b.length) return -1
  if (b.length > a.length) return 1
  return 0
}

// badSegment finds a segment that a target or a pattern's match may not
// hold: "", ".", "..", "node_modules", also percent-encoded.
const badSegment = /(^|\\|\/)((\.|%2e)(\.|%2e)?|(n|%6e|%4e)(o|%6f|%4f)(d|%64|%44)(e|%65|%45)(_|%5f)(m|%6d|%4d)(o|%6f|%4f)(d|%64|%44)(u|%75|%55)(l|%6c|%4c)(e|%65|%45)(s|%73|%53))?(\\|\/|$)/i

const invalidTarget = Symbol('invalid target')

// targetResolve is PACKAGE_TARGET_RESOLVE for exports: the file that
// target names, or null (excluded), undefined (no condition matched) or
// invalidTarget.
function targetResolve(dir, target, match, conditions) {
  if (typeof target === 'string') {
    if (!target.startsWith('./') || badSegment.test(target.slice(2))) return invalidTarget
    if (match === null) return path.join(dir, target)
    if (badSegment.test(match)) {
      throw resolveError('ERR_INVALID_MODULE_SPECIFIER', `"${match}" is not a valid subpath for a pattern`)
    }
    return path.join(dir, target.replaceAll('*', match))
  }
  if (Array.isArray(target)) {
    if (target.length === 0) return null
    let last = null
    for (const t of target) {
      const r = targetResolve(dir, t, match, conditions)
      if (r === invalidTarget) {
        last = r
        continue
      }
      if (r === undefined) continue
      if (r === null) {
        last = null
        continue
      }
      return r
    }
    return last
  }
  if (target && typeof target === 'object') {
    for (const key of Object.keys(target)) {
      if (key !== 'default' && !conditions.includes(key)) continue
      const r = targetResolve(dir, target[key], match, conditions)
      if (r !== undefined) return r
    }
    return undefined
  }
  if (target === null) return null
  return invalidTarget
}

// exportsResolve is PACKAGE_EXPORTS_RESOLVE: the file that subpath ("." or
// "./...") of the package in dir, whose "exports" is exp, names for
// conditions. It throws ERR_PACKAGE_PATH_NOT_EXPORTED as Node does.
export function exportsResolve(dir, exp, subpath, conditions = importConditions) {
  const isObject = exp !== null && typeof exp === 'object' && !Array.isArray(exp)
  const keys = isObject ? Object.keys(exp) : []
  const dotted = keys.filter((k) => k.startsWith('.')).length
  if (dotted > 0 && dotted < keys.length) {
    throw resolveError('ERR_INVALID_PACKAGE_CONFIG', `package ${dir}: "exports" mixes subpaths and conditions`)
  }
  let r = null
  if (subpath === '.') {
    const main = !isObject || dotted === 0 ? exp : exp['.']
    if (main !== undefined) r = targetResolve(dir, main, null, conditions)
  } else if (isObject && dotted > 0) {
    r = subpathResolve(dir, exp, subpath, conditions)
  }
  if (r === invalidTarget) {
    throw resolveError('ERR_INVALID_PACKAGE_TARGET', `package ${dir}: invalid "exports" target for "${subpath}"`)
  }
  if (typeof r !== 'string') {
    throw resolveError('ERR_PACKAGE_PATH_NOT_EXPORTED', `package ${dir} does not export "${subpath}" for import`)
  }
  return r
}

// subpathResolve is PACKAGE_IMPORTS_EXPORTS_RESOLVE for exports: the exact
// key, else the most specific pattern that matches.
function subpathResolve(dir, exp, subpath, conditions) {
  if (Object.hasOwn(exp, subpath) && !subpath.includes('*')) return targetResolve(dir, exp[subpath], null, conditions)
  const patterns = Object.keys(exp).filter((k) => k.indexOf('*') >= 0 && k.indexOf('*') === k.lastIndexOf('*')).sort(patternKeyCompare)
  for (const key of patterns) {
    const base = key.slice(0, key.indexOf('*'))
    if (!subpath.startsWith(base) || subpath === base) continue
    const trailer = key.slice(key.indexOf('*') + 1)
    if (trailer.length === 0 || (subpath.endsWith(trailer) && subpath.length >= key.length)) {
      return targetResolve(dir, exp[key], subpath.slice(base.length, subpath.length - trailer.length), conditions)
    }
  }
  return null
}

// legacyMainResolve is LEGACY_MAIN_RESOLVE: "main" as a file, with an
// extension, or as a directory with an index, else index.js; the first that
// exists.
function legacyMainResolve(dir, main) {
  const tries = []
  if (typeof main === 'string' && main !== '') {
    tries.push(main, `${main}.js`, `${main}.json`, `${main}.node`, `${main}/index.js`, `${main}/index.json`, `${main}/index.node`)
  }
  tries.push('index.js', 'index.json', 'index.node')
  for (const t of tries) {
    const f = path.join(dir, t)
    try {
      if (fs.statSync(f).isFile()) return f
    } catch {}
  }
  throw resolveError('ERR_MODULE_NOT_FOUND', `package ${dir} has no main file`)
}

// resolvePackage returns the file that import(spec) of a bare specifier
// loads from a module in fromDir.
export function resolvePackage(spec, fromDir, conditions = importConditions) {
  const [name, subpath] = splitSpecifier(spec)
  const dir = findPackageDir(name, fromDir)
  if (!dir) {
    throw resolveError('MODULE_NOT_FOUND', `cannot find package "${name}" from ${fromDir} (is it installed in node_modules?)`)
  }
  const pkg = readPackage(dir)
  if (pkg.exports !== undefined && pkg.exports !== null) return exportsResolve(dir, pkg.exports, subpath, conditions)
  return subpath === '.' ? legacyMainResolve(dir, pkg.main) : path.join(dir, subpath)
}

// resolveModule returns the file that import(spec) from fromDir loads: a
// path relative to it, or a package.
export function resolveModule(spec, fromDir) {
  if (spec.startsWith('.') || path.isAbsolute(spec)) return path.resolve(fromDir, spec)
  return resolvePackage(spec, fromDir)
}

export async function importModule(spec, fromDir) {
  return import(pathToFileURL(resolveModule(spec, fromDir)).href)
}

// packageVersion returns the version of package name as seen from fromDir,
// or "".
export function packageVersion(name, fromDir) {
  const dir = findPackageDir(name, fromDir)
  return dir ? readPackage(dir).version : ''
}

// loadPlugins imports the Vite plugins of the launch config, each
// {module, export, hasOptions, options}, from fromDir, and returns them
// made: a factory export is called (with options when there are some).
export async function loadPlugins(list, fromDir) {
  const out = []
  for (const p of list || []) {
    let ns
    try {
      ns = await importModule(p.module, fromDir)
    } catch (err) {
      err.message = `plugin ${p.module}: ${err.message}`
      throw err
    }
    const name = p.export || 'default'
    let f = ns[name]
    if (name === 'default' && f && typeof f !== 'function' && typeof f.default === 'function') f = f.default
    if (f === undefined) throw new Error(`plugin ${p.module} has no export "${name}"`)
    out.push(typeof f === 'function' ? await (p.hasOptions ? f(p.options) : f()) : f)
  }
  return out
}

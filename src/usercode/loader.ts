import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { withinBudget } from './budget.js';
import { transformModule } from './transform.js';

// How user modules (strategies, routers, hooks) are loaded so that a new version really
// replaces the old one and the old one is freed.
//
// The scheme: each version of a module is compiled from its source text as one function
// (vm.compileFunction in the main context, the way CommonJS wraps a module; transform.ts turns
// ES module syntax into a function body) and called once to get its exports. The relative
// modules it imports are compiled the same way in the same load: the whole graph is one
// version. Nothing global keeps a version: this cache holds only the latest one per file, and
// the running generation holds what it uses, so once a reload swapped a new version in and the
// requests using the old one finished, its functions, closures and compiled code are garbage.
// 500 reloads of a changed module: see docs/programming.md for the measured growth
// (test/user-code-memory.test.ts bounds it).
//
// Why not the alternatives (measured on Node 20, 500 versions of a 64 KiB module, heap after
// GC between version 100 and 500): import() with a cache-busting query keeps every version
// (+51 MiB: Node's module map never evicts); vm.Script, eval and new Function keep every
// version's source in V8's compilation cache (+50 MiB, vm contexts per version included);
// vm.compileFunction bypasses that cache (+0.0 MiB). vm.SourceTextModule needs
// --experimental-vm-modules; worker threads would put a message round trip into every
// request a router sees.
//
// The main context, not a vm context per version: one realm means a user's `instanceof Array`
// and `instanceof Error` work on what we pass and what it throws, as in any Node module. No vm
// scheme is a security boundary anyway (Node says so): user code is the user's own; what is
// contained is its failures (guards, fallbacks) and its endless loops at load (budget.ts).
//
// TypeScript files (.ts/.mts/.cts) cannot be parsed here; they go through import() (Node
// 22.18+ strips types, or a loader such as tsx), versioned by content: hot swap works, but
// every version stays in memory. Compile them to .js for a swap that frees the old version.

export interface LoadedModule {
  /** Absolute path of the module file. */
  readonly file: string;
  /** First 12 hex digits of sha256 over the sources of the module and what it imports. */
  readonly version: string;
  /** What the module exports (ES module exports, or CommonJS module.exports). */
  readonly exports: Readonly<Record<string, unknown>>;
  /** The module file and the relative modules it imports: watched for changes. */
  readonly files: readonly string[];
  /** ms since epoch */
  readonly loadedAt: number;
}

interface CacheEntry {
  readonly sources: ReadonlyMap<string, string>;
  readonly module: LoadedModule;
}

const TYPESCRIPT_MODULE = /\.[cm]?ts$/;

/** The module function's parameters (transform.ts writes the __sy_ ones). */
const PARAMS = ['__sy_exports', '__sy_import', '__sy_default', '__sy_meta', 'module', 'exports', 'require', '__filename', '__dirname'];

/** Latest version per root file: a reload whose files did not change gets the same object. */
const latest = new Map<string, CacheEntry>();

/** Where a module path points: relative to the config file's folder (else the cwd). */
export function resolveModulePath(path: string, configFile: string | null): string {
  return isAbsolute(path) ? path : resolve(configFile ? dirname(configFile) : process.cwd(), path);
}

/** The text of every module file as the last load read it: what the file watch compares. */
const seenText = new Map<string, string>();

/** True when a module file differs on disk (or vanished) from what the last load of it read. */
export function fileChanged(path: string): boolean {
  const seen = seenText.get(path);
  if (seen === undefined) return false;
  try {
    return readFileSync(path, 'utf8') !== seen;
  } catch {
    return true;
  }
}

/** True when a file of this loaded module changed on disk (or vanished) since it was loaded. */
export function moduleChanged(file: string): boolean {
  const entry = latest.get(file);
  if (entry === undefined) return false;
  for (const path of entry.sources.keys()) if (fileChanged(path)) return true;
  return false;
}

/**
 * Load a user module: the cached version when none of its files changed, else a new version
 * evaluated within the time budget. Throws (with the file named) on a read, syntax or
 * evaluation error, or when evaluation does not finish within the budget.
 */
export async function loadUserModule(file: string, budgetMs?: number): Promise<LoadedModule> {
  const cached = latest.get(file);
  if (cached !== undefined && !moduleChanged(file)) return cached.module;
  const entry = TYPESCRIPT_MODULE.test(file) ? await importVersion(file) : await evaluateVersion(file, budgetMs);
  latest.set(file, entry);
  for (const [path, text] of entry.sources) seenText.set(path, text);
  return entry.module;
}

function versionOf(sources: ReadonlyMap<string, string>): string {
  const h = createHash('sha256');
  for (const [path, text] of sources) h.update(path).update('\0').update(text).update('\0');
  return h.digest('hex').slice(0, 12);
}

async function evaluateVersion(root: string, budgetMs?: number): Promise<CacheEntry> {
  // Set inside evaluate() below: the cast keeps TypeScript from narrowing it to `null` here.
  let pending = null as Promise<unknown> | null;
  const sources = new Map<string, string>();
  const graph = new Map<string, { exports: unknown }>();
  const esmExports = new WeakSet<object>();

  const evaluate = (path: string): unknown => {
    const known = graph.get(path);
    if (known !== undefined) return known.exports; // a cycle: what it exported so far
    const ext = extname(path);
    const text = readFileSync(path, 'utf8');
    sources.set(path, text);
    if (ext === '.json') {
      const record = { exports: JSON.parse(text) as unknown };
      graph.set(path, record);
      return record.exports;
    }
    if (TYPESCRIPT_MODULE.test(path)) throw new Error(`${path}: a TypeScript module cannot be imported by a .js module here; compile it to .js`);
    const { body, esm } = transformModule(text, path);
    const exportsObject: Record<string, unknown> = {};
    const record = { exports: exportsObject as unknown };
    graph.set(path, record);
    if (esm) esmExports.add(exportsObject);
    const nodeRequire = createRequire(path);
    const importFrom = (spec: string): unknown => {
      if (spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/') || spec.startsWith('file:')) {
        const target = spec.startsWith('file:') ? fileURLToPath(spec) : resolve(dirname(path), spec);
        return evaluate(target);
      }
      // Built-ins and packages come from Node's own (CommonJS) loader: they do not change
      // between reloads, so sharing them costs nothing.
      if (isBuiltin(spec)) return nodeRequire(spec);
      return nodeRequire(spec);
    };
    const defaultOf = (m: unknown): unknown => (m !== null && typeof m === 'object' && esmExports.has(m) ? (m as Record<string, unknown>).default : m);
    const meta = Object.freeze({ url: pathToFileURL(path).href, filename: path, dirname: dirname(path) });
    let fn: (...args: unknown[]) => unknown;
    try {
      fn = vm.compileFunction(`${esm ? '"use strict";' : ''}${body}`, PARAMS, { filename: path }) as typeof fn;
    } catch (error) {
      // Top-level await (an ES module may wait at load): the body runs as an async function,
      // on the same first line so that line numbers stay. Only in the module the config names:
      // what it imports is evaluated synchronously, in place.
      if (!(esm && error instanceof SyntaxError && /\bawait\b/.test(error.message))) throw error;
      if (path !== root) throw new Error(`${path}: top-level await is supported in the module the config names, not in modules it imports`, { cause: error });
      fn = vm.compileFunction(`"use strict";return (async () => {${body}\n})();`, PARAMS, { filename: path }) as typeof fn;
    }
    const done = fn(exportsObject, importFrom, defaultOf, meta, record, exportsObject, importFrom, path, dirname(path));
    if (path === root && done instanceof Promise) pending = done;
    return record.exports;
  };

  let exports: unknown;
  try {
    exports = withinBudget(`evaluating ${root}`, () => evaluate(root), budgetMs);
    // The budget covers the synchronous part; what a top-level await waits for is the module's own business.
    if (pending !== null) await pending;
  } catch (error) {
    throw withFile(root, error);
  }
  const module: LoadedModule = Object.freeze({
    file: root,
    version: versionOf(sources),
    exports: (exports ?? {}) as Record<string, unknown>,
    files: Object.freeze([...sources.keys()]),
    loadedAt: Date.now(),
  });
  return { sources, module };
}

/** TypeScript through import(), one URL per content version (never freed: see above). */
async function importVersion(file: string): Promise<CacheEntry> {
  const text = readFileSync(file, 'utf8');
  const sources = new Map([[file, text]]);
  const version = versionOf(sources);
  const exports = (await import(`${pathToFileURL(file).href}?v=${version}`)) as Record<string, unknown>;
  return { sources, module: Object.freeze({ file, version, exports, files: Object.freeze([file]), loadedAt: Date.now() }) };
}

function withFile(file: string, error: unknown): Error {
  const message = (error as Error | null)?.message ?? String(error);
  const e = new Error(message.includes(file) ? message : `${file}: ${message}`);
  (e as { code?: unknown }).code = (error as { code?: unknown } | null)?.code;
  (e as { cause?: unknown }).cause = error;
  return e;
}

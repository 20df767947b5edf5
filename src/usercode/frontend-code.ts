import type { HttpHead } from '../balancer/http-head.js';
import type { FrontendConfig } from '../config/types.js';
import type { Backend } from '../model/backend.js';
import { reasonPhrase, simpleResponse } from '../routing/answers.js';
import { checkHeader, HeaderEdits } from '../routing/header-edits.js';
import type { RequestView as CoreView } from '../routing/request-view.js';
import type { HooksSlot, RouterSlot, Routing } from '../routing/routing.js';
import type { DirectAnswer } from './api.js';
import { ErrorCodes, SwitchyardError } from '../errors.js';
import { withinBudget } from './budget.js';
import { noteLoaded, noteUserCodeError, type UserCodeKind, type UserModuleRecord } from './ledger.js';
import { loadUserModule, type LoadedModule } from './loader.js';
import { snapshotRequest, UserRequest, UserResponse, type RequestSnapshot } from './request.js';

// A frontend's user code: the router (routing's RouterSlot) and the hooks (HooksSlot), made
// per generation from the modules `router:` and `hooks:` name. Every call is guarded: a throw,
// or an answer that cannot be used (an unknown backend, a bad status or header), is counted on
// the module (stats), emitted for the log, and the request falls back: a router's request goes
// to the default backend, a hook is skipped (its header edits undone). Before a version serves
// it is dry-run within the time budget (budget.ts): an endless loop refuses it, and the running
// version stays.

type Fn = (...args: unknown[]) => unknown;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function fail(message: string): never {
  throw new Error(message);
}

/** A user answer as bytes, checked: status 200-599, header names/values that cannot split the head. */
function answerOf(a: DirectAnswer): Buffer {
  if (a === null || typeof a !== 'object') fail('respond: expected { status, headers?, body? }');
  const status = a.status;
  if (!Number.isInteger(status) || status < 200 || status > 599) fail(`respond: status ${String(status)} is not 200-599`);
  let lines = '';
  if (a.headers !== undefined) {
    for (const [name, value] of Object.entries(a.headers)) {
      checkHeader(name, String(value));
      const lower = name.toLowerCase();
      if (lower === 'content-type' || lower === 'cache-control') continue; // simpleResponse writes its own
      lines += `${name}: ${String(value)}\r\n`;
    }
  }
  const body = a.body === undefined ? '' : String(a.body);
  return simpleResponse(status, body, false, lines);
}

/** The router of one frontend and generation. */
export class UserRouter implements RouterSlot {
  private readonly req: UserRequest;
  private readonly answered: string;

  constructor(
    private readonly fn: Fn,
    readonly record: UserModuleRecord,
    /** HTTP backends by name: what a router may choose. */
    private readonly backends: ReadonlyMap<string, Backend>,
    frontend: string,
    /** The module's files (watched). */
    readonly files: readonly string[],
  ) {
    this.req = new UserRequest(frontend);
    this.answered = `answered by router ${record.file}`;
  }

  route(view: CoreView, routing: Routing): Backend | null | undefined {
    const req = this.req;
    req.core = view;
    let result: unknown;
    try {
      result = this.fn(req);
      if (result === undefined || result === null) return undefined;
      if (typeof result === 'string') return this.backendNamed(result);
      return this.decision(view, result as Record<string, unknown>);
    } catch (error) {
      noteUserCodeError(this.record, error);
      view.edits = null;
      view.answer = null;
      return routing.defaultBackend;
    } finally {
      req.core = null;
    }
  }

  private backendNamed(name: unknown): Backend {
    const b = typeof name === 'string' ? this.backends.get(name) : undefined;
    return b ?? fail(`router returned an unknown backend ${JSON.stringify(name)} (HTTP backends: ${[...this.backends.keys()].join(', ')})`);
  }

  private decision(view: CoreView, r: Record<string, unknown>): Backend | null {
    if (typeof r !== 'object') fail(`router returned ${typeof r}: expected a backend name, { backend }, { redirect }, { deny }, { respond } or nothing`);
    if ('backend' in r) return this.backendNamed(r.backend);
    let answer: Buffer;
    let status: number;
    if ('redirect' in r) {
      status = r.status === undefined ? 302 : (r.status as number);
      if (!REDIRECTS.has(status)) fail(`redirect: status ${String(status)} is not one of 301, 302, 303, 307, 308`);
      const location = String(r.redirect);
      checkHeader('location', location);
      answer = simpleResponse(status, '', false, `location: ${location}\r\n`);
    } else if ('deny' in r) {
      status = r.deny as number;
      if (!Number.isInteger(status) || status < 400 || status > 599) fail(`deny: status ${String(status)} is not 400-599`);
      answer = simpleResponse(status, r.body === undefined ? `${status} ${reasonPhrase(status)}\n` : String(r.body), false);
    } else if ('respond' in r) {
      answer = answerOf(r.respond as DirectAnswer);
      status = (r.respond as DirectAnswer).status;
    } else {
      return fail(`router returned an object without backend, redirect, deny or respond: ${JSON.stringify(r)}`);
    }
    view.answer = answer;
    view.answerStatus = status;
    view.answerWhy = this.answered;
    view.backend = null;
    return null;
  }
}

/** The hooks of one frontend and generation. */
export class UserHooks implements HooksSlot {
  readonly hasRequestHook: boolean;
  readonly hasResponseHook: boolean;
  private readonly req: UserRequest;
  private readonly res = new UserResponse();
  private readonly answered: string;

  constructor(
    private readonly onReq: Fn | null,
    private readonly onRes: Fn | null,
    readonly record: UserModuleRecord,
    frontend: string,
    /** The module's files (watched). */
    readonly files: readonly string[],
  ) {
    this.hasRequestHook = onReq !== null;
    this.hasResponseHook = onRes !== null;
    this.req = new UserRequest(frontend);
    this.answered = `answered by hook ${record.file}`;
  }

  /** After the routing decision, before the request is sent (the head's bytes are still there). */
  onRequest(view: CoreView): void {
    if (this.hasResponseHook) view.user = snapshotRequest(view);
    const fn = this.onReq;
    if (fn === null) return;
    const req = this.req;
    req.core = view;
    const edits = view.edits;
    const lines = edits === null ? '' : edits.lines;
    const removed = edits === null ? 0 : edits.remove.length;
    try {
      const r = fn(req) as { respond?: DirectAnswer } | undefined | null;
      if (r !== undefined && r !== null && typeof r === 'object' && 'respond' in r) {
        view.answer = answerOf(r.respond!);
        view.answerStatus = r.respond!.status;
        view.answerWhy = this.answered;
        view.backend = null;
      }
    } catch (error) {
      noteUserCodeError(this.record, error);
      // Skipped: what it changed is undone.
      if (edits === null) view.edits = null;
      else {
        edits.lines = lines;
        edits.remove.length = removed;
      }
    } finally {
      req.core = null;
    }
  }

  /** The response head from the server, before it is sent on; `server`: who answered. */
  onResponse(view: CoreView, head: HttpHead, buf: Buffer, server: string): void {
    const fn = this.onRes;
    if (fn === null) return;
    const req = this.req;
    const res = this.res;
    req.core = view;
    req.snapshot = view.user as RequestSnapshot | null;
    req.server = server;
    res.core = view;
    res.head = head;
    res.buf = buf;
    const saved = view.responseEdits;
    const lines = saved === null ? '' : saved.lines;
    const removed = saved === null ? 0 : saved.remove.length;
    try {
      fn(req, res);
    } catch (error) {
      noteUserCodeError(this.record, error);
      if (saved === null) view.responseEdits = null;
      else {
        saved.lines = lines;
        saved.remove.length = removed;
      }
    } finally {
      req.core = null;
      req.snapshot = null;
      req.server = null;
      res.core = null;
      res.head = null;
    }
  }
}

/** A stand-in request for the dry run: the shape of the proxy's view, made-up values. */
function dryView(path: string, headers: [string, string][], clientIp: string): CoreView {
  const v = {
    method: 'GET',
    path,
    query: 'id=1',
    host: 'example.com',
    clientIp,
    route: null,
    backend: null,
    edits: null as HeaderEdits | null,
    responseEdits: null as HeaderEdits | null,
    answer: null,
    answerStatus: 0,
    answerWhy: '',
    user: null,
    header: (name: string) => headers.find(([k]) => k === name.toLowerCase())?.[1] ?? null,
    headers: () => headers.map(([k, val]) => [k, val] as [string, string]),
    queryParam: (name: string) => (name === 'id' ? '1' : null),
    requestEdits: () => (v.edits ??= new HeaderEdits()),
  };
  return v as unknown as CoreView;
}

const DRY_REQUESTS: readonly [string, [string, string][], string][] = [
  [
    '/',
    [
      ['host', 'example.com'],
      ['user-agent', 'switchyard-dry-run'],
    ],
    '192.0.2.10',
  ],
  [
    '/api/v1/items',
    [
      ['host', 'example.com'],
      ['x-canary', '1'],
      ['cookie', 'a=b'],
    ],
    '2001:db8::1',
  ],
  ['/x', [], '198.51.100.7'],
];

function functionOf(mod: LoadedModule, name: string): Fn | null {
  const direct = mod.exports[name];
  if (typeof direct === 'function') return direct as Fn;
  const d = mod.exports.default as Record<string, unknown> | Fn | undefined;
  if (d !== null && typeof d === 'object' && typeof d[name] === 'function') return (d[name] as Fn).bind(d);
  return null;
}

async function load(kind: UserCodeKind, file: string): Promise<LoadedModule> {
  try {
    return await loadUserModule(file);
  } catch (error) {
    throw new Error(`cannot load ${kind} module ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** Load, check and dry-run a router module for a frontend. Throws (a clear message) on any problem. */
export async function loadRouter(file: string, frontend: FrontendConfig, backends: ReadonlyMap<string, Backend>): Promise<UserRouter> {
  const mod = await load('router', file);
  let fn = functionOf(mod, 'route');
  if (fn === null && typeof mod.exports.default === 'function') fn = mod.exports.default as Fn;
  if (fn === null) throw new Error(`router module ${file} exports no route(req) (export function route, or a default function or object with route)`);
  const http = new Map<string, Backend>();
  for (const [name, b] of backends) if (b.mode === 'http') http.set(name, b);
  const route = fn;
  withinBudget(`router module ${file} (dry run of route())`, () => {
    for (const [path, headers, ip] of DRY_REQUESTS) {
      const req = new UserRequest(frontend.name);
      req.core = dryView(path, headers, ip);
      try {
        route(req);
      } catch {
        /* contained when serving */
      }
    }
  });
  // Recorded once the version passed its dry run: a refused one never shows as serving.
  return new UserRouter(route, noteLoaded('router', file, mod.version, mod.loadedAt), http, frontend.name, mod.files);
}

/** Load, check and dry-run a hooks module for a frontend. */
export async function loadHooks(file: string, frontend: FrontendConfig): Promise<UserHooks> {
  const mod = await load('hooks', file);
  const onRequest = functionOf(mod, 'onRequest');
  const onResponse = functionOf(mod, 'onResponse');
  if (onRequest === null && onResponse === null) throw new Error(`hooks module ${file} exports neither onRequest(req) nor onResponse(req, res)`);
  withinBudget(`hooks module ${file} (dry run of onRequest() and onResponse())`, () => {
    for (const [path, headers, ip] of DRY_REQUESTS) {
      const core = dryView(path, headers, ip);
      const req = new UserRequest(frontend.name);
      req.core = core;
      if (onRequest !== null)
        try {
          onRequest(req);
        } catch {
          /* contained when serving */
        }
      if (onResponse !== null) {
        const res = new UserResponse();
        res.core = core;
        res.dry = {
          status: 200,
          headers: [
            ['content-type', 'text/plain'],
            ['content-length', '2'],
          ],
        };
        req.snapshot = { method: 'GET', path, query: 'id=1', host: 'example.com', headers };
        req.server = 'dry-run';
        try {
          onResponse(req, res);
        } catch {
          /* contained when serving */
        }
      }
    }
  });
  return new UserHooks(onRequest, onResponse, noteLoaded('hooks', file, mod.version, mod.loadedAt), frontend.name, mod.files);
}

/** A frontend's router and hooks for a new generation, and the files to watch. Throws naming the key. */
export async function loadFrontendCode(
  f: FrontendConfig,
  backends: ReadonlyMap<string, Backend>,
): Promise<{ router: UserRouter | null; hooks: UserHooks | null; files: string[] }> {
  const files: string[] = [];
  let router: UserRouter | null = null;
  let hooks: UserHooks | null = null;
  if (f.router) {
    try {
      router = await loadRouter(f.router, f, backends);
    } catch (error) {
      throw new SwitchyardError(ErrorCodes.USER_CODE_LOAD, `frontends.${f.name}.router: ${(error as Error).message}`);
    }
    files.push(...router.files);
  }
  if (f.hooks) {
    try {
      hooks = await loadHooks(f.hooks, f);
    } catch (error) {
      throw new SwitchyardError(ErrorCodes.USER_CODE_LOAD, `frontends.${f.name}.hooks: ${(error as Error).message}`);
    }
    files.push(...hooks.files);
  }
  return { router, hooks, files };
}

import type { BackendConfig, FrontendConfig } from '../config/types.js';
import type { FrontendRoutingConfig } from '../config/routing-types.js';
import type { Backend } from '../model/backend.js';
import { denyResponses, redirectResponse, simpleResponse } from './answers.js';
import type { RequestView } from './request-view.js';
import type { HttpHead } from '../balancer/http-head.js';
import { ACTION_BACKEND, ACTION_DENY, ACTION_REDIRECT, bytesEqualLower, CompiledRoute, RouteStats } from './route.js';
import { ExchangePlan, mergeRules, PathRewrite } from './rules.js';

// A frontend's routing for one config generation: ONE immutable object, built beside the
// running one and swapped in with a single assignment (`frontend.routing`), so a request sees
// either the old routes, rules and default backend or the new ones, never a mix.
//
// The decision, per request, after the head is parsed and before a server is picked:
//   1. a user router (src/usercode), when the frontend has one: it may pick a backend, answer
//      the request, or return nothing to fall through;
//   2. the routes, in order: the first that matches decides (backend, redirect or deny);
//   3. the default backend.
// Then the header and path rules of the way the request leaves (ExchangePlan).
//
// Cost: a frontend with no routes, no rules and no request id is `active === false` and the
// session does exactly what it did before routing existed (one field read and a branch).

/** A user router (src/usercode): a backend, null when it answered (view.answer*), undefined: no opinion. */
export interface RouterSlot {
  route(view: RequestView, routing: Routing): Backend | null | undefined;
}

/**
 * User hooks (src/usercode), called by the session when present: `onRequest` after the
 * decision (it may edit headers through view.requestEdits() or answer with view.respond()),
 * `onResponse` when the response head arrives. The slot contains its own failures.
 */
export interface HooksSlot {
  readonly hasRequestHook: boolean;
  readonly hasResponseHook: boolean;
  /** After decide(), before the request is sent; may answer (view.backend = null). */
  onRequest(view: RequestView): void;
  /** On the server's response head, before it is sent on. */
  onResponse(view: RequestView, head: HttpHead, buf: Buffer, server: string): void;
}

/**
 * Routes indexed by exact host: candidates for a request are the routes that can match its
 * host, in order. For each host the routes name exactly, the table keeps the routes that can
 * match it, decided at compile time as far as the host alone decides: a route on that host or
 * on a wildcard covering it is in, with its host test already done; a route on another host or
 * a wildcard that does not cover it is out; a route with no host condition is in. Requests for
 * any other host get `rest`: routes with no host condition or a wildcard. The lookup hashes
 * the Host bytes in the head (lowercased, port dropped) into an open-addressing table: no
 * string made.
 */
export class RouteTable {
  private readonly keys: (Buffer | null)[];
  private readonly buckets: (readonly CompiledRoute[])[];
  /** Per bucket, per route: 1 when the bucket's host alone satisfies the route's host condition. */
  private readonly checked: Uint8Array[];
  private readonly restChecked: Uint8Array;
  /** What the last `candidates` call found: the flags of the bucket returned. */
  hostChecked: Uint8Array;
  private readonly mask: number;
  readonly size: number;
  /** Candidates for a host no route names exactly. */
  readonly rest: readonly CompiledRoute[];

  constructor(routes: readonly CompiledRoute[]) {
    const hosts = new Set<string>();
    for (const r of routes) for (const h of r.exactHosts) hosts.add(h);
    this.rest = routes.filter((r) => r.hosts === null || r.hosts.some((h) => h.wildcard));
    this.restChecked = Uint8Array.from(this.rest, (r) => (r.hosts === null ? 1 : 0));
    let cap = 8;
    while (cap < hosts.size * 2) cap *= 2;
    this.keys = new Array<Buffer | null>(cap).fill(null);
    this.buckets = new Array<readonly CompiledRoute[]>(cap).fill(this.rest);
    this.checked = new Array<Uint8Array>(cap).fill(this.restChecked);
    this.hostChecked = this.restChecked;
    this.mask = cap - 1;
    this.size = hosts.size;
    for (const host of hosts) {
      const bucket: CompiledRoute[] = [];
      const flags: number[] = [];
      for (const r of routes) {
        const verdict = hostVerdict(r, host);
        if (verdict === HOST_NO) continue;
        bucket.push(r);
        flags.push(verdict === HOST_YES ? 1 : 0);
      }
      const key = Buffer.from(host, 'latin1');
      let i = hashLower(key, 0, key.length) & this.mask;
      while (this.keys[i] !== null) i = (i + 1) & this.mask;
      this.keys[i] = key;
      this.buckets[i] = bucket;
      this.checked[i] = Uint8Array.from(flags);
    }
  }

  static build(routes: readonly CompiledRoute[]): RouteTable {
    return new RouteTable(routes);
  }

  /** The candidates for the request's host. */
  candidates(v: RequestView): readonly CompiledRoute[] {
    if (this.size === 0) {
      this.hostChecked = this.restChecked;
      return this.rest;
    }
    v.locateHost();
    const buf = v.buf;
    const start = v.hostStart;
    const n = v.hostNameEnd - start;
    let i = hashLower(buf, start, v.hostNameEnd) & this.mask;
    for (;;) {
      const key = this.keys[i];
      if (key === null) break;
      if (key!.length === n && bytesEqualLower(buf, start, key!)) {
        this.hostChecked = this.checked[i]!;
        return this.buckets[i]!;
      }
      i = (i + 1) & this.mask;
    }
    this.hostChecked = this.restChecked;
    return this.rest;
  }
}

const HOST_NO = 0;
const HOST_YES = 1;
/** Depends on the port: tested per request. */
const HOST_MAYBE = 2;

/** Can route `r` match a request whose host name (no port) is `host`? */
function hostVerdict(r: CompiledRoute, host: string): number {
  if (r.hosts === null) return HOST_YES;
  let verdict = HOST_NO;
  for (const h of r.hosts) {
    const name = h.withPort ? h.text.slice(0, h.text.lastIndexOf(':')) : h.text;
    const covers = h.wildcard ? host.length > name.length && host.endsWith(name) : host === name;
    if (!covers) continue;
    if (!h.withPort) return HOST_YES;
    verdict = HOST_MAYBE;
  }
  return verdict;
}

/**
 * A cheap hash of a host name: its length and four sampled bytes (ASCII-lowercased), the
 * first two and the last two. Host names in one table differ early (the first label) or in
 * length; a collision costs one more probe, and the full compare after the lookup decides.
 * Constant time, where a hash over every byte (FNV) cost as much as the rest of a lookup.
 */
function hashLower(buf: Buffer, start: number, end: number): number {
  const n = end - start;
  if (n === 0) return 0;
  const a = lower(buf[start]!);
  const b = lower(buf[start + (n > 1 ? 1 : 0)]!);
  const c = lower(buf[end - 1]!);
  const d = lower(buf[end - (n > 1 ? 2 : 1)]!);
  return Math.imul(Math.imul(Math.imul(Math.imul(n, 0x9e3779b1) ^ a, 0x85ebca6b) ^ (b | (c << 8) | (d << 16)), 0xc2b2ae35) ^ n, 0x27d4eb2f) >>> 0;
}

function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

export class Routing {
  /** Anything to do per request beyond the default backend. */
  readonly active: boolean;
  readonly table: RouteTable | null;
  /** Hits that went to the default backend (no route matched). */
  readonly defaultStats: RouteStats;

  constructor(
    readonly defaultBackend: Backend,
    readonly routes: readonly CompiledRoute[],
    /** Rules for requests that go to the default backend (or a router's choice of it). */
    readonly defaultPlan: ExchangePlan | null,
    /** Rules per backend for requests a user router sends there (no route rules). */
    readonly planByBackend: ReadonlyMap<Backend, ExchangePlan | null>,
    defaultStats: RouteStats,
    /** Slots for user code (src/usercode); null: none configured. */
    readonly router: RouterSlot | null = null,
    readonly hooks: HooksSlot | null = null,
  ) {
    this.table = routes.length === 0 ? null : RouteTable.build(routes);
    this.defaultStats = defaultStats;
    this.active = routes.length > 0 || defaultPlan !== null || router !== null || hooks !== null;
  }

  /** The same routing with user code slots filled (src/usercode builds it). */
  withUserCode(router: RouterSlot | null, hooks: HooksSlot | null): Routing {
    return new Routing(this.defaultBackend, this.routes, this.defaultPlan, this.planByBackend, this.defaultStats, router, hooks);
  }

  /**
   * Decide where the request in `v` goes: sets v.route, v.backend and v.plan; v.backend stays
   * null when the request is answered here (`answer`). Allocates only what a condition needs
   * (the path string for path conditions, the host for host conditions).
   */
  decide(v: RequestView): void {
    if (this.router !== null) {
      const chosen = this.router.route(v, this);
      if (chosen !== undefined) {
        if (chosen !== null) {
          v.backend = chosen;
          v.plan = chosen === this.defaultBackend ? this.defaultPlan : (this.planByBackend.get(chosen) ?? null);
        }
        return;
      }
    }
    const table = this.table;
    if (table !== null) {
      // Routes on exact hosts are indexed: a table of 50 host+path routes tests only the
      // routes that can match this host (bench/micro-routing.js).
      const candidates = table.candidates(v);
      const hostChecked = table.hostChecked;
      for (let i = 0; i < candidates.length; i++) {
        const r = candidates[i]!;
        if (!r.matches(v, hostChecked[i] === 1)) continue;
        r.stats.hits++;
        v.route = r;
        if (r.action === ACTION_BACKEND) {
          v.backend = r.backend;
          v.plan = r.plan;
        } else {
          v.answerStatus = r.config.action.type === 'backend' ? 0 : r.config.action.status;
          v.answerWhy = r.action === ACTION_DENY ? `denied by route ${r.name}` : `redirected by route ${r.name}`;
        }
        return;
      }
    }
    this.defaultStats.hits++;
    v.backend = this.defaultBackend;
    v.plan = this.defaultPlan;
  }
}

const NO_ROUTING: FrontendRoutingConfig = { routes: [], requestHeaders: null, responseHeaders: null, requestId: null };

/** The response for a request answered here (v.backend null after decide). */
export function answerBytes(v: RequestView, close: boolean): Buffer {
  const r = v.route;
  if (v.answer !== null) return v.answer;
  if (v.answerBody !== null) return simpleResponse(v.answerStatus, v.answerBody, close, v.answerLines);
  if (r !== null && r.action === ACTION_DENY) return close ? r.denyClose! : r.denyKeepAlive!;
  if (r !== null && r.action === ACTION_REDIRECT && r.config.action.type === 'redirect') return redirectResponse(r.config.action, v, close);
  return simpleResponse(500, 'no answer\n', close);
}

/**
 * Compile a frontend's routing for a new generation. `backends`: the generation's backends by
 * name (the config checks made sure every name exists). Route hit counters are carried over
 * from `previous` by route name, so a reload keeps them.
 */
export function compileRouting(config: FrontendConfig, backends: ReadonlyMap<string, Backend>, previous: Routing | null): Routing {
  // Configs built in code before routing existed (tests, embedders) have no routing block.
  const r = config.routing ?? NO_ROUTING;
  const defaultBackend = backends.get(config.backend)!;
  const http = config.mode === 'http';
  const oldStats = new Map<string, RouteStats>();
  if (previous !== null) for (const route of previous.routes) oldStats.set(route.name, route.stats);
  const planFor = (backend: BackendConfig, route: FrontendConfig['routing']['routes'][number] | null): ExchangePlan | null => {
    if (!http) return null;
    const request = mergeRules([r.requestHeaders, backend.requestHeaders ?? null, route?.requestHeaders ?? null]);
    const response = mergeRules([r.responseHeaders, backend.responseHeaders ?? null, route?.responseHeaders ?? null]);
    const rewrite = route?.pathRewrite ? new PathRewrite(route.pathRewrite) : null;
    if (ExchangePlan.isEmpty(request, response, rewrite, r.requestId)) return null;
    return new ExchangePlan(request, response, rewrite, r.requestId, backend.name);
  };
  const routes = http
    ? r.routes.map((route, i) => {
        const a = route.action;
        const backend = a.type === 'backend' ? backends.get(a.backend)! : null;
        const plan = backend !== null ? planFor(backend.config, route) : null;
        const deny = a.type === 'deny' ? denyResponses(a) : null;
        return new CompiledRoute(route, i, backend, plan, deny?.[0] ?? null, deny?.[1] ?? null, oldStats.get(route.name) ?? new RouteStats());
      })
    : [];
  const planByBackend = new Map<Backend, ExchangePlan | null>();
  if (http) for (const b of backends.values()) if (b.mode === 'http') planByBackend.set(b, planFor(b.config, null));
  return new Routing(defaultBackend, routes, planFor(defaultBackend.config, null), planByBackend, previous?.defaultStats ?? new RouteStats());
}

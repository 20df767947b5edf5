import { LATENCY_BUCKETS_MS, type Counters } from '../model/counters.js';
import type { Runtime } from '../model/runtime.js';
import type { StatsHost } from '../host.js';
import { COLUMNS, cell, values, type Value } from './columns.js';
import type { RateSource, Row } from './row.js';
import type { Backend } from '../model/backend.js';
import type { Frontend } from '../model/frontend.js';
import { refusalCounts } from '../overload/refusals.js';
import { tlsJson, type TlsJson } from './tls-stats.js';
import { discoveryJson, type DiscoveryJson } from './discovery-stats.js';
import { userModuleRecords, type UserModuleRecord } from '../usercode/ledger.js';
import { routesJson, type RouteHitsJson } from '../routing/route-stats.js';
import { BUILTIN_STRATEGY_NAMES } from '../strategies/names.js';

// Rows in HAProxy's order (every FRONTEND row, then per backend its servers then its BACKEND
// row), and the three renderings that read them through the column table: CSV, JSON and (in
// metrics.ts) Prometheus. Cost: one pass over the model per request, no state kept.

export function buildRows(runtime: Runtime, rates: RateSource, now = Date.now()): Row[] {
  const rows: Row[] = [];
  let iid = 0;
  const pid = runtime.config.workers === 1 ? 1 : null;
  for (const frontend of runtime.frontends.values()) {
    rows.push({
      kind: 'frontend',
      pxname: frontend.name,
      svname: 'FRONTEND',
      iid: ++iid,
      sid: 0,
      counters: frontend.counters,
      rates: rates.ratesOf(frontend.counters),
      now,
      pid,
      frontend,
    });
  }
  for (const backend of runtime.backends.values()) {
    const id = ++iid;
    let sid = 0;
    for (const server of backend.servers) {
      rows.push({
        kind: 'server',
        pxname: backend.name,
        svname: server.name,
        iid: id,
        sid: ++sid,
        counters: server.counters,
        rates: rates.ratesOf(server.counters),
        now,
        pid,
        backend,
        server,
      });
    }
    rows.push({
      kind: 'backend',
      pxname: backend.name,
      svname: 'BACKEND',
      iid: id,
      sid: 0,
      counters: backend.counters,
      rates: rates.ratesOf(backend.counters),
      now,
      pid,
      backend,
    });
  }
  return rows;
}

/** CSV quoting: HAProxy writes cells raw; we quote the rare cell with a comma, quote or newline. */
function csvCell(v: Value): string {
  if (v === null) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Math.round(v));
  return /[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The `show stat` CSV: HAProxy's header line, then one line per row, each cell followed by a comma. */
export function renderCsv(rows: readonly Row[], header: string): string {
  let out = header;
  for (const row of rows) {
    const vs = values(row);
    let line = '';
    for (const v of vs) line += `${csvCell(v)},`;
    out += `${line}\n`;
  }
  return out;
}

/** A row's non-empty cells keyed by column name (the JSON `stats` object). */
export function rowObject(row: Row): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const column of COLUMNS) {
    const v = cell(column, row);
    if (v !== null && column.name !== '-') out[column.name] = v;
  }
  return out;
}

export interface JsonServer {
  name: string;
  address: string;
  state: string;
  status: string;
  admin: string;
  backup: boolean;
  weight: number;
  source: string;
  stateSince: number;
  stateReason: string;
  check: { enabled: boolean; code: string; reason: string; durationMs: number | null; at: number | null; health: number; rise: number; fall: number };
  latency: LatencyJson;
  stats: Record<string, number | string>;
  /** Slow start: the weight now (below `weight` while ramping) and when the ramp ends (null: none). */
  effectiveWeight: number;
  rampUntil: number | null;
}

export interface LatencyJson {
  /** Upper bounds in ms, last is +Inf (null in JSON). */
  bucketsMs: (number | null)[];
  counts: number[];
  sumMs: number;
  count: number;
}

export interface StatsJson {
  generatedAt: number;
  startedAt: number;
  uptimeSeconds: number;
  pid: number;
  generation: number;
  configSource: string | null;
  workers: { count: number; pids: readonly number[]; restarts: number } | null;
  lastReload: { ok: boolean; at: number; errors: readonly string[]; generation: number } | null;
  admin: boolean;
  /** The built-in strategies a backend can be switched to (PUT /api/backends/NAME/strategy). */
  strategies: readonly string[];
  frontends: {
    name: string;
    mode: string;
    bind: string;
    backend: string;
    status: string;
    stats: Record<string, number | string>;
    overload: FrontendOverloadJson;
    tls: TlsJson | null;
    routes: RouteHitsJson[];
  }[];
  backends: {
    name: string;
    mode: string;
    status: string;
    strategy: string;
    strategyErrors: number;
    sticky: string | null;
    health: string;
    eligible: number;
    stateSince: number;
    latency: LatencyJson;
    stats: Record<string, number | string>;
    servers: JsonServer[];
    overload: BackendOverloadJson;
    /** Where discovered servers come from and how that source is doing; null: static servers only. */
    discovery: DiscoveryJson | null;
  }[];
  /** User modules (strategies, routers, hooks): version serving, loads, failures while serving. */
  userCode: UserModuleRecord[];
}

/** Frontend `rate_limit` and what it refused (docs/overload.md). */
export interface FrontendOverloadJson {
  rateLimit: { requestsPerSecond: number; burst: number; connections: number } | null;
  rateLimited: number;
  connLimited: number;
  /** Routes with their own rate_limit: requests each answered 429. */
  routes: { name: string; requestsPerSecond: number; burst: number; rateLimited: number }[];
}

/** A backend's queue and circuit breaker (docs/overload.md). */
export interface BackendOverloadJson {
  queue: { current: number; max: number; limit: number; timeoutMs: number; avgWaitMs: number; maxWaitMs: number; waiting: number };
  breaker: {
    maxConnections: number;
    maxPending: number;
    maxRequests: number;
    maxRetries: number;
    retryBudget: { percent: number; minRetryConcurrency: number } | null;
  } | null;
  /** Connections open to its servers and requests being retried, in this process (0 in a cluster's primary). */
  connections: number;
  retries: number;
  slowStartMs: number;
  /** Requests refused by each limit so far (503 with x-switchyard-limit). */
  refusals: Record<string, number>;
}

function frontendOverload(f: Frontend): FrontendOverloadJson {
  const r = f.config.rateLimit ?? null;
  return {
    rateLimit: r === null ? null : { requestsPerSecond: r.requestsPerSecond, burst: r.burst, connections: r.connections },
    rateLimited: f.counters.rateLimited,
    connLimited: f.counters.connLimited,
    routes: (f.routing?.routes ?? [])
      .filter((route) => route.limiter !== null)
      .map((route) => ({
        name: route.name,
        requestsPerSecond: route.limiter!.config.requestsPerSecond,
        burst: route.limiter!.config.burst,
        rateLimited: route.stats.rateLimited,
      })),
  };
}

function backendOverload(b: Backend): BackendOverloadJson {
  const o = b.overload;
  const c = b.counters;
  // From the counters, not o.waiting: in a cluster the counters are the workers' totals.
  let waiting = c.qcur;
  for (const s of b.servers) waiting += s.counters.qcur;
  return {
    queue: {
      current: c.qcur,
      max: c.qmax,
      limit: o.capacity,
      timeoutMs: o.queueTimeoutMs,
      avgWaitMs: Math.round(c.qtimeAvg),
      maxWaitMs: Math.round(c.qtimeMax),
      waiting,
    },
    breaker: b.config.circuitBreaker ?? null,
    connections: o.connections,
    retries: o.retries,
    slowStartMs: b.config.slowStart?.durationMs ?? 0,
    refusals: Object.fromEntries(refusalCounts(c)),
  };
}

function latencyJson(c: Counters): LatencyJson {
  return { bucketsMs: [...LATENCY_BUCKETS_MS, null], counts: [...c.latencyBuckets], sumMs: c.latencySumMs, count: c.latencyCount };
}

/** `/api/stats`: the same rows as the CSV, nested frontend → backend → server, plus context. */
export function renderJson(host: StatsHost, rows: readonly Row[], admin: boolean): StatsJson {
  const runtime = host.runtime();
  const now = rows[0]?.now ?? Date.now();
  const workers = host.workers();
  const out: StatsJson = {
    generatedAt: now,
    startedAt: host.startedAt,
    uptimeSeconds: Math.floor((now - host.startedAt) / 1000),
    pid: process.pid,
    generation: runtime.generation,
    configSource: runtime.config.source,
    workers: workers === null ? null : { count: workers.count, pids: workers.pids, restarts: workers.restarts },
    lastReload: host.lastReload(),
    admin,
    strategies: BUILTIN_STRATEGY_NAMES,
    frontends: [],
    backends: [],
    userCode: userModuleRecords().map((m) => ({ ...m })),
  };
  let servers: JsonServer[] = [];
  for (const row of rows) {
    const stats = rowObject(row);
    if (row.kind === 'frontend') {
      const f = row.frontend;
      out.frontends.push({
        name: f.name,
        mode: f.config.mode,
        bind: `${f.config.bind.host}:${f.config.bind.port}`,
        backend: f.backend.name,
        status: 'OPEN',
        stats,
        overload: frontendOverload(f),
        tls: tlsJson(f, now),
        routes: routesJson(f),
      });
    } else if (row.kind === 'server') {
      const s = row.server;
      const h = row.backend.config.health;
      servers.push({
        name: s.name,
        address: s.address,
        state: s.state,
        status: String(stats.status ?? s.state),
        admin: s.admin,
        backup: s.backup,
        weight: s.weight,
        source: s.source,
        stateSince: s.stateSince,
        stateReason: s.stateReason,
        check: {
          enabled: h.type !== 'none',
          code: s.check.code,
          reason: s.check.reason,
          durationMs: s.check.durationMs >= 0 ? s.check.durationMs : null,
          at: s.check.at === 0 ? null : s.check.at,
          health: s.check.health,
          rise: h.rise,
          fall: h.fall,
        },
        latency: latencyJson(s.counters),
        stats,
        effectiveWeight: Math.round(s.effectiveWeight * 100) / 100,
        rampUntil: s.rampSince === 0 ? null : s.rampSince + (row.backend.config.slowStart?.durationMs ?? 0),
      });
    } else {
      const b = row.backend;
      const sticky = b.config.sticky;
      out.backends.push({
        name: b.name,
        mode: b.mode,
        status: b.state,
        strategy: b.strategyName,
        strategyErrors: b.strategyErrors,
        sticky: sticky === null ? null : sticky.type === 'cookie' ? `cookie ${sticky.name}` : 'source',
        health: b.config.health.type === 'http' ? `http ${b.config.health.method} ${b.config.health.path}` : b.config.health.type,
        eligible: b.eligible.length,
        stateSince: b.stateSince,
        latency: latencyJson(b.counters),
        stats,
        servers,
        overload: backendOverload(b),
        discovery: discoveryJson(b),
      });
      servers = [];
    }
  }
  return out;
}

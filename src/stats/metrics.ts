import { Registry, collectDefaultMetrics } from 'prom-client';
import type { StatsHost } from '../host.js';
import { LATENCY_BUCKETS_MS, type Counters } from '../model/counters.js';
import type { Backend } from '../model/backend.js';
import { refusalCounts } from '../overload/refusals.js';
import { COLUMNS, cell, type Column, type PromSpec } from './columns.js';
import type { Collector, Scrape } from './collector.js';
import { Exposition, isMetricType, labelPairs, type MetricType } from './exposition.js';
import type { RateSource, Row, RowKind } from './row.js';
import { buildRows } from './snapshot.js';
import { tlsCollectors } from './tls-stats.js';
import { discoveryCollectors } from './discovery-stats.js';
import { userModuleRecords } from '../usercode/ledger.js';
import { routesJson } from '../routing/route-stats.js';

// `/metrics`: every switchyard family is a collector that reads the model at scrape time (the
// column table says which column feeds which family) and appends its samples to one
// Exposition (exposition.ts says why it is written directly), so the data path never calls a
// metrics library: it only increments its plain counters. prom-client collects the process
// and Node.js metrics (CPU, memory, file descriptors, event-loop delay, GC), read through its
// Registry.getMetricsAsJSON() and written by the same writer.
//
// Cost: the rows are built once per scrape and each row's label string once; a scrape is one
// pass appending to a string. prom-client's default metrics (reading /proc, the event-loop
// delay histogram's percentiles) are process-level samples, so they are rendered at most once
// a second and reused: ten scrapes a second cost one default render.

function labelsOf(row: Row): string {
  if (row.kind === 'frontend') return labelPairs({ frontend: row.pxname });
  if (row.kind === 'backend') return labelPairs({ backend: row.pxname });
  return labelPairs({ backend: row.pxname, server: row.svname });
}

/** `base` and `extra` label strings joined. */
function withLabels(base: string, extra: string): string {
  return base === '' ? extra : extra === '' ? base : `${base},${extra}`;
}

function getterOf(column: Column, kind: RowKind): boolean {
  return (kind === 'frontend' ? column.frontend : kind === 'backend' ? column.backend : column.server) !== null;
}

interface Source {
  readonly column: Column;
  readonly spec: PromSpec;
}

interface Family {
  readonly name: string;
  readonly kind: RowKind;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly sources: Source[];
}

/** The metric families the column table declares, by full name (`switchyard_server_up`). */
export function families(): Family[] {
  const byName = new Map<string, Family>();
  for (const column of COLUMNS) {
    for (const spec of column.prom) {
      for (const kind of ['frontend', 'backend', 'server'] as const) {
        if (!getterOf(column, kind) || (spec.kinds !== undefined && !spec.kinds.includes(kind))) continue;
        const name = `switchyard_${kind}_${spec.name}`;
        let family = byName.get(name);
        if (family === undefined) {
          family = { name, kind, type: spec.type, help: spec.help, sources: [] };
          byName.set(name, family);
        }
        family.sources.push({ column, spec });
      }
    }
  }
  return [...byName.values()];
}

function sampleOf(source: Source, row: Row): number | null {
  const v = cell(source.column, row);
  if (source.spec.value !== undefined) return source.spec.value(v, row);
  return typeof v === 'number' ? v : null;
}

/** A family with one or more samples per row of `kind`. */
function rowCollector(name: string, help: string, type: MetricType, kind: RowKind, samples: (out: Exposition, row: Row, labels: string) => void): Collector {
  return {
    name,
    help,
    type,
    collect(out, scrape) {
      const { rows, labels } = scrape;
      for (let i = 0; i < rows.length; i++) if (rows[i]!.kind === kind) samples(out, rows[i]!, labels[i]!);
    },
  };
}

/**
 * One column family: one sample per row of its kind and source column, counters never below
 * zero. No two sources of a family share a label set (the column table gives each its `labels`).
 */
function familyCollector(family: Family): Collector {
  const { name, help, type, kind, sources } = family;
  const counter = type === 'counter';
  const extra = sources.map((s) => (s.spec.labels ? labelPairs(s.spec.labels) : ''));
  return rowCollector(name, help, type, kind, (out, row, labels) => {
    for (let i = 0; i < sources.length; i++) {
      const v = sampleOf(sources[i]!, row);
      if (v === null || !Number.isFinite(v)) continue;
      out.sample(name, withLabels(labels, extra[i]!), counter ? Math.max(0, v) : v);
    }
  });
}

/** The `le` label of each bucket: LATENCY_BUCKETS_MS in seconds, then +Inf. */
const LE_LABELS = [...LATENCY_BUCKETS_MS.map((b) => labelPairs({ le: String(b / 1000) })), labelPairs({ le: '+Inf' })];

/** A histogram from per-bucket counts kept in Counters (LATENCY_BUCKETS_MS bounds, then +Inf). */
function bucketCollector(name: string, help: string, kind: RowKind, buckets: (c: Counters) => readonly number[], sumMs: (c: Counters) => number): Collector {
  const bucket = `${name}_bucket`;
  const sum = `${name}_sum`;
  const count = `${name}_count`;
  return rowCollector(name, help, 'histogram', kind, (out, row, labels) => {
    const counts = buckets(row.counters);
    let cumulative = 0;
    for (let i = 0; i < LE_LABELS.length; i++) {
      cumulative += counts[i] ?? 0;
      out.sample(bucket, withLabels(labels, LE_LABELS[i]!), cumulative);
    }
    out.sample(sum, labels, sumMs(row.counters) / 1000);
    out.sample(count, labels, cumulative);
  });
}

/**
 * `switchyard_<kind>_response_time_seconds`: cumulative buckets from Counters.latencyBuckets,
 * `_sum` and `_count`.
 */
function responseTimeCollector(kind: RowKind): Collector {
  const help = 'Response time of HTTP requests (time to the last byte of the response).';
  return bucketCollector(
    `switchyard_${kind}_response_time_seconds`,
    help,
    kind,
    (c) => c.latencyBuckets,
    (c) => c.latencySumMs,
  );
}

/**
 * Overload protection (docs/overload.md), beyond HAProxy's columns (qcur, qmax, qtime feed
 * current_queue, max_queue, queue_time_average_seconds above): the queue-wait histogram,
 * refusals by limit, open retries and connections, rate-limited requests and connections.
 */
function overloadCollectors(): Collector[] {
  const backendGauge = (name: string, help: string, get: (b: Backend) => number): Collector =>
    rowCollector(name, help, 'gauge', 'backend', (out, row, labels) => {
      if (row.kind === 'backend') out.sample(name, labels, get(row.backend));
    });
  const frontendCounter = (name: string, help: string, get: (c: Counters) => number): Collector =>
    rowCollector(name, help, 'counter', 'frontend', (out, row, labels) => out.sample(name, labels, get(row.counters)));
  const refusals = 'switchyard_backend_limit_refusals_total';
  return [
    bucketCollector(
      'switchyard_backend_queue_wait_seconds',
      "Time requests spent waiting in the queue for a server slot (the backend's and its servers' queues).",
      'backend',
      (c) => c.queueBuckets,
      (c) => c.queueSumMs,
    ),
    rowCollector(
      refusals,
      'Requests or connections refused by an overload limit (503 with x-switchyard-limit), by limit.',
      'counter',
      'backend',
      (out, row, labels) => {
        for (const [limit, n] of refusalCounts(row.counters)) out.sample(refusals, withLabels(labels, labelPairs({ limit })), n);
      },
    ),
    backendGauge(
      'switchyard_backend_queue_limit',
      'Requests that may wait in the queue (max_queue or circuit_breaker.max_pending; 0: no queue).',
      (b) => b.overload.capacity,
    ),
    backendGauge(
      'switchyard_backend_open_connections',
      "Connections open to the backend's servers (busy, idle and connecting).",
      (b) => b.overload.connections,
    ),
    backendGauge('switchyard_backend_open_retries', 'Requests being retried now (counted when circuit_breaker limits retries).', (b) => b.overload.retries),
    frontendCounter('switchyard_frontend_rate_limited_total', 'Requests answered 429 by rate_limit.requests_per_second.', (c) => c.rateLimited),
    frontendCounter('switchyard_frontend_connections_limited_total', 'Connections refused by rate_limit.connections.', (c) => c.connLimited),
  ];
}

/** A family read from the host rather than from the rows. */
function hostCollector(name: string, help: string, type: MetricType, collect: (out: Exposition) => void): Collector {
  return { name, help, type, collect };
}

/** Process-level figures of the balancer: uptime, config generation, last reload, strategies. */
function hostCollectors(host: StatsHost): Collector[] {
  const uptime = 'switchyard_uptime_seconds';
  const generation = 'switchyard_config_generation';
  const reload = 'switchyard_last_reload_success';
  const strategy = 'switchyard_backend_strategy_info';
  const strategyErrors = 'switchyard_backend_strategy_errors_total';
  const uncaught = 'switchyard_uncaught_exceptions_total';
  const userErrors = 'switchyard_user_code_errors_total';
  const routeHits = 'switchyard_route_hits_total';
  const eligible = 'switchyard_backend_eligible_servers';
  return [
    hostCollector(uptime, 'Seconds since switchyard started.', 'gauge', (out) => out.sample(uptime, '', (Date.now() - host.startedAt) / 1000)),
    hostCollector(generation, 'Generation of the running config (1 at start, +1 per applied reload).', 'gauge', (out) =>
      out.sample(generation, '', host.runtime().generation),
    ),
    hostCollector(reload, '1 when the last reload attempt was applied, 0 when it was rejected (absent before any).', 'gauge', (out) => {
      const r = host.lastReload();
      if (r !== null) out.sample(reload, '', r.ok ? 1 : 0);
    }),
    hostCollector(strategy, 'The strategy a backend balances with (value 1).', 'gauge', (out) => {
      for (const b of host.runtime().backends.values()) out.sample(strategy, labelPairs({ backend: b.name, strategy: b.strategyName }), 1);
    }),
    hostCollector(strategyErrors, 'Strategy failures (user strategy threw or picked an ineligible server).', 'counter', (out) => {
      for (const b of host.runtime().backends.values()) out.sample(strategyErrors, labelPairs({ backend: b.name }), b.strategyErrors);
    }),
    hostCollector(uncaught, 'Exceptions nothing caught, logged and survived (this process and its workers).', 'counter', (out) =>
      out.sample(uncaught, '', host.uncaughtExceptions()),
    ),
    hostCollector(
      userErrors,
      'Failures of user code while serving, per module (threw, or answered what cannot be used); the request fell back.',
      'counter',
      (out) => {
        for (const m of userModuleRecords()) out.sample(userErrors, labelPairs({ module: m.file, kind: m.kind }), m.errors);
      },
    ),
    hostCollector(routeHits, 'Requests a route decided (route="default": no route matched, sent to the default backend).', 'counter', (out) => {
      for (const f of host.runtime().frontends.values()) {
        for (const r of routesJson(f))
          out.sample(routeHits, labelPairs({ frontend: f.name, route: r.name, action: r.action.split(' ')[0]!, backend: r.backend ?? '' }), r.hits);
      }
    }),
    hostCollector(eligible, 'Servers that may take new traffic now.', 'gauge', (out) => {
      for (const b of host.runtime().backends.values()) out.sample(eligible, labelPairs({ backend: b.name }), b.eligible.length);
    }),
  ];
}

/** How long the default process metrics' text is reused. */
const DEFAULTS_TTL_MS = 1000;

/**
 * A prom-client Registry's metrics in our format. Its typings declare `type` as a numeric enum;
 * the objects carry the text name (`'counter'`), and histogram samples their `metricName`.
 */
async function promClientText(registry: Registry): Promise<string> {
  const out = new Exposition();
  for (const metric of await registry.getMetricsAsJSON()) {
    const type = String(metric.type);
    out.family(metric.name, metric.help, isMetricType(type) ? type : 'untyped');
    for (const v of metric.values) {
      const name = 'metricName' in v && typeof v.metricName === 'string' ? v.metricName : metric.name;
      out.sample(name, labelPairs(v.labels), v.value);
    }
  }
  return out.text;
}

export class StatsMetrics {
  /** prom-client's default process and Node.js metrics (and any a caller registers there). */
  readonly processRegistry = new Registry();
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  private readonly collectors: readonly Collector[];
  private defaultsText = '';
  private defaultsAt = -Infinity;

  constructor(
    private readonly host: StatsHost,
    private readonly rates: RateSource,
  ) {
    collectDefaultMetrics({ register: this.processRegistry });
    this.collectors = [
      ...families().map(familyCollector),
      ...(['frontend', 'backend', 'server'] as const).map(responseTimeCollector),
      ...overloadCollectors(),
      ...hostCollectors(host),
      ...tlsCollectors(host),
      ...discoveryCollectors(host),
    ];
  }

  /** Prometheus text (version 0.0.4): the process metrics, then switchyard's families. */
  async render(): Promise<string> {
    const now = performance.now();
    if (now - this.defaultsAt >= DEFAULTS_TTL_MS) {
      this.defaultsText = await promClientText(this.processRegistry);
      this.defaultsAt = now;
    }
    const rows = buildRows(this.host.runtime(), this.rates);
    const scrape: Scrape = { rows, labels: rows.map(labelsOf) };
    const out = new Exposition();
    out.raw(this.defaultsText);
    for (const c of this.collectors) {
      out.family(c.name, c.help, c.type);
      c.collect(out, scrape);
    }
    return out.text;
  }
}

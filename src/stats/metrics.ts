import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { StatsHost } from '../host.js';
import { LATENCY_BUCKETS_MS, type Counters } from '../model/counters.js';
import type { Backend } from '../model/backend.js';
import { refusalCounts } from '../overload/refusals.js';
import { COLUMNS, cell, type Column, type PromSpec } from './columns.js';
import type { RateSource, Row, RowKind } from './row.js';
import { buildRows } from './snapshot.js';
import { registerTlsMetrics } from './tls-stats.js';
import { userModuleRecords } from '../usercode/ledger.js';
import { routesJson } from '../routing/route-stats.js';

// `/metrics`: prom-client with its own Registry. Every switchyard family is a collector whose
// get() reads the model at scrape time (the column table says which column feeds which
// family), so the data path never calls prom-client: it only increments its plain counters.
// The collectors are plain metric objects that hand prom-client their samples as they are
// (like the response-time histograms, built from Counters.latencyBuckets): a Counter or Gauge
// per family would be reset, re-validated and re-hashed label by label on every scrape.
// Rows are built once per scrape: the first collect builds them, the next macrotask drops them.
//
// Cost (measured in-process, 2 backends / 5 servers): ~1.5 ms of CPU per scrape for our
// families, ~0.8 ms for prom-client's default process metrics (reading /proc, the event-loop
// delay histogram's stddev and percentiles). Those are process-level samples, so they are
// rendered at most once a second and reused: ten scrapes a second cost one default render.

const KIND_LABELS: Readonly<Record<RowKind, readonly string[]>> = {
  frontend: ['frontend'],
  backend: ['backend'],
  server: ['backend', 'server'],
};

function labelsOf(row: Row): Record<string, string> {
  if (row.kind === 'frontend') return { frontend: row.pxname };
  if (row.kind === 'backend') return { backend: row.pxname };
  return { backend: row.pxname, server: row.svname };
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
  readonly labelNames: string[];
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
          family = { name, kind, type: spec.type, help: spec.help, labelNames: [...KIND_LABELS[kind], ...Object.keys(spec.labels ?? {})], sources: [] };
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

/** How long the default process metrics' text is reused. */
const DEFAULTS_TTL_MS = 1000;

interface PlainValue {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

export class StatsMetrics {
  /** switchyard's own families (fresh at every scrape). */
  readonly registry = new Registry();
  /** prom-client's default process and Node.js metrics. */
  private readonly defaults = new Registry();
  private defaultsText = '';
  private defaultsAt = -Infinity;
  private rows: Row[] | null = null;

  constructor(private readonly host: StatsHost, private readonly rates: RateSource) {
    collectDefaultMetrics({ register: this.defaults });
    for (const family of families()) this.registry.registerMetric(this.family(family) as unknown as Metric);
    for (const kind of ['frontend', 'backend', 'server'] as const) this.registry.registerMetric(this.histogram(kind) as unknown as Metric);
    for (const metric of this.overloadMetrics()) this.registry.registerMetric(metric as unknown as Metric);
    this.addHostMetrics();
    registerTlsMetrics(this.registry, host);
  }

  /**
   * Prometheus text (version 0.0.4). prom-client spells NaN `Nan` (the event-loop lag gauges
   * are NaN until the first delay sample, i.e. in a scrape right after start); Prometheus's
   * parser forgives it, strict ones (OpenMetrics, other scrapers) do not: we write `NaN`.
   */
  async render(): Promise<string> {
    const now = performance.now();
    if (now - this.defaultsAt >= DEFAULTS_TTL_MS) {
      this.defaultsText = await this.defaults.metrics();
      this.defaultsAt = now;
    }
    const text = `${this.defaultsText}\n${await this.registry.metrics()}`;
    return text.includes(' Nan\n') ? text.replace(/ Nan$/gm, ' NaN') : text;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private scrapeRows(): Row[] {
    if (this.rows === null) {
      this.rows = buildRows(this.host.runtime(), this.rates);
      setImmediate(() => { this.rows = null; });
    }
    return this.rows;
  }

  /**
   * A plain metric object (name, help, type, get, reset) the Registry formats, with samples
   * from every scrape row of `kind`: prom-client's own metric classes would either be rebuilt
   * per scrape or be fed on the data path.
   */
  private rowMetric(name: string, help: string, type: string, kind: RowKind, samples: (row: Row, values: PlainValue[]) => void): object {
    return {
      name,
      help,
      type,
      aggregator: 'sum',
      reset: () => {},
      get: async () => {
        const values: PlainValue[] = [];
        for (const row of this.scrapeRows()) if (row.kind === kind) samples(row, values);
        return { name, help, type, aggregator: 'sum', values };
      },
    };
  }

  /**
   * One family: one sample per row of its kind and source column, counters never below zero.
   * No two sources of a family share a label set (the column table gives each its `labels`).
   */
  private family(family: Family): object {
    const { name, help, type, kind, sources } = family;
    const counter = type === 'counter';
    return this.rowMetric(name, help, type, kind, (row, values) => {
      const base = labelsOf(row);
      for (const source of sources) {
        const v = sampleOf(source, row);
        if (v === null || !Number.isFinite(v)) continue;
        values.push({ labels: source.spec.labels ? { ...base, ...source.spec.labels } : base, value: counter ? Math.max(0, v) : v });
      }
    });
  }

  /**
   * `switchyard_<kind>_response_time_seconds`: cumulative buckets from Counters.latencyBuckets
   * (upper bounds LATENCY_BUCKETS_MS in seconds, then +Inf), `_sum` and `_count`, built from
   * the counters: prom-client's Histogram can only be fed by observe(), on the data path.
   */
  private histogram(kind: RowKind): object {
    const help = 'Response time of HTTP requests (time to the last byte of the response).';
    return this.bucketMetric(`switchyard_${kind}_response_time_seconds`, help, kind, (c) => c.latencyBuckets, (c) => c.latencySumMs);
  }

  /** A histogram from per-bucket counts kept in Counters (LATENCY_BUCKETS_MS bounds, then +Inf). */
  private bucketMetric(name: string, help: string, kind: RowKind, buckets: (c: Counters) => readonly number[], sumMs: (c: Counters) => number): object {
    const les = [...LATENCY_BUCKETS_MS.map((b) => String(b / 1000)), '+Inf'];
    return this.rowMetric(name, help, 'histogram', kind, (row, values) => {
      const c = row.counters;
      const counts = buckets(c);
      const base = labelsOf(row);
      let cumulative = 0;
      for (let i = 0; i < les.length; i++) {
        cumulative += counts[i] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { ...base, le: les[i]! }, value: cumulative });
      }
      values.push({ metricName: `${name}_sum`, labels: base, value: sumMs(c) / 1000 });
      values.push({ metricName: `${name}_count`, labels: base, value: cumulative });
    });
  }

  /**
   * Overload protection (docs/overload.md), beyond HAProxy's columns (qcur, qmax, qtime feed
   * current_queue, max_queue, queue_time_average_seconds above): the queue-wait histogram,
   * refusals by limit, open retries and connections, rate-limited requests and connections.
   */
  private overloadMetrics(): object[] {
    const backendGauge = (name: string, help: string, get: (b: Backend) => number): object =>
      this.rowMetric(name, help, 'gauge', 'backend', (row, values) => {
        if (row.kind === 'backend') values.push({ labels: labelsOf(row), value: get(row.backend) });
      });
    const frontendCounter = (name: string, help: string, get: (c: Counters) => number): object =>
      this.rowMetric(name, help, 'counter', 'frontend', (row, values) => values.push({ labels: labelsOf(row), value: get(row.counters) }));
    return [
      this.bucketMetric('switchyard_backend_queue_wait_seconds', 'Time requests spent waiting in the queue for a server slot (the backend\'s and its servers\' queues).', 'backend', (c) => c.queueBuckets, (c) => c.queueSumMs),
      this.rowMetric('switchyard_backend_limit_refusals_total', 'Requests or connections refused by an overload limit (503 with x-switchyard-limit), by limit.', 'counter', 'backend', (row, values) => {
        const base = labelsOf(row);
        for (const [limit, n] of refusalCounts(row.counters)) values.push({ labels: { ...base, limit }, value: n });
      }),
      backendGauge('switchyard_backend_queue_limit', 'Requests that may wait in the queue (max_queue or circuit_breaker.max_pending; 0: no queue).', (b) => b.overload.capacity),
      backendGauge('switchyard_backend_open_connections', 'Connections open to the backend\'s servers (busy, idle and connecting).', (b) => b.overload.connections),
      backendGauge('switchyard_backend_open_retries', 'Requests being retried now (counted when circuit_breaker limits retries).', (b) => b.overload.retries),
      frontendCounter('switchyard_frontend_rate_limited_total', 'Requests answered 429 by rate_limit.requests_per_second.', (c) => c.rateLimited),
      frontendCounter('switchyard_frontend_connections_limited_total', 'Connections refused by rate_limit.connections.', (c) => c.connLimited),
    ];
  }

  /** Process-level figures of the balancer: uptime, config generation, last reload, strategies. */
  private addHostMetrics(): void {
    const host = this.host;
    const registers = [this.registry];
    new Gauge({ name: 'switchyard_uptime_seconds', help: 'Seconds since switchyard started.', registers, collect(this: Gauge) { this.set((Date.now() - host.startedAt) / 1000); } });
    new Gauge({ name: 'switchyard_config_generation', help: 'Generation of the running config (1 at start, +1 per applied reload).', registers, collect(this: Gauge) { this.set(host.runtime().generation); } });
    new Gauge({
      name: 'switchyard_last_reload_success', help: '1 when the last reload attempt was applied, 0 when it was rejected (absent before any).', registers,
      collect(this: Gauge) { this.reset(); const r = host.lastReload(); if (r !== null) this.set(r.ok ? 1 : 0); },
    });
    new Gauge({
      name: 'switchyard_backend_strategy_info', help: 'The strategy a backend balances with (value 1).', labelNames: ['backend', 'strategy'], registers,
      collect(this: Gauge) { this.reset(); for (const b of host.runtime().backends.values()) this.set({ backend: b.name, strategy: b.strategyName }, 1); },
    });
    new Counter({
      name: 'switchyard_backend_strategy_errors_total', help: 'Strategy failures (user strategy threw or picked an ineligible server).', labelNames: ['backend'], registers,
      collect(this: Counter) { this.reset(); for (const b of host.runtime().backends.values()) this.inc({ backend: b.name }, b.strategyErrors); },
    });
    new Counter({
      name: 'switchyard_uncaught_exceptions_total', help: 'Exceptions nothing caught, logged and survived (this process and its workers).', registers,
      collect(this: Counter) { this.reset(); this.inc(host.uncaughtExceptions()); },
    });
    new Counter({
      name: 'switchyard_user_code_errors_total', help: 'Failures of user code while serving, per module (threw, or answered what cannot be used); the request fell back.', labelNames: ['module', 'kind'], registers,
      collect(this: Counter) { this.reset(); for (const m of userModuleRecords()) this.inc({ module: m.file, kind: m.kind }, m.errors); },
    });
    new Counter({
      name: 'switchyard_route_hits_total', help: 'Requests a route decided (route="default": no route matched, sent to the default backend).',
      labelNames: ['frontend', 'route', 'action', 'backend'], registers,
      collect(this: Counter) {
        this.reset();
        for (const f of host.runtime().frontends.values()) {
          for (const r of routesJson(f)) this.inc({ frontend: f.name, route: r.name, action: r.action.split(' ')[0]!, backend: r.backend ?? '' }, r.hits);
        }
      },
    });
    new Gauge({
      name: 'switchyard_backend_eligible_servers', help: 'Servers that may take new traffic now.', labelNames: ['backend'], registers,
      collect(this: Gauge) { this.reset(); for (const b of host.runtime().backends.values()) this.set({ backend: b.name }, b.eligible.length); },
    });
  }
}

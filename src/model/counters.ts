// Traffic counters kept by frontends, backends and servers. Plain numeric fields on one class so
// the hot path increments monomorphic properties; stats read them (never write).
// Names follow HAProxy's `show stat` columns so the CSV maps one to one.

/** Upper bounds (ms) of the response-time histogram buckets; the last bucket is +Inf. */
export const LATENCY_BUCKETS_MS: readonly number[] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

export class Counters {
  /** Current sessions (connections for frontends/TCP, requests in flight for HTTP servers). */
  scur = 0;
  smax = 0;
  stot = 0;
  bin = 0;
  bout = 0;
  /** Denied requests/responses. */
  dreq = 0;
  dresp = 0;
  /** Request errors (bad requests, client aborts before a complete request). */
  ereq = 0;
  /** Connection errors to servers. */
  econ = 0;
  /** Response errors (server reset, malformed response, timeout). */
  eresp = 0;
  /** Retries and redispatches. */
  wretr = 0;
  wredis = 0;
  hrsp1xx = 0;
  hrsp2xx = 0;
  hrsp3xx = 0;
  hrsp4xx = 0;
  hrsp5xx = 0;
  hrspOther = 0;
  /** HTTP requests received (frontend) or sent (backend, server). */
  reqTot = 0;
  /** Times this server was picked by the balancer. */
  lbtot = 0;
  cliAbrt = 0;
  srvAbrt = 0;
  /** Time of the last session, ms since epoch; 0 = never. */
  lastSess = 0;
  /** Rolling averages over the last requests (HAProxy averages over 1024): ms. */
  ctimeAvg = 0;
  rtimeAvg = 0;
  ttimeAvg = 0;
  /** Response-time histogram (count per LATENCY_BUCKETS_MS bucket, last is +Inf) and sum (ms). */
  readonly latencyBuckets: number[] = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  latencySumMs = 0;
  latencyCount = 0;
  // ---- overload protection (docs/overload.md)
  /** Requests waiting in the queue now (backend: without a server yet; server: bound to it), and the most seen. */
  qcur = 0;
  qmax = 0;
  /** Time spent in the queue (ms): average over recent dequeues (as ttimeAvg), maximum. */
  qtimeAvg = 0;
  qtimeMax = 0;
  /** Queue wait histogram (LATENCY_BUCKETS_MS bounds) of requests that waited. */
  readonly queueBuckets: number[] = new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0);
  queueSumMs = 0;
  queueCount = 0;
  /** Requests refused by a limit, answered 503 with `x-switchyard-limit` (refusals.ts names them). */
  overMaxconn = 0;
  overQueue = 0;
  overQueueTimeout = 0;
  overMaxRequests = 0;
  overMaxConnections = 0;
  overMaxRetries = 0;
  overRetryBudget = 0;
  /** Frontends: requests answered 429 by `rate_limit`, connections refused by `rate_limit.connections`. */
  rateLimited = 0;
  connLimited = 0;

  sessionOpened(now: number): void {
    this.scur++;
    this.stot++;
    if (this.scur > this.smax) this.smax = this.scur;
    this.lastSess = now;
  }

  sessionClosed(): void {
    if (this.scur > 0) this.scur--;
  }

  /** One response seen: status class and time to last byte. */
  response(status: number, totalMs: number): void {
    if (status < 200) this.hrsp1xx++;
    else if (status < 300) this.hrsp2xx++;
    else if (status < 400) this.hrsp3xx++;
    else if (status < 500) this.hrsp4xx++;
    else if (status < 600) this.hrsp5xx++;
    else this.hrspOther++;
    this.observeLatency(totalMs);
  }

  observeLatency(ms: number): void {
    // Exponential moving average ~ HAProxy's average over the last 1024 samples.
    this.ttimeAvg += (ms - this.ttimeAvg) / (this.latencyCount < 1024 ? this.latencyCount + 1 : 1024);
    this.latencySumMs += ms;
    this.latencyCount++;
    const b = LATENCY_BUCKETS_MS;
    let i = 0;
    while (i < b.length && ms > b[i]!) i++;
    this.latencyBuckets[i]!++;
  }

  /** One request left the queue after `ms`: HAProxy's qtime (average over the last 1024). */
  observeQueue(ms: number): void {
    this.qtimeAvg += (ms - this.qtimeAvg) / (this.queueCount < 1024 ? this.queueCount + 1 : 1024);
    if (ms > this.qtimeMax) this.qtimeMax = ms;
    this.queueSumMs += ms;
    this.queueCount++;
    const b = LATENCY_BUCKETS_MS;
    let i = 0;
    while (i < b.length && ms > b[i]!) i++;
    this.queueBuckets[i]!++;
  }

  observeConnect(ms: number): void {
    this.ctimeAvg += (ms - this.ctimeAvg) / 16;
  }

  observeFirstByte(ms: number): void {
    this.rtimeAvg += (ms - this.rtimeAvg) / 16;
  }
}

/** Numeric fields copied between processes (workers → primary) and summed for totals. */
const FIELDS = [
  'scur',
  'smax',
  'stot',
  'bin',
  'bout',
  'dreq',
  'dresp',
  'ereq',
  'econ',
  'eresp',
  'wretr',
  'wredis',
  'hrsp1xx',
  'hrsp2xx',
  'hrsp3xx',
  'hrsp4xx',
  'hrsp5xx',
  'hrspOther',
  'reqTot',
  'lbtot',
  'cliAbrt',
  'srvAbrt',
  'lastSess',
  'ctimeAvg',
  'rtimeAvg',
  'ttimeAvg',
  'latencySumMs',
  'latencyCount',
  'qcur',
  'qmax',
  'qtimeAvg',
  'qtimeMax',
  'queueSumMs',
  'queueCount',
  'overMaxconn',
  'overQueue',
  'overQueueTimeout',
  'overMaxRequests',
  'overMaxConnections',
  'overMaxRetries',
  'overRetryBudget',
  'rateLimited',
  'connLimited',
] as const satisfies readonly (keyof Counters)[];

/** Fields that are maxima or times, not additive: totals take the max across workers. */
const MAX_FIELDS = new Set<string>(['smax', 'lastSess', 'ctimeAvg', 'rtimeAvg', 'ttimeAvg', 'qmax', 'qtimeAvg', 'qtimeMax']);

export type CounterSnapshot = number[];

export function snapshotCounters(c: Counters): CounterSnapshot {
  const out: number[] = [];
  for (const f of FIELDS) out.push(c[f]);
  for (const b of c.latencyBuckets) out.push(b);
  for (const b of c.queueBuckets) out.push(b);
  return out;
}

/** Overwrite `target` with the combination of per-process snapshots (sums; maxima for maxima). */
export function combineInto(target: Counters, snapshots: readonly CounterSnapshot[]): void {
  for (let i = 0; i < FIELDS.length; i++) {
    const f = FIELDS[i]!;
    let v = 0;
    if (MAX_FIELDS.has(f)) for (const s of snapshots) v = Math.max(v, s[i] ?? 0);
    else for (const s of snapshots) v += s[i] ?? 0;
    (target as unknown as Record<string, number>)[f] = v;
  }
  for (let b = 0; b < target.latencyBuckets.length; b++) {
    let v = 0;
    for (const s of snapshots) v += s[FIELDS.length + b] ?? 0;
    target.latencyBuckets[b] = v;
  }
  const q = FIELDS.length + target.latencyBuckets.length;
  for (let b = 0; b < target.queueBuckets.length; b++) {
    let v = 0;
    for (const s of snapshots) v += s[q + b] ?? 0;
    target.queueBuckets[b] = v;
  }
}

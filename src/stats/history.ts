import type { StatsHost } from '../host.js';
import type { Backend } from '../model/backend.js';
import type { Counters } from '../model/counters.js';
import { modelEvents, type ServerStateEvent } from '../model/events.js';

// The trend view behind `/api/history`: per server (and per backend) a ring buffer sampled every
// 10 s — state, in-flight sessions, request rate, average response time and check duration over
// the interval — holding at least an hour (360 samples), plus the state transitions the model
// announces ('server-state'), timestamped. Memory: ~360 small objects per server.

export interface Sample {
  /** ms since epoch */
  t: number;
  state: string;
  /** Sessions in flight at sample time. */
  active: number;
  /** Requests (HTTP) or connections (TCP) per second over the interval. */
  rate: number;
  /** Average response time of the interval's requests, ms; null: no request finished. */
  avgMs: number | null;
  /** Duration of the last health check, ms; null: not checked. */
  checkMs: number | null;
}

export interface Transition {
  t: number;
  backend: string;
  server: string;
  from: string;
  to: string;
  reason: string;
}

class Ring<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  size = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }

  push(item: T): void {
    this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  /** Oldest first, only those `keep` accepts. */
  toArray(keep: (item: T) => boolean): T[] {
    const out: T[] = [];
    const start = (this.next - this.size + this.capacity) % this.capacity;
    for (let i = 0; i < this.size; i++) {
      const item = this.items[(start + i) % this.capacity]!;
      if (keep(item)) out.push(item);
    }
    return out;
  }
}

interface Series {
  readonly ring: Ring<Sample>;
  prevCount: number;
  prevSum: number;
  prevTotal: number;
  prevAt: number;
  lastSeen: number;
}

export interface HistoryOptions {
  /** Sampling interval, ms (default 10 s). */
  readonly intervalMs?: number;
  /** How long samples are kept, ms (default 1 h; at least 360 samples are kept either way). */
  readonly retentionMs?: number;
  /** Transitions kept (default 2000). */
  readonly maxEvents?: number;
}

export interface ServerHistory {
  name: string;
  address: string;
  state: string;
  samples: Sample[];
}

export interface HistoryJson {
  backend: string;
  minutes: number;
  intervalSeconds: number;
  now: number;
  /** The backend as a whole: state UP/DOWN, its counters' rate and response time. */
  samples: Sample[];
  servers: ServerHistory[];
  events: Transition[];
}

export class History {
  readonly intervalMs: number;
  readonly retentionMs: number;
  readonly capacity: number;
  private readonly series = new Map<string, Series>();
  private readonly events: Ring<Transition>;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: StatsHost,
    options: HistoryOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.retentionMs = options.retentionMs ?? 3_600_000;
    this.capacity = Math.max(360, Math.ceil(this.retentionMs / this.intervalMs) + 1);
    this.events = new Ring<Transition>(options.maxEvents ?? 2000);
  }

  start(): void {
    if (this.timer !== null) return;
    modelEvents.on('server-state', this.onServerState);
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    modelEvents.off('server-state', this.onServerState);
  }

  /** Take one sample of every server and backend (public for tests). */
  sample(now = Date.now()): void {
    for (const backend of this.host.runtime().backends.values()) {
      for (const s of backend.servers) {
        const checked = backend.config.health.type !== 'none' && s.check.durationMs >= 0;
        this.push(`${backend.name}\0${s.id}`, s.counters, backend.mode === 'http', now, s.state, s.active, checked ? Math.round(s.check.durationMs) : null);
      }
      this.push(`${backend.name}\0`, backend.counters, backend.mode === 'http', now, backend.state, backend.counters.scur, null);
    }
    // Forget series of servers gone for longer than the retention.
    for (const [key, series] of this.series) if (now - series.lastSeen > this.retentionMs) this.series.delete(key);
  }

  private push(key: string, c: Counters, http: boolean, now: number, state: string, active: number, checkMs: number | null): void {
    const total = http ? c.reqTot : c.stot;
    let series = this.series.get(key);
    if (series === undefined) {
      series = { ring: new Ring<Sample>(this.capacity), prevCount: c.latencyCount, prevSum: c.latencySumMs, prevTotal: total, prevAt: now, lastSeen: now };
      this.series.set(key, series);
    }
    const dt = now - series.prevAt;
    const dCount = c.latencyCount - series.prevCount;
    const rate = dt > 0 ? Math.max(0, ((total - series.prevTotal) * 1000) / dt) : 0;
    series.ring.push({
      t: now,
      state,
      active,
      rate: Math.round(rate * 100) / 100,
      avgMs: dCount > 0 ? Math.round(((c.latencySumMs - series.prevSum) / dCount) * 100) / 100 : null,
      checkMs,
    });
    series.prevCount = c.latencyCount;
    series.prevSum = c.latencySumMs;
    series.prevTotal = total;
    series.prevAt = now;
    series.lastSeen = now;
  }

  private readonly onServerState = (e: ServerStateEvent): void => {
    this.events.push({ t: Date.now(), backend: e.server.backendName, server: e.server.name, from: e.from, to: e.to, reason: e.reason });
  };

  /** Transitions since `since` (all backends, or one). */
  transitions(since: number, backend: string | null = null): Transition[] {
    return this.events.toArray((e) => e.t >= since && (backend === null || e.backend === backend));
  }

  /** The last `minutes` of one backend: its servers' series and transitions. */
  query(backend: Backend, minutes: number, now = Date.now()): HistoryJson {
    const since = now - minutes * 60_000;
    const keep = (s: Sample): boolean => s.t >= since;
    const servers: ServerHistory[] = backend.servers.map((s) => ({
      name: s.name,
      address: s.address,
      state: s.state,
      samples: this.series.get(`${backend.name}\0${s.id}`)?.ring.toArray(keep) ?? [],
    }));
    return {
      backend: backend.name,
      minutes,
      intervalSeconds: this.intervalMs / 1000,
      now,
      samples: this.series.get(`${backend.name}\0`)?.ring.toArray(keep) ?? [],
      servers,
      events: this.transitions(since, backend.name),
    };
  }
}

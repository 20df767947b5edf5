import type { StatsHost } from '../host.js';
import type { Backend } from '../model/backend.js';
import type { Counters } from '../model/counters.js';
import { modelEvents, type ServerStateEvent } from '../model/events.js';
import type { Server } from '../model/server.js';
import { ZERO_RATES, type RateSource, type Rates } from './row.js';

// Figures HAProxy shows that counters alone do not give: `rate` (sessions in the last second),
// `rate_max`, `req_rate`, and `downtime`. A 1 s timer reads `stot`/`reqTot` and keeps the
// difference; DOWN time follows the model's transition events. All of it lives here, keyed by
// the Counters object (which survives reloads with its frontend/backend/server): the data path
// only ever increments its counters and never calls in.

interface Track {
  prevStot: number;
  prevReq: number;
  prevAt: number;
  rate: number;
  rateMax: number;
  reqRate: number;
  reqRateMax: number;
  downMs: number;
  /** When the current DOWN period began; 0 when not DOWN. */
  downSince: number;
  downs: number;
}

export class Tracker implements RateSource {
  private readonly tracks = new WeakMap<Counters, Track>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly host: StatsHost,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    if (this.timer !== null) return;
    modelEvents.on('server-state', this.onServerState);
    modelEvents.on('backend-refresh', this.onBackendRefresh);
    this.tick();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    modelEvents.off('server-state', this.onServerState);
    modelEvents.off('backend-refresh', this.onBackendRefresh);
  }

  ratesOf(counters: Counters): Readonly<Rates> {
    const t = this.tracks.get(counters);
    if (t === undefined) return ZERO_RATES;
    const down = t.downSince === 0 ? 0 : Date.now() - t.downSince;
    return { rate: t.rate, rateMax: t.rateMax, reqRate: t.reqRate, reqRateMax: t.reqRateMax, downtimeMs: t.downMs + down, downs: t.downs };
  }

  /** One sample of every object of the running config (public for tests). */
  tick(now = Date.now()): void {
    const runtime = this.host.runtime();
    for (const f of runtime.frontends.values()) this.sample(f.counters, now, false, 0);
    for (const b of runtime.backends.values()) {
      for (const s of b.servers) this.sample(s.counters, now, s.state === 'DOWN', s.stateSince);
      this.sample(b.counters, now, b.state === 'DOWN', b.stateSince);
    }
  }

  private track(c: Counters, now: number, down: boolean, since: number): Track {
    let t = this.tracks.get(c);
    if (t === undefined) {
      t = {
        prevStot: c.stot,
        prevReq: c.reqTot,
        prevAt: now,
        rate: 0,
        rateMax: 0,
        reqRate: 0,
        reqRateMax: 0,
        downMs: 0,
        downSince: down ? Math.min(since || now, now) : 0,
        downs: 0,
      };
      this.tracks.set(c, t);
    }
    return t;
  }

  private sample(c: Counters, now: number, down: boolean, since: number): void {
    const t = this.track(c, now, down, since);
    const dt = now - t.prevAt;
    if (dt >= 200) {
      // Counters may go down when a cluster primary recombines after a worker restart: clamp.
      t.rate = Math.max(0, Math.round(((c.stot - t.prevStot) * 1000) / dt));
      t.reqRate = Math.max(0, Math.round(((c.reqTot - t.prevReq) * 1000) / dt));
      if (t.rate > t.rateMax) t.rateMax = t.rate;
      if (t.reqRate > t.reqRateMax) t.reqRateMax = t.reqRate;
      t.prevStot = c.stot;
      t.prevReq = c.reqTot;
      t.prevAt = now;
    }
    this.noteDown(t, down, since, now);
  }

  /** DOWN periods: start at the object's own stateSince when we see it late, end when it leaves. */
  private noteDown(t: Track, down: boolean, since: number, now: number): void {
    if (down && t.downSince === 0) {
      t.downSince = since > 0 && since <= now ? since : now;
      t.downs++;
    } else if (!down && t.downSince !== 0) {
      const end = since > t.downSince && since <= now ? since : now;
      t.downMs += end - t.downSince;
      t.downSince = 0;
    }
  }

  private readonly onServerState = (e: ServerStateEvent): void => {
    const now = Date.now();
    const s: Server = e.server;
    const t = this.track(s.counters, now, e.from === 'DOWN', now);
    this.noteDown(t, e.to === 'DOWN', now, now);
  };

  private readonly onBackendRefresh = (e: { readonly backend: string }): void => {
    const b: Backend | undefined = this.host.runtime().backends.get(e.backend);
    if (b === undefined) return;
    const now = Date.now();
    const down = b.state === 'DOWN';
    this.noteDown(this.track(b.counters, now, down, b.stateSince), down, b.stateSince, now);
  };
}

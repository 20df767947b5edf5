import { Counters, combineInto, snapshotCounters, type CounterSnapshot } from '../model/counters.js';
import type { Runtime } from '../model/runtime.js';
import { combineTls, snapshotTls, TlsCounters, type TlsSnapshot } from '../model/tls-counters.js';
import type { WorkerCounters } from './messages.js';
import { addRouteHits, applyRouteHits, type RouteHitsReport } from '../routing/route-stats.js';

// The totals over workers that the primary's stats show (page, CSV, JSON, /metrics). Each
// worker reports its absolute counters every second; the totals are their sums (maxima for
// maxima), plus what workers that died had counted: a replaced worker starts from zero, and
// without that share the totals would step back (a Prometheus counter reset, a CSV stot that
// shrinks). Cold path: once a second per frontend, backend and server.

/** Per frontend, backend and server: one snapshot (the shape workers report). */
type Table = WorkerCounters;

function emptyTable(): Table {
  return { frontends: {}, backends: {}, servers: {} };
}

function decode(snapshot: CounterSnapshot): Counters {
  const c = new Counters();
  combineInto(c, [snapshot]);
  return c;
}

/** `prev` + what a dead worker counted, with nothing current (its sessions are gone). */
function retire(prev: CounterSnapshot | undefined, dead: CounterSnapshot): CounterSnapshot {
  const c = new Counters();
  combineInto(c, prev === undefined ? [dead] : [prev, dead]);
  c.scur = 0;
  return snapshotCounters(c);
}

/**
 * The rolling averages (connect, first byte, total time) of the total: the workers' averages
 * weighted by how many responses each saw, not the largest of them.
 */
function weightAverages(target: Counters, snapshots: readonly CounterSnapshot[]): void {
  if (snapshots.length < 2) return;
  let n = 0;
  let ctime = 0;
  let rtime = 0;
  let ttime = 0;
  for (const s of snapshots) {
    const c = decode(s);
    n += c.latencyCount;
    ctime += c.ctimeAvg * c.latencyCount;
    rtime += c.rtimeAvg * c.latencyCount;
    ttime += c.ttimeAvg * c.latencyCount;
  }
  if (n === 0) return;
  target.ctimeAvg = ctime / n;
  target.rtimeAvg = rtime / n;
  target.ttimeAvg = ttime / n;
}

function combine(target: Counters, snapshots: (CounterSnapshot | undefined)[]): void {
  const present = snapshots.filter((s): s is CounterSnapshot => s !== undefined);
  if (present.length === 0) return;
  combineInto(target, present);
  weightAverages(target, present);
}

export class WorkerTotals {
  /** worker id → its last report */
  private readonly live = new Map<number, Table>();
  /** What dead workers counted, summed. */
  private readonly retired: Table = emptyTable();
  private retiredUncaught = 0;
  private readonly retiredTls: Record<string, TlsSnapshot> = {};
  private retiredRoutes: RouteHitsReport = {};

  /** Uncaught exceptions over workers, dead ones included. */
  uncaught(): number {
    let n = this.retiredUncaught;
    for (const t of this.live.values()) n += t.uncaught ?? 0;
    return n;
  }

  report(workerId: number, counters: Table): void {
    this.live.set(workerId, counters);
  }

  /** A worker died: keep what it counted in the totals, drop its current sessions. */
  retire(workerId: number): void {
    const last = this.live.get(workerId);
    this.live.delete(workerId);
    if (last === undefined) return;
    this.retiredUncaught += last.uncaught ?? 0;
    this.retiredRoutes = addRouteHits(this.retiredRoutes, last.routes);
    const r = this.retired;
    for (const [name, s] of Object.entries(last.frontends)) r.frontends[name] = retire(r.frontends[name], s);
    for (const [name, s] of Object.entries(last.tls ?? {})) {
      const sum = new TlsCounters();
      combineTls(sum, [this.retiredTls[name], s]);
      this.retiredTls[name] = snapshotTls(sum);
    }
    for (const [name, s] of Object.entries(last.backends)) r.backends[name] = retire(r.backends[name], s);
    for (const [backend, byId] of Object.entries(last.servers)) {
      const into = (r.servers[backend] ??= {});
      for (const [id, s] of Object.entries(byId)) into[id] = retire(into[id], s);
    }
  }

  /** Write the totals into the primary's model, where the stats read them. */
  applyTo(runtime: Runtime): void {
    if (this.live.size === 0 && Object.keys(this.retired.frontends).length === 0) return;
    const tables = [...this.live.values(), this.retired];
    for (const [name, f] of runtime.frontends) {
      combine(
        f.counters,
        tables.map((t) => t.frontends[name]),
      );
      combineTls(f.tls, [...this.live.values()].map((t) => t.tls?.[name]).concat([this.retiredTls[name]]));
    }
    applyRouteHits(runtime, [...this.live.values()].map((t) => t.routes).concat(this.retiredRoutes));
    for (const [name, b] of runtime.backends) {
      combine(
        b.counters,
        tables.map((t) => t.backends[name]),
      );
      for (const s of b.servers) {
        combine(
          s.counters,
          tables.map((t) => t.servers[name]?.[s.id]),
        );
        // The primary serves nothing: its servers' in-flight count is the workers' sum.
        s.active = s.counters.scur;
      }
    }
  }
}

import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.js';
import { combineInto, type CounterSnapshot } from '../model/counters.js';
import { modelEvents } from '../model/events.js';
import type { Runtime } from '../model/runtime.js';
import type { Logger } from '../log.js';
import type { RuntimeComponent } from '../host.js';
import { startSwitchyard, type Switchyard } from '../switchyard.js';
import { isSwitchyardMessage, type PrimaryMessage, type ServerFlags, type WorkerCounters, type WorkerMessage } from './messages.js';

// The cluster primary (`workers: N`): runs health checks, the Consul watch, the stats listener
// and reloads once, on a runtime of its own that serves no traffic; N workers share the
// listeners (node:cluster; Node 20 ignores SO_REUSEPORT) and serve. The primary tells workers
// every change of config, server flags, discovered servers and strategy, and sums the counters
// they report so the stats show totals. A worker that dies is replaced.

const COMBINE_EVERY_MS = 1000;
const FLAGS_RESYNC_MS = 2000;

export function resolveWorkers(workers: number | 'auto'): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

interface WorkerSlot {
  readonly worker: Worker;
  counters: WorkerCounters | null;
  ready: boolean;
}

export interface PrimaryOptions {
  config: Config;
  loadConfig: (file: string) => Promise<Config>;
  components: (sy: Switchyard) => Promise<RuntimeComponent[]>;
  logger: Logger;
}

export class Primary {
  readonly sy: Switchyard;
  private readonly slots = new Map<number, WorkerSlot>();
  private stopping = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly discoveredSent = new Map<string, string>();
  private readonly onRefresh: (e: { backend: string }) => void;
  private readonly onState: () => void;
  restarts = 0;

  private constructor(sy: Switchyard, private readonly count: number, private readonly logger: Logger) {
    this.sy = sy;
    this.onRefresh = (e) => this.forwardDiscovered(e.backend);
    this.onState = () => this.broadcast({ type: 'sy:flags', flags: collectFlags(this.sy.runtime()) });
    modelEvents.on('backend-refresh', this.onRefresh);
    modelEvents.on('server-state', this.onState);
  }

  static async start(options: PrimaryOptions, count: number): Promise<Primary> {
    let primary: Primary | null = null;
    const sy = await startSwitchyard({
      config: options.config,
      loadConfig: options.loadConfig,
      logger: options.logger,
      serve: false,
      components: options.components,
      workers: () => primary && { count: primary.workers, pids: primary.workerPids(), restarts: primary.restarts },
      hooks: {
        applied: (config) => primary?.broadcast({ type: 'sy:config', config }),
        strategyChanged: (backend, strategy) => primary?.broadcast({ type: 'sy:strategy', backend, strategy }),
      },
    });
    primary = new Primary(sy, count, options.logger);
    await primary.forkAll();
    return primary;
  }

  /** Worker processes serving now. */
  get workers(): number {
    return [...this.slots.values()].filter((s) => s.ready).length;
  }

  workerPids(): number[] {
    return [...this.slots.values()].map((s) => s.worker.process.pid!).filter((p) => p !== undefined);
  }

  private async forkAll(): Promise<void> {
    cluster.on('exit', (worker, code, signal) => this.exited(worker, code, signal));
    await Promise.all(Array.from({ length: this.count }, () => this.fork()));
    this.timers.push(setInterval(() => this.combineCounters(), COMBINE_EVERY_MS));
    this.timers.push(setInterval(() => this.broadcast({ type: 'sy:flags', flags: collectFlags(this.sy.runtime()) }), FLAGS_RESYNC_MS));
    for (const t of this.timers) t.unref();
  }

  private fork(): Promise<void> {
    const worker = cluster.fork({ SWITCHYARD_WORKER: '1' });
    const slot: WorkerSlot = { worker, counters: null, ready: false };
    this.slots.set(worker.id, slot);
    return new Promise((resolve) => {
      worker.on('message', (m: unknown) => {
        if (!isSwitchyardMessage(m)) return;
        const msg = m as WorkerMessage;
        if (msg.type === 'sy:counters') slot.counters = msg.counters;
        else if (msg.type === 'sy:hello') this.welcome(worker);
        else if (msg.type === 'sy:ready') {
          slot.ready = true;
          resolve();
        } else if (msg.type === 'sy:applied' && !msg.ok) {
          this.logger.error({ worker: worker.process.pid, errors: msg.errors }, 'a worker rejected a config the primary accepted');
        }
      });
      worker.on('exit', () => resolve());
    });
  }

  /** Bring a new worker to the primary's present: config, discovered servers, flags. */
  private welcome(worker: Worker): void {
    const runtime = this.sy.runtime();
    this.send(worker, { type: 'sy:config', config: runtime.config });
    for (const b of runtime.backends.values()) {
      if (b.discoveredSpecs.length > 0) this.send(worker, { type: 'sy:discovered', backend: b.name, specs: b.discoveredSpecs });
    }
    this.send(worker, { type: 'sy:flags', flags: collectFlags(runtime) });
  }

  private exited(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.slots.get(worker.id);
    this.slots.delete(worker.id);
    if (this.stopping) return;
    this.restarts++;
    this.logger.error({ worker: worker.process.pid, code, signal }, 'worker died; starting a replacement');
    // Its counters stay in the totals until the replacement reports (no step back on the page).
    void slot;
    void this.fork();
  }

  private send(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message);
  }

  broadcast(message: PrimaryMessage): void {
    for (const slot of this.slots.values()) this.send(slot.worker, message);
  }

  private forwardDiscovered(backendName: string): void {
    const backend = this.sy.runtime().backends.get(backendName);
    if (!backend) return;
    const key = JSON.stringify(backend.discoveredSpecs);
    if (this.discoveredSent.get(backendName) === key) return;
    this.discoveredSent.set(backendName, key);
    this.broadcast({ type: 'sy:discovered', backend: backendName, specs: backend.discoveredSpecs });
  }

  /** Totals over workers into the primary's model, where the stats read them. */
  combineCounters(): void {
    const reports = [...this.slots.values()].map((s) => s.counters).filter((c): c is WorkerCounters => c !== null);
    if (reports.length === 0) return;
    const runtime = this.sy.runtime();
    for (const [name, f] of runtime.frontends) combineInto(f.counters, pick(reports.map((r) => r.frontends[name])));
    for (const [name, b] of runtime.backends) {
      combineInto(b.counters, pick(reports.map((r) => r.backends[name])));
      for (const s of b.servers) {
        combineInto(s.counters, pick(reports.map((r) => r.servers[name]?.[s.id])));
        s.active = s.counters.scur;
      }
    }
  }

  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    modelEvents.off('backend-refresh', this.onRefresh);
    modelEvents.off('server-state', this.onState);
    for (const t of this.timers) clearInterval(t);
    const exits = [...this.slots.values()].map((s) => new Promise<void>((resolve) => {
      if (s.worker.isDead()) return resolve();
      s.worker.once('exit', () => resolve());
      const kill = setTimeout(() => s.worker.process.kill('SIGKILL'), timeoutMs + 2000);
      kill.unref();
    }));
    this.broadcast({ type: 'sy:stop', timeoutMs });
    await Promise.all(exits);
    await this.sy.stop(timeoutMs);
  }
}

function pick(snapshots: (CounterSnapshot | undefined)[]): CounterSnapshot[] {
  return snapshots.filter((s): s is CounterSnapshot => s !== undefined);
}

export function collectFlags(runtime: Runtime): ServerFlags[] {
  const out: ServerFlags[] = [];
  for (const b of runtime.backends.values()) {
    for (const s of b.servers) out.push({ backend: b.name, id: s.id, admin: s.admin, checkDown: s.checkDown, consulCritical: s.consulCritical });
  }
  return out;
}

import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/types.js';
import { modelEvents } from '../model/events.js';
import type { Runtime } from '../model/runtime.js';
import type { Logger } from '../log.js';
import type { RuntimeComponent } from '../host.js';
import { startSwitchyard, type Switchyard } from '../switchyard.js';
import { isSwitchyardMessage, type PrimaryMessage, type ServerFlags, type WorkerMessage } from './messages.js';
import { REUSEPORT_ENV, assertPortsFree, chooseListenMode, type ListenMode } from './listen-mode.js';
import { WorkerTotals } from './totals.js';

// The cluster primary (`workers: N`, N > 1): runs what must happen once (health checks, the
// Consul watch and self-registration, the stats listener, config reloads) on a runtime of its
// own that serves no traffic, and forks N workers that serve. Workers share each frontend's
// port by SO_REUSEPORT where the runtime offers it, by node:cluster otherwise (listen-mode.ts).
// The primary tells workers every change of config, server flags, discovered servers and
// strategy, and sums the counters they report so the stats show totals. A worker that dies is
// logged and replaced (with a growing delay when replacements keep dying young).

const COMBINE_EVERY_MS = 1000;
/** Flags are sent on every change; this resync repairs a message a busy worker lost. */
const FLAGS_RESYNC_MS = 2000;
/** A worker that dies younger than this counts as a crash loop for the restart delay. */
const YOUNG_DEATH_MS = 5000;
const MAX_RESTART_DELAY_MS = 30_000;

export function resolveWorkers(workers: number | 'auto'): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

interface WorkerSlot {
  readonly worker: Worker;
  readonly forkedAt: number;
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
  readonly listenMode: ListenMode;
  /** Workers replaced after dying. */
  restarts = 0;
  private readonly slots = new Map<number, WorkerSlot>();
  readonly totals = new WorkerTotals();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly pendingRestarts = new Set<NodeJS.Timeout>();
  private readonly discoveredSent = new Map<string, string>();
  private readonly onRefresh: (e: { backend: string }) => void;
  private readonly onState: () => void;
  private youngDeaths = 0;
  /** All first workers serve: from then on a dead worker is replaced (before, start fails). */
  private started = false;
  private stopping = false;

  private constructor(
    sy: Switchyard,
    listenMode: ListenMode,
    private readonly count: number,
    private readonly logger: Logger,
  ) {
    this.sy = sy;
    this.listenMode = listenMode;
    this.onRefresh = (e) => this.forwardDiscovered(e.backend);
    this.onState = () => this.broadcast({ type: 'sy:flags', flags: collectFlags(this.sy.runtime()) });
    modelEvents.on('backend-refresh', this.onRefresh);
    modelEvents.on('server-state', this.onState);
  }

  /** Starts the primary's runtime and N workers; rejects (all stopped) when one cannot serve. */
  static async start(options: PrimaryOptions, count: number): Promise<Primary> {
    const listenMode = await chooseListenMode();
    if (listenMode === 'reuseport') {
      await assertPortsFree(options.config.frontends.map((f) => ({ name: f.name, host: f.bind.host, port: f.bind.port })));
    }
    let primary: Primary | null = null;
    const sy = await startSwitchyard({
      config: options.config,
      loadConfig: options.loadConfig,
      logger: options.logger,
      serve: false,
      components: options.components,
      workers: () => primary && { count: primary.workers, pids: primary.workerPids(), restarts: primary.restarts, uncaught: primary.totals.uncaught() },
      hooks: {
        applied: (config) => primary?.configApplied(config),
        strategyChanged: (backend, strategy) => primary?.broadcast({ type: 'sy:strategy', backend, strategy }),
      },
    });
    primary = new Primary(sy, listenMode, count, options.logger);
    try {
      await Promise.all(Array.from({ length: count }, () => primary.fork()));
    } catch (error) {
      await primary.stop(0);
      throw error;
    }
    primary.started = true;
    primary.timers.push(setInterval(() => primary.totals.applyTo(primary.sy.runtime()), COMBINE_EVERY_MS));
    primary.timers.push(setInterval(() => primary.broadcast({ type: 'sy:flags', flags: collectFlags(primary.sy.runtime()) }), FLAGS_RESYNC_MS));
    for (const t of primary.timers) t.unref();
    options.logger.info(
      { workers: count, listen: listenMode, pids: primary.workerPids() },
      `${count} workers serving (${listenMode === 'reuseport' ? 'SO_REUSEPORT' : 'node:cluster'} sharing)`,
    );
    return primary;
  }

  /** Worker processes serving now. */
  get workers(): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.ready) n++;
    return n;
  }

  workerPids(): number[] {
    const pids: number[] = [];
    for (const s of this.slots.values()) if (s.worker.process.pid !== undefined) pids.push(s.worker.process.pid);
    return pids;
  }

  /** Fork one worker; resolves when it serves, rejects when it reports a failure or dies first. */
  private fork(): Promise<void> {
    const worker = cluster.fork({ SWITCHYARD_WORKER: '1', [REUSEPORT_ENV]: this.listenMode === 'reuseport' ? '1' : '0' });
    const slot: WorkerSlot = { worker, forkedAt: Date.now(), ready: false };
    this.slots.set(worker.id, slot);
    // IPC to a worker that just died can fail; that is handled by its 'exit', not a crash here.
    worker.on('error', (error) => this.logger.warn({ worker: worker.process.pid, err: error }, 'worker IPC error'));
    return new Promise((resolve, reject) => {
      let failure = '';
      worker.on('message', (m: unknown) => {
        if (!isSwitchyardMessage(m)) return;
        const msg = m as WorkerMessage;
        switch (msg.type) {
          case 'sy:counters':
            this.totals.report(worker.id, msg.counters);
            return;
          case 'sy:hello':
            this.welcome(worker);
            return;
          case 'sy:ready':
            slot.ready = true;
            resolve();
            return;
          case 'sy:failed':
            failure = msg.error;
            this.logger.error({ worker: worker.process.pid, error: msg.error }, 'worker cannot serve');
            return;
          case 'sy:applied':
            if (!msg.ok) this.logger.error({ worker: worker.process.pid, errors: msg.errors }, 'a worker rejected a config the primary accepted');
            return;
        }
      });
      worker.on('exit', (code, signal) => {
        this.exited(slot, code, signal);
        if (!slot.ready) reject(new Error(`worker ${worker.process.pid ?? '?'} could not start: ${failure || `exited (code ${code}, signal ${signal})`}`));
      });
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

  private exited(slot: WorkerSlot, code: number | null, signal: string | null): void {
    const { worker } = slot;
    this.slots.delete(worker.id);
    // What it counted stays in the totals; its in-flight sessions are gone with it.
    this.totals.retire(worker.id);
    if (this.stopping || !this.started) return;
    const lived = Date.now() - slot.forkedAt;
    this.youngDeaths = lived < YOUNG_DEATH_MS ? this.youngDeaths + 1 : 0;
    const delay = this.youngDeaths <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 250 * 2 ** (this.youngDeaths - 1));
    this.restarts++;
    this.logger.error({ worker: worker.process.pid, code, signal, lived_ms: lived, restart_in_ms: delay }, 'worker died; starting a replacement');
    const timer = setTimeout(() => {
      this.pendingRestarts.delete(timer);
      if (this.stopping) return;
      this.fork().then(
        () => this.logger.info({ workers: this.workers, pids: this.workerPids() }, 'replacement worker serving'),
        // Its exit starts the next attempt; nothing more to do here.
        (error: unknown) => this.logger.error({ err: error }, 'replacement worker failed'),
      );
    }, delay);
    this.pendingRestarts.add(timer);
  }

  private configApplied(config: Config): void {
    this.broadcast({ type: 'sy:config', config });
    // Then what Consul reported for each backend, as it stands: a backend the reload added
    // back under an old name would otherwise wait for Consul's next change.
    this.discoveredSent.clear();
    for (const b of this.sy.runtime().backends.values()) if (b.config.discovery) this.forwardDiscovered(b.name);
    const wanted = resolveWorkers(config.workers);
    if (wanted !== this.count) {
      this.logger.warn(
        { running: this.count, configured: wanted },
        `workers: ${String(config.workers)} takes effect at the next start; ${this.count} workers keep serving`,
      );
    }
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

  /** Stop workers (each finishes its in-flight requests within `timeoutMs`), then the primary. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    modelEvents.off('backend-refresh', this.onRefresh);
    modelEvents.off('server-state', this.onState);
    for (const t of this.timers) clearInterval(t);
    for (const t of this.pendingRestarts) clearTimeout(t);
    this.pendingRestarts.clear();
    const exits = [...this.slots.values()].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.worker.isDead()) return resolve();
          s.worker.once('exit', () => resolve());
          const kill = setTimeout(() => s.worker.process.kill('SIGKILL'), timeoutMs + 2000);
          kill.unref();
        }),
    );
    this.broadcast({ type: 'sy:stop', timeoutMs });
    // At once, as a single process does: leave Consul while the workers drain, so that
    // clients are sent elsewhere during the drain (the primary has no listener of its own to
    // drain; its stats listener and checks stop with it).
    await Promise.all([...exits, this.sy.stop(timeoutMs)]);
  }
}

export function collectFlags(runtime: Runtime): ServerFlags[] {
  const out: ServerFlags[] = [];
  for (const b of runtime.backends.values()) {
    for (const s of b.servers) out.push({ backend: b.name, id: s.id, admin: s.admin, checkDown: s.checkDown, consulCritical: s.consulCritical });
  }
  return out;
}

import type { ConsulConfig, ConsulDiscoveryConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Backend } from '../model/backend.js';
import type { Runtime } from '../model/runtime.js';
import { DiscoveryStatus } from '../model/discovery-status.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { describeError, goDuration, RequestContext, type ConsulClient, type ConsulResponse } from './client.js';
import { parseIndex, toSnapshot, type Snapshot } from './entries.js';
import { TokenBucket } from './rate-limit.js';

// One backend's watch: a loop of blocking queries on /v1/health/service/<service>
// (https://developer.hashicorp.com/consul/api-docs/features/blocking), each answer turned into a
// whole snapshot and handed to the backend unless it equals the last one. The data path never
// waits on this loop: the backend keeps serving its last snapshot while Consul is slow, failing
// or gone.

/** What a watch needs from its owner; read at every use, so reloads are followed. */
export interface WatchHost {
  readonly client: ConsulClient;
  readonly config: ConsulConfig;
  /** The runtime serving now (the backend object is looked up there at apply time). */
  readonly runtime: Runtime | null;
  readonly logger: Logger;
  readonly backoff: BackoffOptions;
  /** Allowed on top of `wait` + wait/16 before a request counts as lost. */
  readonly timeoutMs: number;
  /** Answers beyond a burst of 2 in a row go on at most one per this many ms (rate-limit.ts). */
  readonly rateLimitMs: number;
}

/** Consul's docs: "a token bucket with burst of 2". */
const RATE_BURST = 2;

/** Said instead of applying an answer that is not a list of health entries. */
class InvalidAnswer extends Error {
  constructor(body: unknown) {
    const what = typeof body === 'string' ? JSON.stringify(body.slice(0, 60)) : body === null ? 'null' : typeof body;
    super(`invalid answer: expected a JSON array of health entries, got ${what}`);
  }
}

/** A watch's status: the record it keeps on its backend for the stats (model/discovery-status.ts). */
export type WatchStatus = Readonly<DiscoveryStatus>;

type HealthServiceCall = (options: Record<string, unknown>) => Promise<[ConsulResponse, unknown]>;

export class ServiceWatch {
  /** Identity of the settings: a change of any of them means a new watch. */
  readonly key: string;
  private index = 0n;
  /** What the stats show of this watch, kept on the backend (attach()). */
  private readonly record: DiscoveryStatus;
  /** Consecutive answers without a usable X-Consul-Index (rate-limits the fresh reads they force). */
  private badIndex = 0;
  /** Answers with X-Consul-Index 0 were seen (warned once until a good one comes). */
  private zeroIndex = false;
  private readonly bucket: TokenBucket;
  private last: Snapshot | null = null;
  private appliedTo: Backend | null = null;
  private stopped = false;
  private ctx: RequestContext | null = null;
  private sleeping: { timer: NodeJS.Timeout; resolve: () => void } | null = null;
  private done: Promise<void> = Promise.resolve();
  private readonly log: Logger;

  constructor(
    private readonly host: WatchHost,
    readonly backend: string,
    readonly settings: ConsulDiscoveryConfig,
  ) {
    this.key = watchKey(settings);
    this.log = host.logger.child({ backend, service: settings.service });
    this.bucket = new TokenBucket(RATE_BURST, host.rateLimitMs);
    this.record = new DiscoveryStatus(backend, 'consul', settings.service);
  }

  start(): void {
    this.attach();
    this.done = this.loop().catch((error: unknown) => {
      // A bug here must not take the balancer down; the backend keeps its servers.
      this.log.error({ err: error }, 'consul watch stopped by an unexpected error');
    });
  }

  /** Abort the request in flight (blocking queries can hold for minutes) and end the loop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.ctx?.cancel();
    if (this.sleeping) {
      clearTimeout(this.sleeping.timer);
      this.sleeping.resolve();
    }
    await this.done;
  }

  /**
   * The runtime was swapped: if this backend is now another object (removed then re-added by a
   * reload), hand it the last snapshot at once rather than waiting for Consul to change.
   */
  resync(): void {
    this.attach();
    if (this.last === null) return;
    const backend = this.host.runtime?.backends.get(this.backend);
    if (backend && backend !== this.appliedTo) this.apply(this.last);
  }

  /** Put this watch's record on the backend serving now (a reload may have made it anew). */
  private attach(): void {
    const backend = this.host.runtime?.backends.get(this.backend);
    if (backend) backend.discovery = this.record;
  }

  status(): WatchStatus {
    return this.record;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let delay: number;
      try {
        const [res, body] = await this.query();
        if (this.stopped) return;
        if (!Array.isArray(body)) throw new InvalidAnswer(body);
        const wanted = this.answered(res, body);
        const limited = this.bucket.take();
        if (limited > wanted) this.record.rateLimited++;
        delay = Math.max(wanted, limited);
      } catch (error) {
        if (this.stopped) return;
        delay = this.failed(error);
      }
      if (delay > 0 && !this.stopped) await this.sleep(delay);
    }
  }

  private query(): Promise<[ConsulResponse, unknown]> {
    const { client, config } = this.host;
    const s = this.settings;
    const blocking = this.index > 0n;
    const options: Record<string, unknown> = { service: s.service, passing: s.passing };
    if (s.tag !== null) options.tag = s.tag;
    if (s.dc !== null) options.dc = s.dc;
    if (config.token) options.token = config.token; // sent as X-Consul-Token
    // Consul adds up to wait/16 of jitter to a blocking query: allow for it before timing out.
    let timeout = this.host.timeoutMs;
    if (blocking) {
      options.index = this.index.toString();
      options.wait = goDuration(config.waitMs);
      timeout += config.waitMs + Math.ceil(config.waitMs / 16);
    }
    options.timeout = timeout;
    const ctx = new RequestContext();
    options.ctx = ctx;
    this.ctx = ctx;
    // consul@2's typings omit index/wait/timeout/ctx, which lib/utils.js `options()` does read.
    const call = client.health.service.bind(client.health) as unknown as HealthServiceCall;
    return call(options);
  }

  /**
   * A good answer: follow the index, as Consul's blocking-query docs require ("Implementation
   * details"): an index lower than the last one resets the loop to a fresh read (index 0); an
   * index of 0 (a Consul bug) is raised to 1, "always safe to use ... to wait for updates"; a
   * missing or non-numeric one leaves no way to block, so the watch reads afresh with backoff.
   */
  private answered(res: ConsulResponse, body: unknown): number {
    const record = this.record;
    if (record.failures > 0) {
      this.log.info({ failures: record.failures }, 'consul answers again');
      record.failures = 0;
      record.lastError = null;
    }
    record.lastSuccessAt = Date.now();
    let delay = 0;
    const raw = res.headers['x-consul-index'];
    const parsed = parseIndex(raw);
    if (parsed === null) {
      this.badIndex++;
      if (this.badIndex === 1) this.log.warn({ index: raw ?? null }, 'consul answered without a usable X-Consul-Index; polling with backoff');
      this.index = 0n;
      delay = backoffDelay(this.badIndex, this.host.backoff);
    } else {
      if (this.badIndex > 0) this.badIndex = 0;
      if (parsed === 0n && !this.zeroIndex) this.log.warn('consul answered X-Consul-Index 0; blocking on index 1 instead');
      this.zeroIndex = parsed === 0n;
      const next = parsed === 0n ? 1n : parsed;
      if (next < this.index) {
        // Snapshot restore, agent reset: an old index could miss updates for an unbounded time.
        this.log.info({ from: this.index.toString(), to: next.toString() }, 'consul index went backwards; reading afresh');
        this.index = 0n;
      } else {
        this.index = next;
      }
    }
    record.index = this.index.toString();
    this.apply(toSnapshot(body));
    return delay;
  }

  /** Keep the last set; retry later with backoff; the next read is a fresh one (index 0). */
  private failed(error: unknown): number {
    const record = this.record;
    record.failures++;
    record.errors++;
    // After a lost connection or an error, the agent may have restarted or been replaced: an
    // old index could block on a state it never had.
    this.index = 0n;
    record.index = '0';
    const message = describeError(error);
    const delay = backoffDelay(record.failures, this.host.backoff);
    if (message !== record.lastError) {
      const hint = /status 403/.test(message) ? ' (check consul.token)' : '';
      this.log.warn(
        { err: message, failures: record.failures, retryInMs: delay, servers: this.last?.specs.length ?? 0 },
        `consul query failed${hint}; keeping the last known servers`,
      );
    } else {
      this.log.debug({ err: message, failures: record.failures, retryInMs: delay }, 'consul query failed again');
    }
    record.lastError = message;
    return delay;
  }

  /** Hand the snapshot to the backend serving now, unless nothing changed. */
  private apply(snapshot: Snapshot): void {
    const backend = this.host.runtime?.backends.get(this.backend);
    // Gone from the runtime or no longer discovered: sync() is about to stop this watch.
    if (!backend || !backend.config.discovery?.consul) return;
    const previous = this.last;
    if (previous !== null && previous.key === snapshot.key && backend === this.appliedTo) {
      this.record.unchanged++;
      return;
    }
    backend.setDiscovered(snapshot.specs);
    for (const spec of snapshot.specs) {
      const server = backend.serverById(spec.id);
      if (!server) continue;
      const critical = snapshot.critical.has(spec.id);
      if (server.consulCritical !== critical) {
        server.consulCritical = critical;
        server.noteChange(critical ? 'consul: critical' : 'consul: passing');
      }
    }
    this.last = snapshot;
    this.appliedTo = backend;
    backend.discovery = this.record;
    this.record.applied++;
    this.record.servers = snapshot.specs.length;
    this.logChange(previous, snapshot);
  }

  private logChange(previous: Snapshot | null, next: Snapshot): void {
    const before = new Map((previous?.specs ?? []).map((s) => [s.id, s]));
    const after = new Map(next.specs.map((s) => [s.id, s]));
    const added = next.specs.filter((s) => !before.has(s.id)).map((s) => `${s.name} ${s.host}:${s.port}`);
    const removed = [...before.values()].filter((s) => !after.has(s.id)).map((s) => s.name);
    const changed = next.specs
      .filter((s) => {
        const b = before.get(s.id);
        return b !== undefined && (b.host !== s.host || b.port !== s.port || b.weight !== s.weight);
      })
      .map((s) => `${s.name} ${s.host}:${s.port} weight ${s.weight}`);
    const critical = [...next.critical].map((id) => after.get(id)!.name);
    if (added.length + removed.length + changed.length === 0 && previous !== null) {
      this.log.debug({ critical }, 'consul health changed');
    } else {
      this.log.info({ added, removed, changed, critical, servers: next.specs.length }, `consul: ${next.specs.length} server(s) for backend ${this.backend}`);
    }
    for (const s of next.skipped) this.log.warn({ entry: s }, 'consul entry skipped');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeping = null;
        resolve();
      }, ms);
      this.sleeping = {
        timer,
        resolve: () => {
          this.sleeping = null;
          resolve();
        },
      };
    });
  }
}

export function watchKey(s: ConsulDiscoveryConfig): string {
  return JSON.stringify([s.service, s.tag, s.passing, s.dc]);
}

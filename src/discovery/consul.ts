import type { ConsulConfig, ConsulDiscoveryConfig } from '../config/types.js';
import type { RuntimeComponent } from '../host.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../model/runtime.js';
import type { BackoffOptions } from './backoff.js';
import { createConsulClient, type ConsulClient } from './client.js';
import { ServiceWatch, watchKey, type WatchHost, type WatchStatus } from './watch.js';

// Consul discovery as a runtime component: one watch (blocking queries on
// /v1/health/service/<service>) per backend with `discovery.consul`. sync() follows every
// runtime swap: it starts watches for new or changed settings, stops those no longer wanted,
// and re-hands the last snapshot to a backend object that changed. See docs/discovery.md.

export interface ConsulDiscoveryOptions {
  /** First retry delay after a failure (default 100ms); doubles per attempt up to the cap. */
  backoffBaseMs?: number;
  /** Longest retry delay (default 30s). */
  backoffCapMs?: number;
  /** Allowed on top of `wait` + wait/16 before a blocking request counts as lost (default 10s). */
  timeoutMs?: number;
  /**
   * Rate limit of the blocking loop under churn (Consul's docs: token bucket, burst 2): after
   * two answers in a row, at most one query per this many ms (default 500; 0: none). It caps how
   * late a change can be seen while Consul's answers churn; in the steady state it delays nothing.
   */
  rateLimitMs?: number;
  /** Jitter source, [0, 1) (tests). */
  random?: () => number;
  /** Use this client instead of one built from the config (tests, custom agents). */
  client?: ConsulClient;
}

/** Used when a backend asks for discovery but the config has no `consul:` block: the local agent. */
const LOCAL_AGENT: ConsulConfig = Object.freeze({ address: 'http://127.0.0.1:8500', token: null, register: null, waitMs: 30_000 });

export class ConsulDiscovery implements RuntimeComponent, WatchHost {
  client: ConsulClient;
  config: ConsulConfig;
  runtime: Runtime | null = null;
  readonly logger: Logger;
  readonly backoff: BackoffOptions;
  readonly timeoutMs: number;
  readonly rateLimitMs: number;
  private readonly watches = new Map<string, ServiceWatch>();
  private readonly stopping = new Set<Promise<void>>();
  private readonly ownClient: boolean;
  private stopped = false;

  /** `config` null: no `consul:` block (yet); the local agent is used if a backend needs one. */
  constructor(config: ConsulConfig | null, logger: Logger, options: ConsulDiscoveryOptions = {}) {
    this.config = config ?? LOCAL_AGENT;
    this.logger = logger.child({ component: 'consul' });
    this.backoff = { baseMs: options.backoffBaseMs ?? 100, capMs: options.backoffCapMs ?? 30_000, random: options.random ?? Math.random };
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.rateLimitMs = options.rateLimitMs ?? 500;
    this.ownClient = options.client === undefined;
    this.client = options.client ?? createConsulClient(this.config);
  }

  /** Follow the runtime now serving. Never waits on Consul: watches run on their own. */
  sync(runtime: Runtime): void {
    if (this.stopped) return;
    this.runtime = runtime;
    const wanted = new Map<string, ConsulDiscoveryConfig>();
    for (const b of runtime.backends.values()) {
      const d = b.config.discovery?.consul;
      if (d) wanted.set(b.name, d);
    }
    const next = runtime.config.consul ?? LOCAL_AGENT;
    if (clientKey(next) !== clientKey(this.config)) {
      // Another agent, token or wait: every watch restarts against it (each keeps its
      // backend's servers until its first answer).
      this.logger.info({ address: next.address }, 'consul settings changed; restarting watches');
      for (const name of [...this.watches.keys()]) this.stopWatch(name);
      const old = this.client;
      this.config = next;
      if (this.ownClient) {
        this.client = createConsulClient(next);
        void Promise.all(this.stopping).then(() => old.destroy());
      }
    }
    for (const [name, watch] of this.watches) {
      const d = wanted.get(name);
      if (!d || watchKey(d) !== watch.key) this.stopWatch(name);
    }
    for (const [name, d] of wanted) {
      const existing = this.watches.get(name);
      if (existing) {
        existing.resync();
        continue;
      }
      const watch = new ServiceWatch(this, name, d);
      this.watches.set(name, watch);
      watch.start();
    }
  }

  /** Abort every blocking query and wait for the loops to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const name of [...this.watches.keys()]) this.stopWatch(name);
    await Promise.all(this.stopping);
    if (this.ownClient) this.client.destroy();
  }

  /** Per-backend watch state (for the stats page and logs). */
  status(): WatchStatus[] {
    return [...this.watches.values()].map((w) => w.status());
  }

  private stopWatch(name: string): void {
    const watch = this.watches.get(name);
    if (!watch) return;
    this.watches.delete(name);
    const p = watch.stop().finally(() => this.stopping.delete(p));
    this.stopping.add(p);
  }
}

function clientKey(c: ConsulConfig): string {
  return JSON.stringify([c.address, c.token, c.waitMs]);
}

export type { WatchStatus } from './watch.js';

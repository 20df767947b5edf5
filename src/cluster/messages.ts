import type { Config } from '../config/types.js';
import type { ServerSpec } from '../model/server.js';
import type { AdminState } from '../model/server.js';
import type { CounterSnapshot } from '../model/counters.js';
import type { RouteHitsReport } from '../routing/route-stats.js';

// What the primary and its workers say to each other over the cluster IPC channel. The primary
// owns everything that must happen once (health checks, the Consul watch, the stats listener,
// reloads); workers own the data path and report their counters.

/** Observed and desired flags of one server, as the primary sees them. */
export interface ServerFlags {
  readonly backend: string;
  readonly id: string;
  readonly admin: AdminState;
  readonly checkDown: boolean;
  readonly consulCritical: boolean;
}

export type PrimaryMessage =
  | { readonly type: 'sy:config'; readonly config: Config }
  | { readonly type: 'sy:discovered'; readonly backend: string; readonly specs: readonly ServerSpec[] }
  | { readonly type: 'sy:flags'; readonly flags: readonly ServerFlags[] }
  | { readonly type: 'sy:strategy'; readonly backend: string; readonly strategy: string }
  | { readonly type: 'sy:stop'; readonly timeoutMs: number };

/** Counters of one worker: per frontend, backend and server (by id), absolute values. */
export interface WorkerCounters {
  readonly frontends: Record<string, CounterSnapshot>;
  readonly backends: Record<string, CounterSnapshot>;
  /** backend name → server id → snapshot */
  readonly servers: Record<string, Record<string, CounterSnapshot>>;
  /** TLS counters per frontend with TLS or SNI routing (model/tls-counters.ts). */
  readonly tls?: Record<string, number[]>;
  /** Uncaught exceptions in the worker so far (src/uncaught.ts). */
  readonly uncaught?: number;
  /** Hits per route, per frontend with routes (src/routing/route-stats.ts). */
  readonly routes?: RouteHitsReport;
}

export type WorkerMessage =
  /** The worker listens for messages now (anything sent earlier would have been lost). */
  | { readonly type: 'sy:hello' }
  | { readonly type: 'sy:ready'; readonly generation: number }
  /** The first config could not be served (a listener could not bind): the worker exits. */
  | { readonly type: 'sy:failed'; readonly error: string }
  | { readonly type: 'sy:counters'; readonly counters: WorkerCounters }
  | { readonly type: 'sy:applied'; readonly ok: boolean; readonly errors: readonly string[] };

export function isSwitchyardMessage(m: unknown): m is { type: string } {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('sy:');
}

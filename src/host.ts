import type { Runtime } from './model/runtime.js';

// The seams between the composition root (src/switchyard.ts) and the components it wires:
// health checks, discovery and the stats listener. Components read the runtime and change
// server flags in the model; they never reach into the proxy core.

/** Outcome of applying a config (file watch, SIGHUP, POST /api/reload, admin strategy change). */
export interface ReloadResult {
  readonly ok: boolean;
  /** ms since epoch */
  readonly at: number;
  /** Each error names its key path: `backends.api.servers[1].address: expected host:port`. */
  readonly errors: readonly string[];
  /** Runtime generation serving after the attempt. */
  readonly generation: number;
}

/** A component that follows the runtime: started/updated after every swap, stopped at exit. */
export interface RuntimeComponent {
  sync(runtime: Runtime): void;
  /**
   * A graceful stop began: stop announcing this balancer (Consul deregistration), while the
   * listeners drain, so that clients are sent elsewhere during the drain, not after it.
   */
  leave?(): Promise<void>;
  stop(): Promise<void>;
}

/** What the stats listener may ask of the running balancer. */
export interface StatsHost {
  readonly startedAt: number;
  runtime(): Runtime;
  /** Re-read the config file and apply it (admin). */
  reload(): Promise<ReloadResult>;
  /** The last reload attempt, null before any. */
  lastReload(): ReloadResult | null;
  /** Swap a backend's strategy at run time (admin); throws with a message on an unknown one. */
  setStrategy(backend: string, strategy: string): Promise<void>;
  /** With `workers: N`: the serving worker processes (JSON `workers` field); null for one process. */
  workers(): WorkersInfo | null;
  /** Uncaught exceptions so far, in this process and its workers (src/uncaught.ts). */
  uncaughtExceptions(): number;
}

export interface WorkersInfo {
  readonly count: number;
  readonly pids: readonly number[];
  /** Workers replaced after dying. */
  readonly restarts: number;
  /** Uncaught exceptions in the workers, dead ones included. */
  readonly uncaught: number;
}

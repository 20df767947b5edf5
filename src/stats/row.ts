import type { Backend } from '../model/backend.js';
import type { Counters } from '../model/counters.js';
import type { Frontend } from '../model/frontend.js';
import type { Server } from '../model/server.js';

// What one stats row is read from: a frontend, a backend or a server, plus what the stats
// component keeps beside the model (rates, downtime). Built per request from the runtime;
// the column getters (columns.ts) turn it into values. Read only: nothing here writes the model.

/** HAProxy's `type` column: 0 frontend, 1 backend, 2 server. */
export type RowKind = 'frontend' | 'backend' | 'server';

/** Per-object figures the stats tracker keeps (tracker.ts): sessions/s over the last second etc. */
export interface Rates {
  rate: number;
  rateMax: number;
  reqRate: number;
  reqRateMax: number;
  /** DOWN time so far, ms. */
  downtimeMs: number;
  /** Transitions to DOWN seen (backends; servers use their check's own count). */
  downs: number;
}

export const ZERO_RATES: Readonly<Rates> = Object.freeze({ rate: 0, rateMax: 0, reqRate: 0, reqRateMax: 0, downtimeMs: 0, downs: 0 });

interface RowBase {
  readonly pxname: string;
  readonly svname: string;
  /** Proxy id (HAProxy `iid`): frontends then backends, from 1 in config order. */
  readonly iid: number;
  /** Server id inside its backend (HAProxy `sid`), from 1; 0 on FRONTEND/BACKEND rows. */
  readonly sid: number;
  readonly counters: Counters;
  readonly rates: Readonly<Rates>;
  /** ms since epoch, one value for the whole snapshot. */
  readonly now: number;
  /**
   * HAProxy's `pid` (relative process number): 1 in a single process; null when the row adds
   * up several workers, where no one process number is true.
   */
  readonly pid: number | null;
}

export interface FrontendRow extends RowBase {
  readonly kind: 'frontend';
  readonly frontend: Frontend;
}

export interface BackendRow extends RowBase {
  readonly kind: 'backend';
  readonly backend: Backend;
}

export interface ServerRow extends RowBase {
  readonly kind: 'server';
  readonly backend: Backend;
  readonly server: Server;
}

export type Row = FrontendRow | BackendRow | ServerRow;

/** Source of rates for a counters object (the tracker, or zeros in tests that need none). */
export interface RateSource {
  ratesOf(counters: Counters): Readonly<Rates>;
}

import type { FrontendConfig } from '../config/types.js';
import type { Backend } from './backend.js';
import { Counters } from './counters.js';
import type { Routing } from '../routing/routing.js';

/**
 * A frontend: a listening address routed to one backend. The object lives across reloads
 * (kept by name); a reload swaps `config` and `backend` in one assignment each, so a request
 * that already holds its backend finishes on it while the next one sees the new one.
 */
export class Frontend {
  readonly name: string;
  readonly counters = new Counters();
  /** Connections refused because of maxconn / maxconn per source. */
  denied = 0;
  /** Current connections per client address, kept only when maxconnPerSource is set. */
  readonly perSource = new Map<string, number>();

  constructor(
    public config: FrontendConfig,
    /** The default backend (routing.defaultBackend): where requests no route matched go. */
    public backend: Backend,
    /** Routes, rules and the default backend of this generation, swapped in one assignment. */
    public routing: Routing,
  ) {
    this.name = config.name;
  }
}

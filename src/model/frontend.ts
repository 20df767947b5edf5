import type { FrontendConfig } from '../config/types.js';
import type { Backend } from './backend.js';
import { Counters } from './counters.js';
import type { Routing } from '../routing/routing.js';
import { rateLimiterFor, type RateLimiter } from '../overload/rate-limit.js';
import type { RateLimitConfig } from '../config/types.js';
import { TlsCounters } from './tls-counters.js';
import type { SniRoutes } from './sni-routes.js';

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
  /** Handshakes, versions, failures by reason (TLS and SNI-routing frontends). */
  readonly tls = new TlsCounters();
  /** TCP SNI routing: backends by server name (set with the runtime); null: off. */
  sniRoutes: SniRoutes | null = null;

  /** The rate_limit settings `limiter` was built for (a reload that keeps them keeps the buckets). */
  private limiterConfig: RateLimitConfig | null = null;
  private limiter: RateLimiter | null = null;

  constructor(
    public config: FrontendConfig,
    /** The default backend (routing.defaultBackend): where requests no route matched go. */
    public backend: Backend,
    /** Routes, rules and the default backend of this generation, swapped in one assignment. */
    public routing: Routing,
  ) {
    this.name = config.name;
  }

  /** Per client address request rate (`rate_limit.requests_per_second`); null when not limited. */
  rateLimiter(): RateLimiter | null {
    const c = this.config.rateLimit ?? null;
    if (c !== this.limiterConfig) {
      // A new config generation (checked by identity per request, rebuilt only on a change).
      this.limiter = rateLimiterFor(c, this.limiter);
      this.limiterConfig = c;
    }
    return this.limiter;
  }
}

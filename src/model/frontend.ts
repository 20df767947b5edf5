import type { FrontendConfig } from '../config/types.js';
import type { Backend } from './backend.js';
import { Counters } from './counters.js';
import type { Routing } from '../routing/routing.js';
import { rateLimiterFor, type RateLimiter } from '../overload/rate-limit.js';
import type { RateLimitConfig } from '../config/types.js';
import { TlsCounters } from './tls-counters.js';
import type { SniRoutes } from './sni-routes.js';

/**
 * A frontend of one config generation: a listening address routed to its backend. Each reload
 * builds a new Frontend beside the running one (build-and-swap); what must outlive the swap —
 * counters, connections per source, the denied count, TLS counters, rate-limit buckets — is carried over from the previous one
 * of the same name, so a listener that gets the new object in one assignment loses nothing,
 * and a request that already holds the old one finishes on it.
 */
export class Frontend {
  readonly name: string;
  readonly counters: Counters;
  /** Connections refused because of maxconn / maxconn per source. */
  denied = 0;
  /** Current connections per client address, kept only when maxconnPerSource is set. */
  readonly perSource: Map<string, number>;
  /** Handshakes, versions, failures by reason (TLS and SNI-routing frontends); carried over like counters. */
  readonly tls: TlsCounters;
  /** TCP SNI routing: backends by server name (set with the runtime); null: off. */
  sniRoutes: SniRoutes | null = null;

  /** The rate_limit settings `limiter` was built for (a reload that keeps them keeps the buckets). */
  private limiterConfig: RateLimitConfig | null = null;
  private limiter: RateLimiter | null = null;
  /** Connections refused for a bad, missing, slow or untrusted PROXY header (accept_proxy). */
  proxyRefused = 0;

  constructor(
    public config: FrontendConfig,
    /** The default backend (routing.defaultBackend): where requests no route matched go. */
    public backend: Backend,
    /** Routes, rules and the default backend of this generation, swapped in one assignment. */
    public routing: Routing,
    /** The frontend of the same name in the running generation, whose state this one continues. */
    private previous: Frontend | null = null,
  ) {
    this.name = config.name;
    this.counters = previous?.counters ?? new Counters();
    this.perSource = previous?.perSource ?? new Map<string, number>();
    this.tls = previous?.tls ?? new TlsCounters();
  }

  /** The swap step: take over what the previous generation's frontend counted until now. */
  inherit(): void {
    const previous = this.previous;
    if (previous === null) return;
    this.denied = previous.denied;
    // The rate limiter's buckets too: rateLimiter() keeps them when the settings are the same.
    this.limiter = previous.limiter;
    this.limiterConfig = previous.limiterConfig;
    this.previous = null;
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

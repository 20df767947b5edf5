import { LRUCache } from 'lru-cache';
import type { RateLimitConfig } from '../config/types.js';

// Per client address request rate (`rate_limit`, docs/overload.md): a token bucket per address
// (Envoy's local rate limit, Traefik's rateLimit; HAProxy counts the same with a stick table and
// `sc_http_req_rate`). A bucket holds up to `burst` tokens and refills at `requests_per_second`;
// a request takes one, or is refused with the seconds until the next token (`Retry-After`).
//
// The buckets live in a bounded LRU table (lru-cache, `table_size` addresses): an address not
// seen for a while is dropped first and comes back with a full bucket, which errs on the
// client's side. The table is per frontend and per process: N instances behind DNS (or N
// workers) each apply the limit on their own.
//
// Cost when on: one Map lookup and a little arithmetic per request (one small object per new
// address); off: the frontend has no limiter and nothing runs.

class Bucket {
  constructor(
    public tokens: number,
    /** When `tokens` was last brought up to date (ms). */
    public at: number,
  ) {}
}

export class RateLimiter {
  private readonly buckets: LRUCache<string, Bucket>;
  private readonly perMs: number;
  private readonly burst: number;

  constructor(readonly config: RateLimitConfig) {
    this.buckets = new LRUCache<string, Bucket>({ max: config.tableSize });
    this.perMs = config.requestsPerSecond / 1000;
    this.burst = config.burst;
  }

  /**
   * One request from `key` at `now` (ms): 0 when it may go (a token taken), else the whole
   * seconds until a token is back, for `Retry-After` (at least 1).
   */
  take(key: string, now: number): number {
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = new Bucket(this.burst, now);
      this.buckets.set(key, b);
    } else if (now > b.at) {
      b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  /** Addresses remembered now (stats). */
  get size(): number {
    return this.buckets.size;
  }
}

/** The limiter for a config generation: the same one (its buckets) while the settings stay the same. */
export function rateLimiterFor(config: RateLimitConfig | null, previous: RateLimiter | null): RateLimiter | null {
  if (config === null || config.requestsPerSecond <= 0) return null;
  if (previous !== null && JSON.stringify(previous.config) === JSON.stringify(config)) return previous;
  return new RateLimiter(config);
}

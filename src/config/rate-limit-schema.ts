import { z } from 'zod';
import type { RateLimitConfig } from './types.js';

// `rate_limit:` on a frontend and on a route (docs/overload.md): its schema and its normalised
// form, in one place for both (the route schema cannot import the main schema: it imports us).

const int = (min: number) => z.number().int().min(min);

/**
 * Per client address: requests per second with a burst (a token bucket per address), concurrent
 * connections (frontends only). At least one limit (checks.ts); an absent one is not applied.
 */
export const rateLimitSchema = z.preprocess(
  (v) => (v === null ? undefined : v),
  z
    .strictObject({
      requests_per_second: z.number().gt(0, { error: 'expected a number greater than 0' }).optional(),
      burst: int(1).optional(),
      connections: int(1).optional(),
      table_size: int(1).default(100_000),
    })
    .optional(),
);

export type RawRateLimit = z.output<typeof rateLimitSchema>;

/** `rate_limit`: a burst defaults to one second's worth of requests. */
export function normalizeRateLimit(r: RawRateLimit): RateLimitConfig | null {
  if (r === undefined) return null;
  const rps = r.requests_per_second ?? 0;
  return { requestsPerSecond: rps, burst: r.burst ?? Math.max(1, Math.ceil(rps)), connections: r.connections ?? 0, tableSize: r.table_size };
}

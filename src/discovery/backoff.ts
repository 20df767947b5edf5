// Capped exponential backoff with jitter for retrying Consul: attempt 1 waits about `base`,
// each further attempt doubles, never past `cap`. "Equal jitter" (half fixed, half random; AWS
// Architecture Blog, "Exponential Backoff And Jitter", 2015): many balancers that lost the same
// Consul agent do not come back in lock-step, and no retry is ever immediate.

export interface BackoffOptions {
  readonly baseMs: number;
  readonly capMs: number;
  /** [0, 1); Math.random by default (tests pass a fixed one). */
  readonly random?: () => number;
}

export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const exp = Math.min(options.capMs, options.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  const r = (options.random ?? Math.random)();
  return Math.round(exp / 2 + r * (exp / 2));
}

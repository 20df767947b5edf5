// The rate limit Consul's blocking-query docs ask of every watch loop
// (https://developer.hashicorp.com/consul/api-docs/features/blocking, "Rate limit"): when a
// result churns (a flapping check, a badly behaved client re-registering), a blocking loop
// degrades into a busy loop that loads the agent and the balancer. The docs advise against a
// sleep on every iteration (it delays the happy case) and suggest "a token bucket with burst
// of 2": the first two answers in a row go straight on, later ones come at most one per
// `refillMs`. In the steady state (one answer per `wait`, or per rare change) the bucket is
// always full and nothing is delayed.

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.tokens = burst;
    this.last = this.now();
  }

  /**
   * Take one token: 0 when one was there, else how many ms to wait before going on. Taking
   * while empty runs into debt, so callers that do wait as told end up at one per `refillMs`.
   */
  take(): number {
    if (this.refillMs <= 0) return 0;
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) / this.refillMs);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens * this.refillMs);
  }
}

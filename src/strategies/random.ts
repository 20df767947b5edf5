import type { PickContext, Strategy, StrategyServer } from './strategy.js';

// Random with power of two choices (Mitzenmacher, "The Power of Two Choices in Randomized Load
// Balancing", IEEE TPDS 2001): sample two distinct servers at random and send the connection to
// the less loaded one. One choice gives a maximum load of Θ(log n / log log n) over the mean;
// two choices drop it to Θ(log log n), while staying O(1) and needing no shared state (several
// switchyard instances behind DNS do not herd onto the same "least" server, which a global
// least-connections scan would make them do).
//
// Weights: both samples are drawn proportionally to weight (cumulative weights + binary search,
// the second drawn without replacement so the two always differ), and the two are compared on
// active / weight by cross-multiplication. The busier of the two is never chosen; on a tie the
// first sample wins, so at zero load the traffic split is exactly the weighted sampling.
//
// Cost per pick: two PRNG steps and two O(log n) searches over a Float64Array; no allocation.
// Not Math.random(): on Node 20 every call returns a fresh HeapNumber (measured: 47 scavenges
// per 3M calls, versus 0 for integer arithmetic), so the samples come from a mulberry32 PRNG
// (32-bit integer ops only) whose state lives in a Uint32Array (a plain field holding a uint32
// above 2^30 would be boxed). Seeded from Math.random once per instance, so instances differ.

class RandomTwoChoices implements Strategy {
  private servers: StrategyServer[] = [];
  private weights: Float64Array = new Float64Array(0);
  /** cumulative[i] = sum of weights[0..i-1]; cumulative[n] = total. */
  private cumulative: Float64Array = new Float64Array(1);
  private total = 0;
  private readonly state = Uint32Array.of((Math.random() * 4294967296) >>> 0);

  update(eligible: readonly StrategyServer[]): void {
    const servers: StrategyServer[] = [];
    for (const s of eligible) if (s.weight > 0) servers.push(s);
    const n = servers.length;
    const weights = new Float64Array(n);
    const cumulative = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) {
      weights[i] = servers[i]!.effectiveWeight ?? servers[i]!.weight; // slow start ramps it (strategy.ts)
      cumulative[i + 1] = cumulative[i]! + weights[i]!;
    }
    this.servers = servers;
    this.weights = weights;
    this.cumulative = cumulative;
    this.total = cumulative[n]!;
  }

  pick(ctx: PickContext): StrategyServer | null {
    const servers = this.servers;
    const n = servers.length;
    if (n === 0) return null;
    if (n === 1) return servers[0]!;
    const weights = this.weights;
    const cumulative = this.cumulative;
    const avoid = ctx.avoid;

    // Both searches are written out here rather than in a helper: a double passed to a call
    // V8 does not inline is boxed, one allocation per pick.
    const last = n - 1;
    const state = this.state;
    // mulberry32, step 1
    let x = (state[0]! + 0x6d2b79f5) | 0;
    state[0] = x;
    let y = Math.imul(x ^ (x >>> 15), x | 1);
    y ^= y + Math.imul(y ^ (y >>> 7), y | 61);
    let r = (((y ^ (y >>> 14)) >>> 0) / 4294967296) * this.total;
    let lo = 0;
    let hi = last;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (cumulative[mid]! <= r) lo = mid;
      else hi = mid - 1;
    }
    let a = lo;
    // Second sample without replacement: draw in [0, total - w_a) and step over a's range.
    // mulberry32, step 2
    x = (x + 0x6d2b79f5) | 0;
    state[0] = x;
    y = Math.imul(x ^ (x >>> 15), x | 1);
    y ^= y + Math.imul(y ^ (y >>> 7), y | 61);
    r = (((y ^ (y >>> 14)) >>> 0) / 4294967296) * (this.total - weights[a]!);
    if (r >= cumulative[a]!) r += weights[a]!;
    lo = 0;
    hi = last;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (cumulative[mid]! <= r) lo = mid;
      else hi = mid - 1;
    }
    let b = lo;
    if (b === a) b = a === last ? 0 : a + 1; // float edge: r landed on a's upper bound

    if (avoid !== null) {
      // A retry: the failed server is not a candidate. Keep the other sample and replace the
      // failed one by its next neighbour (skipping the kept one); with two servers, take the other.
      if (servers[a] === avoid) {
        const t = a;
        a = b;
        b = t;
      }
      if (servers[b] === avoid) {
        if (n === 2) return servers[a]!;
        b = b + 1 === n ? 0 : b + 1;
        if (b === a) b = b + 1 === n ? 0 : b + 1;
      }
    }
    const sa = servers[a]!;
    const sb = servers[b]!;
    // b strictly less loaded: b.active / w_b < a.active / w_a.
    return sb.active * weights[a]! < sa.active * weights[b]! ? sb : sa;
  }
}

export function random(): Strategy {
  return new RandomTwoChoices();
}

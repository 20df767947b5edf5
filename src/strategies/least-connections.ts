import type { PickContext, Strategy, StrategyServer } from './strategy.js';

// Weighted least-connections. The load of a server is (active + 1) / weight: the load it would
// carry if it took this connection. That is HAProxy's `leastconn` key (lb_fwlc.c:
// (served + 1) * SRV_EWGHT_MAX / eweight) and Envoy's least-request weighting
// (weight / (active + 1)). The "+ 1" is what makes weights matter at low concurrency: with
// plain active / weight an idle 1:2 pair ties at 0/1 vs 0/2 and the weight is ignored until
// connections pile up.
//
// Loads are compared by cross-multiplication, (a.active + 1) * b.weight versus
// (b.active + 1) * a.weight, so equal loads are exactly equal (no float rounding deciding a
// tie) and no division runs per pick.
//
// Ties are broken by rotation: the scan starts just after the last server picked and the first
// of the least loaded wins, so servers that stay tied are taken in turn (round-robin among the
// tied) instead of the first of the list taking everything, which is what a plain
// "first minimum" scan does whenever connections are short and every server sits at 0.
//
// `server.active` is maintained by the backend, so this strategy needs no opened/closed hooks.
// Cost: one O(n) scan per pick, no allocation (n = 30: ~100 ns; see bench/micro-strategies.js).

class LeastConnections implements Strategy {
  private servers: StrategyServer[] = [];
  private weights: Float64Array = new Float64Array(0);
  /** Where the next scan starts: just after the last pick. */
  private cursor = 0;

  update(eligible: readonly StrategyServer[]): void {
    const servers: StrategyServer[] = [];
    for (const s of eligible) if (s.weight > 0) servers.push(s);
    this.servers = servers;
    // The weight now: a slow-start ramp lowers it for a while (strategy.ts).
    this.weights = Float64Array.from(servers, (s) => s.effectiveWeight ?? s.weight);
    if (this.cursor >= servers.length) this.cursor = 0;
  }

  pick(ctx: PickContext): StrategyServer | null {
    const servers = this.servers;
    const weights = this.weights;
    const n = servers.length;
    if (n === 0) return null;
    if (n === 1) return servers[0]!;
    const avoid = ctx.avoid;
    let best = -1;
    let bestLoad = 0; // active + 1 of the best so far
    let bestWeight = 1;
    let i = this.cursor;
    for (let k = 0; k < n; k++) {
      const s = servers[i]!;
      if (s !== avoid) {
        const load = s.active + 1;
        const w = weights[i]!;
        // Strictly less loaded: load / w < bestLoad / bestWeight.
        if (best === -1 || load * bestWeight < bestLoad * w) {
          best = i;
          bestLoad = load;
          bestWeight = w;
        }
      }
      i = i + 1 === n ? 0 : i + 1;
    }
    // best is -1 only when every server is `avoid`, which n > 1 distinct servers rule out;
    // kept as a guard for a caller that hands the same server twice.
    if (best === -1) best = this.cursor;
    this.cursor = best + 1 === n ? 0 : best + 1;
    return servers[best]!;
  }
}

export function leastConnections(): Strategy {
  return new LeastConnections();
}

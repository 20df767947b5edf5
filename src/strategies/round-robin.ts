import type { PickContext, Strategy, StrategyServer } from './strategy.js';

// Smooth weighted round-robin (nginx's algorithm, ngx_http_upstream_get_peer): every step adds
// each server's weight to its current score, takes the highest (the first on a tie) and
// subtracts the total from it. Weights 1:2:1 give b a c b  b a c b …: spread out rather than in
// bursts, and exactly proportional over every period.
//
// Computed in update(), not per pick: from a zero state the sequence is periodic with period
// W = sum(weights / gcd) (after W steps each server was taken exactly w/gcd times and every
// score is back to 0; scaling all weights by a constant scales the scores, not the choices), so
// update() runs the algorithm once over one period and pick() is a cursor step: O(1) whatever
// the number of servers, no allocation. Equal weights make the period the server list itself.
//
// A period costs W × n steps to build (W <= 256 × n with weights capped at 256). Above
// MAX_BUILD_STEPS (~4 ms of update()) the sequence is not stored and pick() runs the algorithm
// live, O(n) per pick: only very large backends with very uneven weights get there.

const MAX_BUILD_STEPS = 1 << 22;

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** The weight to balance with now (slow start ramps it; see strategy.ts). */
function weightOf(s: StrategyServer): number {
  return s.effectiveWeight ?? s.weight;
}

class RoundRobin implements Strategy {
  private servers: StrategyServer[] = [];
  /** One period of the smooth sequence, as indexes into `servers`. Empty: computed live. */
  private sequence = new Uint32Array(0);
  private cursor = 0;
  // The live path (sequence not stored): nginx's scores, kept between picks.
  private weights = new Float64Array(0);
  private current = new Float64Array(0);
  private total = 0;

  update(eligible: readonly StrategyServer[]): void {
    const servers: StrategyServer[] = [];
    for (const s of eligible) if (weightOf(s) > 0) servers.push(s);
    const n = servers.length;
    // Config and Consul weights are integers 0..256; anything else (a slow-start ramp) runs
    // live (no period).
    let integral = true;
    let g = 0;
    for (const s of servers) {
      const w = weightOf(s);
      if (Number.isInteger(w)) g = gcd(w, g);
      else integral = false;
    }
    if (!integral) g = 1;
    const weights = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      weights[i] = weightOf(servers[i]!) / g;
      total += weights[i]!;
    }
    this.servers = servers;
    this.weights = weights;
    this.total = total;
    this.current = new Float64Array(n);
    if (integral && total === n) {
      // Equal weights: the smooth sequence is the list in order.
      this.sequence = Uint32Array.from({ length: n }, (_, i) => i);
    } else if (integral && total * n <= MAX_BUILD_STEPS) {
      const sequence = new Uint32Array(total);
      for (let k = 0; k < total; k++) sequence[k] = this.step(null);
      this.sequence = sequence; // after one period every score is back at 0
    } else {
      this.sequence = new Uint32Array(0);
    }
    // Keep the position rather than restarting at the heaviest server on every change
    // (health flaps refresh often; restarting would favour the heaviest each time).
    if (this.cursor >= this.sequence.length) this.cursor = 0;
  }

  pick(ctx: PickContext): StrategyServer | null {
    const servers = this.servers;
    const n = servers.length;
    if (n === 0) return null;
    const sequence = this.sequence;
    const len = sequence.length;
    const avoid = ctx.avoid;
    if (len === 0) {
      const i = this.step(null);
      return servers[i] === avoid && n > 1 ? servers[this.step(avoid)]! : servers[i]!;
    }
    let c = this.cursor;
    let s = servers[sequence[c]!]!;
    c = c + 1 === len ? 0 : c + 1;
    if (s === avoid && n > 1) {
      // A retry: the next entry naming another server (every server is in every period, so
      // this ends; with weights capped at 256 it is at most a few steps).
      while (servers[sequence[c]!] === avoid) c = c + 1 === len ? 0 : c + 1;
      s = servers[sequence[c]!]!;
      c = c + 1 === len ? 0 : c + 1;
    }
    this.cursor = c;
    return s;
  }

  /** One step of nginx's algorithm over `current`; `skip` takes no part in the choice. */
  private step(skip: StrategyServer | null): number {
    const { servers, weights, current } = this;
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < servers.length; i++) {
      const score = current[i]! + weights[i]!;
      current[i] = score;
      if (score > bestScore && servers[i] !== skip) {
        bestScore = score;
        best = i;
      }
    }
    current[best]! -= this.total;
    return best;
  }
}

export function roundRobin(): Strategy {
  return new RoundRobin();
}

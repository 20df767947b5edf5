import type { PickContext, Strategy, StrategyServer } from './strategy.js';

// Smooth weighted round-robin (nginx's algorithm): every pick adds each server's weight to its
// current score, takes the highest and subtracts the total. Weights 1:2:1 give a b c b a b c b…,
// spread out rather than in bursts, and exactly proportional over every cycle of sum(weights).
// Cost per pick is O(n) with no allocation; with equal weights it degenerates to a plain cursor.

class RoundRobin implements Strategy {
  private servers: readonly StrategyServer[] = [];
  private weights: number[] = [];
  private current: number[] = [];
  private total = 0;
  private uniform = true;
  private cursor = 0;

  update(eligible: readonly StrategyServer[]): void {
    const servers = eligible.filter((s) => s.weight > 0);
    this.servers = servers;
    this.weights = servers.map((s) => s.weight);
    this.current = servers.map(() => 0);
    this.total = this.weights.reduce((a, b) => a + b, 0);
    this.uniform = this.weights.every((w) => w === this.weights[0]);
    if (this.cursor >= servers.length) this.cursor = 0;
  }

  pick(ctx: PickContext): StrategyServer | null {
    const n = this.servers.length;
    if (n === 0) return null;
    if (this.uniform) {
      let s = this.servers[this.cursor]!;
      this.cursor = this.cursor + 1 === n ? 0 : this.cursor + 1;
      if (s === ctx.avoid && n > 1) {
        s = this.servers[this.cursor]!;
        this.cursor = this.cursor + 1 === n ? 0 : this.cursor + 1;
      }
      return s;
    }
    const best = this.next(null);
    if (best === ctx.avoid && n > 1) return this.next(best);
    return best;
  }

  private next(skip: StrategyServer | null): StrategyServer {
    const { servers, weights, current } = this;
    let bestIndex = -1;
    let bestScore = -Infinity;
    for (let i = 0; i < servers.length; i++) {
      current[i]! += weights[i]!;
      if (servers[i] !== skip && current[i]! > bestScore) {
        bestScore = current[i]!;
        bestIndex = i;
      }
    }
    current[bestIndex]! -= this.total;
    return servers[bestIndex]!;
  }
}

export function roundRobin(): Strategy {
  return new RoundRobin();
}

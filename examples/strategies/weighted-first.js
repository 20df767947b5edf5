// weighted-first: a worked user strategy for switchyard (see README.md next to this file).
//
// Fill servers in order instead of spreading: the heaviest server takes connections until it
// holds `perWeight × weight` of them, then the next one, and so on (HAProxy's `balance first`,
// ordered by weight). Useful when servers cost money per instance: light traffic stays on few
// servers and the others can be scaled down. When every server is full it falls back to the
// least loaded (active / weight), so nothing is refused.
//
//   backends:
//     api:
//       strategy: ./strategies/weighted-first.js     # relative to the config file
//       strategy_options: { perWeight: 20 }
//
// The contract, as every strategy follows it:
//   - update() runs on the cold path when the eligible set changes: sort and precompute there;
//   - pick() is the hot path: no allocation, no await, no throw; null only when nothing is eligible;
//   - honour ctx.avoid (a server that just failed for this request) when another one exists;
//   - never pick a weight-0 server.

/** @typedef {import('switchyard').StrategyServer} StrategyServer */
/** @typedef {import('switchyard').PickContext} PickContext */
/** @typedef {import('switchyard').Strategy} Strategy */

/**
 * @param {Readonly<Record<string, unknown>>} [options] `perWeight`: connections per weight unit
 *   a server takes before the next one is used (default 10).
 * @returns {Strategy}
 */
export default function createStrategy(options = {}) {
  const perWeight = typeof options.perWeight === 'number' && options.perWeight > 0 ? options.perWeight : 10;
  /** @type {StrategyServer[]} heaviest first, then by id: the same order on every instance */
  let servers = [];
  /** @type {number[]} capacity of servers[i] */
  let capacity = [];

  return {
    /** @param {readonly StrategyServer[]} eligible */
    update(eligible) {
      servers = eligible.filter((s) => s.weight > 0).sort((a, b) => b.weight - a.weight || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      capacity = servers.map((s) => s.weight * perWeight);
    },

    /** @param {PickContext} ctx */
    pick(ctx) {
      const avoid = ctx.avoid;
      /** @type {StrategyServer | null} */
      let fallback = null;
      for (let i = 0; i < servers.length; i++) {
        const s = servers[i];
        if (s === avoid) continue;
        if (s.active < capacity[i]) return s; // first with room
        if (fallback === null || s.active * fallback.weight < fallback.active * s.weight) fallback = s;
      }
      // All full: the least loaded; `avoid` only when it is the only server.
      return fallback ?? servers[0] ?? null;
    },
  };
}

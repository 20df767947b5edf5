// The public strategy API. Users implement it in their own modules
// (`strategy: ./my-strategy.js`), so it stays small and stable.
//
// A strategy is fed the eligible servers when they change (cold path) and asked to pick one
// per connection or request (hot path). Health, admin states, stickiness and counters are kept
// out of it: the backend hands it only servers that may take traffic and maintains
// `server.active` itself.

/** What a strategy may read of a server. The runtime's Server class satisfies it. */
export interface StrategyServer {
  /** Stable identity: survives reloads and discovery updates. */
  readonly id: string;
  readonly name: string;
  /** host:port */
  readonly address: string;
  /** Configured weight (>= 0). */
  readonly weight: number;
  /**
   * The weight to balance with now: below `weight` while slow start ramps a server back up
   * (docs/overload.md), possibly fractional; absent means `weight`. Proportional strategies
   * read it in update() (it changes only through update()); affinity strategies (ip-hash) keep
   * `weight` so their mapping does not move.
   */
  readonly effectiveWeight?: number;
  /** Connections (TCP) or requests (HTTP) in flight on this server now. */
  readonly active: number;
}

export interface PickContext {
  /** The client's address, as seen on the socket. */
  readonly clientIp: string;
  /** A server that just failed for this request: pick another one if there is one (retries). */
  avoid: StrategyServer | null;
}

export interface Strategy<S extends StrategyServer = StrategyServer> {
  /** Cold path: the eligible set, a weight or a state changed. Rebuild tables here. */
  update(eligible: readonly S[]): void;
  /** Hot path: no allocation, no await, no throw. null when nothing can be picked. */
  pick(ctx: PickContext): S | null;
  /** Optional bookkeeping when a connection/request to `server` starts or ends. */
  opened?(server: S): void;
  closed?(server: S): void;
}

export type StrategyFactory = (options: Readonly<Record<string, unknown>>) => Strategy;

import { LRUCache } from 'lru-cache';
import type { StickyConfig } from '../config/types.js';
import type { PickContext, StrategyServer } from './strategy.js';

// Stickiness wraps any strategy: before asking the strategy, the backend asks the sticky table
// for the server this client is bound to; after a fresh pick it binds the client to it. The
// binding names the server by its stickyId (Server: derived from the backend and server names,
// never the address), so a cookie set by one switchyard instance is honoured by every other.

export interface StickyServer extends StrategyServer {
  readonly stickyId: string;
}

/** The per-request context the balancer fills in; a strategy sees it as a PickContext. */
export interface BalanceContext extends PickContext {
  /** Value of the sticky cookie on the request (HTTP, cookie stickiness), null when absent. */
  stickyCookie: string | null;
  /** Set by a cookie sticky table when the response must (re)set the cookie: the server's stickyId. */
  setStickyCookie: string | null;
}

export interface StickyTable<S extends StickyServer> {
  /** The server this context is bound to, if any (the caller checks it may still serve). */
  lookup(ctx: BalanceContext, byStickyId: ReadonlyMap<string, S>): S | null;
  /** A fresh pick for this context: remember it. */
  bind(ctx: BalanceContext, server: S): void;
}

class CookieSticky<S extends StickyServer> implements StickyTable<S> {
  lookup(ctx: BalanceContext, byStickyId: ReadonlyMap<string, S>): S | null {
    return ctx.stickyCookie === null ? null : (byStickyId.get(ctx.stickyCookie) ?? null);
  }
  bind(ctx: BalanceContext, server: S): void {
    ctx.setStickyCookie = server.stickyId;
  }
}

/** A clock in ms (lru-cache's `perf`): `performance` in production, a hand-moved one in tests. */
export interface StickyClock {
  now(): number;
}

/**
 * Client address -> stickyId, in lru-cache: `size` entries at most (least recently used out
 * first), each expiring `ttl` after its last use (`updateAgeOnGet`). Expired entries are dropped
 * when read (no timer per entry). The value is the stickyId, not the Server, so the table holds
 * no server alive after a reload removed it and a binding survives the server being replaced
 * by an equal one.
 */
class SourceSticky<S extends StickyServer> implements StickyTable<S> {
  private readonly table: LRUCache<string, string>;
  constructor(ttlMs: number, size: number, clock: StickyClock | undefined) {
    this.table = new LRUCache<string, string>({ max: size, ttl: ttlMs, updateAgeOnGet: true, ...(clock ? { perf: clock } : {}) });
  }
  lookup(ctx: BalanceContext, byStickyId: ReadonlyMap<string, S>): S | null {
    const id = this.table.get(ctx.clientIp);
    return id === undefined ? null : (byStickyId.get(id) ?? null);
  }
  bind(ctx: BalanceContext, server: S): void {
    this.table.set(ctx.clientIp, server.stickyId);
  }
}

export function createStickyTable<S extends StickyServer>(config: StickyConfig, clock?: StickyClock): StickyTable<S> {
  return config.type === 'cookie' ? new CookieSticky<S>() : new SourceSticky<S>(config.ttlMs, config.size, clock);
}

import type { PickContext, Strategy, StrategyServer } from '../strategies/strategy.js';
import { withinBudget } from './budget.js';
import type { UserModuleRecord } from './ledger.js';

// A user strategy sees read-only views, never the model: the eligible list it gets is a frozen
// copy of views (made on the cold path, when the set changes), each view a frozen object whose
// getters read the live server (weight, active), and its pick context is one object of its
// own, refilled per pick. It answers with a view; the guard maps it back to the server with a
// Map lookup, which also proves the server is eligible now. Nothing a strategy does to what it
// was given reaches the backend's arrays or its Server objects.

/** The read-only face of a server that user code sees; one per server, stable across updates. */
export class ServerView implements StrategyServer {
  readonly #server: StrategyServer;
  constructor(server: StrategyServer) {
    this.#server = server;
    Object.freeze(this);
  }
  get id(): string {
    return this.#server.id;
  }
  get name(): string {
    return this.#server.name;
  }
  get address(): string {
    return this.#server.address;
  }
  get weight(): number {
    return this.#server.weight;
  }
  get active(): number {
    return this.#server.active;
  }
  toJSON(): Record<string, unknown> {
    return { id: this.id, name: this.name, address: this.address, weight: this.weight, active: this.active };
  }
}

const views = new WeakMap<StrategyServer, ServerView>();

export function serverView(server: StrategyServer): ServerView {
  let v = views.get(server);
  if (v === undefined) {
    v = new ServerView(server);
    views.set(server, v);
  }
  return v;
}

/** Marks a strategy made from a user module: the backend counts its failures on the module. */
export interface UserStrategy<S extends StrategyServer> extends Strategy<S> {
  readonly userModule: UserModuleRecord;
}

/** The guard around a user strategy: views in, servers out. Failures propagate to the backend. */
export class GuardedStrategy<S extends StrategyServer> implements UserStrategy<S> {
  // Keyed by the views handed to the user; looked up with whatever the user's pick returned.
  private byView = new Map<unknown, S>();
  private readonly ctx: { clientIp: string; avoid: StrategyServer | null } = { clientIp: '', avoid: null };
  opened?: (server: S) => void;
  closed?: (server: S) => void;

  constructor(
    private readonly user: Strategy,
    readonly userModule: UserModuleRecord,
  ) {
    if (typeof user.opened === 'function') this.opened = (s) => user.opened!(serverView(s));
    if (typeof user.closed === 'function') this.closed = (s) => user.closed!(serverView(s));
  }

  update(eligible: readonly S[]): void {
    const byView = new Map<unknown, S>();
    const list: ServerView[] = [];
    for (const s of eligible) {
      const v = serverView(s);
      byView.set(v, s);
      list.push(v);
    }
    this.byView = byView;
    this.user.update(Object.freeze(list));
  }

  pick(ctx: PickContext): S | null {
    const mine = this.ctx;
    mine.clientIp = ctx.clientIp;
    mine.avoid = ctx.avoid === null ? null : serverView(ctx.avoid);
    const got = this.user.pick(mine) as unknown;
    if (got === null || got === undefined) return null;
    const server = this.byView.get(got);
    if (server === undefined) throw new Error(`strategy returned a server that is not eligible (${String((got as { name?: unknown }).name)})`);
    return server;
  }
}

const DRY_SERVERS: readonly StrategyServer[] = Object.freeze([
  Object.freeze({ id: 'dry-run:a', name: 'dry-run-a', address: '192.0.2.1:80', weight: 1, active: 0 }),
  Object.freeze({ id: 'dry-run:b', name: 'dry-run-b', address: '192.0.2.2:80', weight: 2, active: 1 }),
]);

/**
 * The load-time dry run: a throwaway instance gets two made-up servers and picks once, within
 * the budget. An endless loop refuses the module (BudgetExceeded propagates); a throw
 * is not a refusal (it may be about the made-up servers): serving would contain it.
 */
export function dryRunStrategy(file: string, make: () => Strategy): void {
  withinBudget(`strategy module ${file} (dry run of update() and pick())`, () => {
    let probe: Strategy;
    try {
      probe = make();
    } catch {
      return; // the real factory call reports it
    }
    // One update() and one pick(): enough to catch a loop on the common path, and as few calls
    // as possible into code whose state may be shared with the instance that will serve
    // (module-level counters, timers it schedules).
    const views = Object.freeze(DRY_SERVERS.map(serverView));
    try {
      probe.update(views);
    } catch {
      /* contained when serving */
    }
    try {
      probe.pick({ clientIp: '192.0.2.10', avoid: null });
    } catch {
      /* contained when serving */
    }
  });
}

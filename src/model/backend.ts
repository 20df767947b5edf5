import type { BackendConfig, Mode } from '../config/types.js';
import type { Strategy, StrategyFactory } from '../strategies/strategy.js';
import { roundRobin } from '../strategies/round-robin.js';
import { isBuiltinStrategy } from '../strategies/names.js';
import { createStickyTable, type BalanceContext, type StickyTable } from '../strategies/sticky.js';
import { Counters } from './counters.js';
import { modelEvents } from './events.js';
import { Server, type ServerSpec, type ServerState, type ServerOwner } from './server.js';
import { BackendOverload } from '../overload/backend-overload.js';
import { LIMIT_MAXCONN, NO_SERVER } from '../overload/refusals.js';
import { SlowStart } from '../overload/slow-start.js';
import { noteUserCodeError } from '../usercode/ledger.js';
import type { UserStrategy } from '../usercode/strategy-guard.js';
import { RUNTIME_ID_PREFIX, RuntimeEdits } from './runtime-edits.js';
import type { DiscoveryStatus } from './discovery-status.js';

/** Passive health: the proxy core reports what real traffic saw (src/health implements it). */
export interface TrafficObserver {
  success(server: Server): void;
  failure(server: Server, reason: 'connect' | 'reset' | 'timeout' | '5xx'): void;
  /**
   * An active check result for a server (from the checker, or a worker's echo of its primary's
   * view): an ejected server returns once checks pass `rise` times (health/passive.ts).
   */
  checked?(server: Server, ok: boolean, rise: number): void;
}

/**
 * A reload's change to one backend, built beside the running one (new strategy instance, new
 * sticky table) without touching it; commit() applies it in the swap step, synchronously.
 */
export interface BackendChange {
  readonly config: BackendConfig;
  readonly factory: StrategyFactory;
  /** The new strategy instance, or null: the running one stays (its state with it). */
  readonly strategy: Strategy<Server> | null;
  /** The new sticky table (null: no stickiness), or undefined: the running one stays. */
  readonly sticky: StickyTable<Server> | null | undefined;
  readonly stickyKey: string;
}

/**
 * A strategy is written against StrategyServer and only ever returns a server that update()
 * gave it: handed Servers, it picks Servers (user strategies are checked: strategy-guard.ts).
 * The one place that tells the type checker so.
 */
function forServers(strategy: Strategy): Strategy<Server> {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- picks are the Server instances update() received (above)
  return strategy as Strategy<Server>;
}

/**
 * A backend: its servers (static ones from the config merged with discovered ones), the
 * eligible set handed to the strategy, stickiness, and the BACKEND counters. Backend objects
 * live across reloads (kept by name) so that servers, sticky tables and counters survive.
 */
export class Backend implements ServerOwner {
  readonly name: string;
  config: BackendConfig;
  mode: Mode;
  /** Every server, static first then discovered, in a stable order. */
  servers: Server[] = [];
  /** Servers that may take new traffic (UP, not backup; backups when no active one is UP). */
  eligible: Server[] = [];
  readonly counters = new Counters();
  /** The strategy running now (the config's, or the one set by PUT /api/backends/NAME/strategy). */
  strategyName: string;
  private strategyOptions: Readonly<Record<string, unknown>>;
  private strategy: Strategy<Server>;
  /** The factory the running strategy came from: a user module's new version is a new factory. */
  private factory: StrategyFactory;
  /** User strategies are untrusted: their picks are checked and errors contained. */
  private guarded: boolean;
  private readonly fallback: Strategy<Server> = forServers(roundRobin());
  private sticky: StickyTable<Server> | null;
  private stickyKey: string;
  private readonly byStickyId = new Map<string, Server>();
  private readonly byId = new Map<string, Server>();
  /**
   * The servers the last rebuild removed, by id. If the next rebuild brings one back (a failed
   * reload rolled back, a discovery flap) it is the same object again: counters, health state
   * and the connections it still carries stay together.
   */
  private removed = new Map<string, Server>();
  private staticSpecs: ServerSpec[] = [];
  private discovered: ServerSpec[] = [];
  strategyErrors = 0;
  /** Serving with servers that passive detection ejected, because none is UP (see refresh). */
  panic = false;
  /** Set by the health component; null: no passive detection. */
  observer: TrafficObserver | null = null;
  /** Last time the eligible set went from empty to non-empty or back: HAProxy's lastchg. */
  stateSince = Date.now();
  /** Queue and circuit breaker (src/overload): thresholds from the config, counts for life. */
  readonly overload: BackendOverload = new BackendOverload(this);
  /** Why the last pick() returned null: a limit name (overload/refusals.ts) or NO_SERVER. */
  refusal = NO_SERVER;
  /** With a null pick: the sticky server the request is bound to, full now (it may wait for it). */
  refusedServer: Server | null = null;
  /** Weight ramps of servers back in service (`slow_start`); ticks feed the strategy new weights. */
  private readonly slowStart = new SlowStart(() => this.rampTick());
  /** The first rebuild is done: servers added later ramp up (slow start never applies at start, as in HAProxy). */
  private built = false;
  /** Changes made through the runtime API (runtime-edits.ts); a reload clears them. */
  readonly edits = new RuntimeEdits();
  /** Set by the discovery watch of a backend with `discovery:`; shown only while the config has one. */
  discovery: DiscoveryStatus | null = null;

  constructor(config: BackendConfig, factory: StrategyFactory) {
    this.name = config.name;
    this.config = config;
    this.mode = config.mode;
    this.strategyName = config.strategy;
    this.strategyOptions = config.strategyOptions;
    this.strategy = forServers(factory(config.strategyOptions));
    this.factory = factory;
    this.guarded = !isBuiltinStrategy(config.strategy);
    this.sticky = config.sticky ? createStickyTable<Server>(config.sticky) : null;
    this.stickyKey = JSON.stringify(config.sticky);
    this.staticSpecs = staticSpecs(config);
    this.overload.configure(config);
    this.slowStart.configure(config.slowStart);
    this.rebuildServers();
    this.built = true;
  }

  /**
   * Build a new config's change to this backend (reload), touching nothing: servers are kept
   * by id at commit; the strategy is new when the config names another one than is running,
   * other options, or a new version of its module. The file wins: a
   * strategy set through the admin API lasts until the next reload, as HAProxy's runtime
   * changes do. An unchanged strategy keeps its instance and its state (round-robin position,
   * ip-hash table); an unchanged sticky setting keeps its table and bindings. A user factory
   * that throws or runs out of its time budget throws here, before anything changed.
   */
  prepare(config: BackendConfig, factory: StrategyFactory): BackendChange {
    const strategyChanged =
      config.strategy !== this.strategyName ||
      moduleVersion(factory) !== moduleVersion(this.factory) ||
      JSON.stringify(config.strategyOptions) !== JSON.stringify(this.strategyOptions);
    const strategy = strategyChanged ? forServers(factory(config.strategyOptions)) : null;
    const stickyKey = JSON.stringify(config.sticky);
    const sticky = stickyKey === this.stickyKey ? undefined : config.sticky ? createStickyTable<Server>(config.sticky) : null;
    return { config, factory, strategy, sticky, stickyKey };
  }

  /** The swap step for this backend: synchronous, cannot fail half-way. */
  commit(change: BackendChange): void {
    const config = change.config;
    this.config = config;
    this.mode = config.mode;
    if (change.strategy !== null) {
      this.strategy = change.strategy;
      this.factory = change.factory;
      this.strategyName = config.strategy;
      this.strategyOptions = config.strategyOptions;
      this.guarded = !isBuiltinStrategy(config.strategy);
    }
    if (change.sticky !== undefined) {
      this.sticky = change.sticky;
      this.stickyKey = change.stickyKey;
    }
    this.staticSpecs = staticSpecs(config);
    if (!config.discovery) this.discovered = [];
    this.overload.configure(config);
    this.slowStart.configure(config.slowStart);
    this.edits.clear();
    this.rebuildServers();
  }

  /** prepare() and commit() in one step (tests, tools). */
  apply(config: BackendConfig, factory: StrategyFactory): void {
    this.commit(this.prepare(config, factory));
  }

  /**
   * Swap the strategy (admin API). The new one starts from the current eligible set;
   * in-flight connections are not touched (`server.active` is the backend's, not the strategy's).
   * Without options, the config's `strategy_options` go with the config's strategy.
   */
  setStrategy(name: string, factory: StrategyFactory, options?: Readonly<Record<string, unknown>>): void {
    const opts = options ?? (name === this.config.strategy ? this.config.strategyOptions : {});
    const next = forServers(factory(opts));
    this.guarded = !isBuiltinStrategy(name);
    this.updateStrategy(next, this.eligible);
    this.strategy = next;
    this.factory = factory;
    this.strategyName = name;
    this.strategyOptions = opts;
  }

  /** A user strategy's update() may throw: count it and keep serving through the fallback. */
  private updateStrategy(strategy: Strategy<Server>, eligible: readonly Server[]): void {
    if (!this.guarded) {
      strategy.update(eligible);
      return;
    }
    try {
      strategy.update(eligible);
    } catch (error) {
      this.strategyFailed(error);
    }
  }

  /** Discovery hands a whole snapshot of this backend's discovered servers. */
  setDiscovered(specs: readonly ServerSpec[]): void {
    this.discovered = [...specs];
    this.rebuildServers();
  }

  /** The last discovered snapshot (a cluster primary forwards it to its workers). */
  get discoveredSpecs(): readonly ServerSpec[] {
    return this.discovered;
  }

  serverById(id: string): Server | undefined {
    return this.byId.get(id);
  }

  serverByName(name: string): Server | undefined {
    for (const s of this.servers) if (s.name === name || s.id === name) return s;
    return undefined;
  }

  /** After a runtime API edit (this.edits): rebuild the server list with it. */
  applyEdits(): void {
    this.rebuildServers();
  }

  /** Merge static and discovered specs into servers, reusing existing Server objects by id. */
  private rebuildServers(): void {
    const next: Server[] = [];
    const seen = new Set<string>();
    for (const spec of this.edits.apply([...this.staticSpecs, ...this.discovered])) {
      if (seen.has(spec.id)) continue;
      seen.add(spec.id);
      let server = this.byId.get(spec.id) ?? this.removed.get(spec.id);
      if (server) {
        if (server.host !== spec.host || server.port !== spec.port) {
          server.moveTo(spec.host, spec.port);
          server.closeIdle();
        }
        server.name = spec.name;
        server.weight = spec.weight;
        server.backup = spec.backup;
        server.maxconn = spec.maxconn;
        server.retired = false;
      } else {
        const source = spec.id.startsWith('static:') ? 'static' : spec.id.startsWith(RUNTIME_ID_PREFIX) ? 'runtime' : 'consul';
        server = new Server(this, { ...spec, source });
        if (this.built) server.rampSince = Date.now();
      }
      if (this.edits.overrides.get(spec.id)?.weight === undefined) server.initialWeight = spec.weight;
      const sendProxy = spec.sendProxy ?? this.config.sendProxy ?? 0;
      if (server.sendProxy !== sendProxy) {
        server.sendProxy = sendProxy;
        server.closeIdle();
      }
      next.push(server);
    }
    const removed = new Map<string, Server>();
    for (const old of this.servers) {
      if (!seen.has(old.id)) {
        // Removed: no new traffic; what it holds finishes (bounded by the server timeout).
        old.retired = true;
        old.closeIdle();
        removed.set(old.id, old);
      }
    }
    this.removed = removed;
    this.servers = next;
    this.byId.clear();
    this.byStickyId.clear();
    for (const s of next) {
      this.byId.set(s.id, s);
      this.byStickyId.set(s.stickyId, s);
    }
    this.refresh();
  }

  /** Recompute the eligible set and feed the strategy. Call after any server flag changes. */
  refresh(): void {
    const wasEmpty = this.eligible.length === 0;
    let eligible = this.servers.filter((s) => s.up && !s.backup);
    if (eligible.length === 0) eligible = this.servers.filter((s) => s.up && s.backup);
    // Panic mode (Envoy's panic threshold): when passive detection alone left nothing to pick,
    // trying the ejected servers beats answering 503 to everyone: a one-server backend whose
    // server restarted must not stay dark for a whole ejection period.
    this.panic = false;
    if (eligible.length === 0) {
      eligible = this.servers.filter(isPanicEligible);
      this.panic = eligible.length > 0;
    }
    for (const s of this.servers) s.eligibleNow = false;
    for (const s of eligible) s.eligibleNow = true;
    this.eligible = eligible;
    if (wasEmpty !== (eligible.length === 0)) this.stateSince = Date.now();
    this.slowStart.apply(this.servers, Date.now());
    this.updateStrategy(this.strategy, eligible);
    this.fallback.update(eligible);
    this.overload.refreshed();
    modelEvents.emit('backend-refresh', { backend: this.name });
  }

  /** Server.noteChange: one of ours changed its visible state. */
  serverStateChanged(server: Server, from: ServerState, to: ServerState, reason: string, loggedBy: string | null): void {
    this.refresh();
    modelEvents.emit('server-state', { server, from, to, reason, loggedBy });
  }

  /** A slow-start step: new effective weights to the strategy (the eligible set is unchanged). */
  private rampTick(): void {
    this.slowStart.apply(this.servers, Date.now());
    this.updateStrategy(this.strategy, this.eligible);
    this.fallback.update(this.eligible);
  }

  /** 'UP' while a server is UP, else 'DOWN' (the BACKEND row's status; DOWN in panic mode too). */
  get state(): 'UP' | 'DOWN' {
    return this.eligible.length > 0 && !this.panic ? 'UP' : 'DOWN';
  }

  /**
   * Hot path: choose a server for one connection (TCP) or request (HTTP). Sticky binding first,
   * then the strategy; a full server (maxconn) is skipped once. null: nothing available now,
   * `refusal` says why (a limit, or NO_SERVER) and `refusedServer` names a full sticky server.
   * With overload protection on (a queue or a breaker), backend-wide thresholds are checked
   * first and every eligible server is tried before giving up.
   */
  pick(ctx: BalanceContext): Server | null {
    const overload = this.overload;
    if (overload.active) {
      const limit = overload.admission();
      if (limit !== NO_SERVER) return this.refuse(limit, null);
    }
    const sticky = this.sticky;
    if (sticky !== null) {
      const bound = sticky.lookup(ctx, this.byStickyId);
      if (bound !== null && bound !== ctx.avoid && bound.stickable) {
        if (bound.hasRoom) return bound;
        // Full: with a queue it waits for its own server (HAProxy); without redispatch it may not move.
        if (overload.active && (overload.capacity > 0 || !overload.redispatch)) return this.refuse(LIMIT_MAXCONN, bound);
      }
    }
    let server = this.guarded ? this.guardedPick(ctx) : this.strategy.pick(ctx);
    if (server !== null && !server.hasRoom) {
      const avoid = ctx.avoid;
      ctx.avoid = server;
      server = this.guarded ? this.guardedPick(ctx) : this.strategy.pick(ctx);
      ctx.avoid = avoid;
      if (server !== null && !server.hasRoom) server = overload.active ? this.anyWithRoom(ctx) : null;
    }
    if (server === null) return this.refuse(this.eligible.length === 0 ? NO_SERVER : LIMIT_MAXCONN, null);
    if (sticky !== null) sticky.bind(ctx, server);
    return server;
  }

  /** A queued request takes `server` without asking the strategy (a slot freed there): stickiness still records it. */
  assign(ctx: BalanceContext, server: Server): void {
    if (this.sticky !== null) this.sticky.bind(ctx, server);
  }

  private refuse(limit: string, bound: Server | null): null {
    this.refusal = limit;
    this.refusedServer = bound;
    return null;
  }

  /** Overload path only: the first eligible server (weight > 0, not `avoid`) below its maxconn. */
  private anyWithRoom(ctx: BalanceContext): Server | null {
    for (const s of this.eligible) if (s.hasRoom && s.weight > 0 && s !== ctx.avoid) return s;
    return null;
  }

  /** A user strategy's pick, checked: a throw, no answer or an ineligible server falls back. */
  private guardedPick(ctx: BalanceContext): Server | null {
    let server: Server | null = null;
    let problem: unknown = null;
    try {
      server = this.strategy.pick(ctx) ?? null;
      if (server === null) {
        if (this.eligible.length > 0) problem = new Error('strategy returned no server');
      } else if (!this.eligible.includes(server)) {
        problem = new Error(`strategy returned a server that is not eligible (${String((server as { name?: unknown }).name)})`);
      }
    } catch (error) {
      problem = error;
    }
    if (problem === null) return server;
    this.strategyFailed(problem);
    return this.fallback.pick(ctx);
  }

  /** A connection/request to `server` starts: counters and strategy bookkeeping. */
  opened(server: Server, now: number): void {
    server.active++;
    server.counters.sessionOpened(now);
    server.counters.lbtot++;
    this.counters.sessionOpened(now);
    this.counters.lbtot++;
    const s = this.strategy;
    if (s.opened !== undefined) {
      if (this.guarded) {
        try {
          s.opened(server);
        } catch (error) {
          this.strategyFailed(error);
        }
      } else s.opened(server);
    }
  }

  closed(server: Server): void {
    if (server.active > 0) server.active--;
    server.counters.sessionClosed();
    this.counters.sessionClosed();
    const s = this.strategy;
    if (s.closed !== undefined) {
      if (this.guarded) {
        try {
          s.closed(server);
        } catch (error) {
          this.strategyFailed(error);
        }
      } else s.closed(server);
    }
    // A slot freed: the oldest waiter that can use it gets it now.
    if (this.overload.waiting > 0) this.overload.drain(server);
  }

  /** A user strategy failed: counted (stats, metrics) and emitted (switchyard logs it). */
  private strategyFailed(error: unknown): void {
    this.strategyErrors++;
    const userModule = (this.strategy as Partial<UserStrategy<Server>>).userModule;
    if (userModule !== undefined) noteUserCodeError(userModule, error);
    modelEvents.emit('strategy-error', { backend: this.name, error });
  }

  /** Backend removed by a reload: its servers take no new traffic. */
  retire(): void {
    for (const s of this.servers) {
      s.retired = true;
      s.closeIdle();
    }
    this.overload.retire();
    this.slowStart.stop();
  }
}

/** The version of the user module a factory runs (undefined: a built-in). */
function moduleVersion(factory: StrategyFactory): string | undefined {
  return (factory as { module?: { version?: string } }).module?.version;
}

/** Down only because real traffic failed (ejected / connect failed), not by admin or checks. */
function isPanicEligible(s: Server): boolean {
  return !s.retired && !s.backup && s.admin === 'ready' && !s.checkDown && !s.consulCritical && (s.ejected || s.connectFailed);
}

function staticSpecs(config: BackendConfig): ServerSpec[] {
  return config.servers.map((s) => ({
    id: `static:${s.name}`,
    name: s.name,
    host: s.address.host,
    port: s.address.port,
    weight: s.weight,
    backup: s.backup,
    maxconn: s.maxconn,
    sendProxy: s.sendProxy,
  }));
}

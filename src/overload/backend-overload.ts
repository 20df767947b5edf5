import type { BackendConfig } from '../config/types.js';
import type { Counters } from '../model/counters.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';
import {
  countRefusal,
  LIMIT_MAX_CONNECTIONS,
  LIMIT_MAX_PENDING,
  LIMIT_MAX_QUEUE,
  LIMIT_MAX_REQUESTS,
  LIMIT_MAX_RETRIES,
  LIMIT_RETRY_BUDGET,
  LIMIT_TIMEOUT_QUEUE,
  NO_SERVER,
} from './refusals.js';
import { WaitList, type QueueWaiter } from './wait-list.js';

// A backend's overload protection (docs/overload.md): the queue (`max_queue`, `timeouts.queue`)
// and the circuit breaker (`circuit_breaker`, Envoy's thresholds). One object per Backend for
// its whole life, so counts of what is in flight survive reloads; configure() takes the
// thresholds of each config generation.
//
// The queue works as HAProxy's pendconns: a request that finds every server it may use at its
// maxconn waits in the backend's FIFO (or, sticky, in its server's own FIFO); the moment a
// slot frees (Backend.closed) the older of the server's own head and the backend's head gets
// it: the freed server for a sticky waiter, the strategy's pick for the backend's (so weights
// and least-connections still decide). Past `timeouts.queue` the waiter gets its 503.
//
// Cost when off: `active` is false and pick() never calls in here; closed() reads `waiting`.

/** What the queue needs of the backend it belongs to (model/backend.ts). */
export interface QueueOwner {
  readonly counters: Counters;
  readonly servers: readonly Server[];
  /** The server a pick was refused for because the client is bound to it (sticky), or null. */
  readonly refusedServer: Server | null;
  pick(ctx: BalanceContext): Server | null;
  /** Bind `ctx` to `server` as if the strategy had picked it (stickiness, counters). */
  assign(ctx: BalanceContext, server: Server): void;
}

export class BackendOverload {
  /** Waiting now: the backend queue plus every server's own (sticky) queue. */
  waiting = 0;
  /** Connections open to the backend's servers: busy, pooled idle and connecting. */
  connections = 0;
  /** Exchanges that are retrying now (Envoy's open retries). */
  retries = 0;
  /** Requests without a server assigned (HAProxy's backend queue). */
  readonly queue: WaitList;
  /** A queue or a breaker threshold is configured: pick() asks admission() and looks everywhere for room. */
  active = false;
  /** Waiting requests at most (0: no queue) and the key that sets it, named in the 503. */
  capacity = 0;
  capacityLimit = LIMIT_MAX_QUEUE;
  queueTimeoutMs = 0;
  redispatch = true;
  maxRequests = 0;
  maxConnections = 0;
  /** -1: no limit on open retries. */
  maxRetries = -1;
  /** Retry budget: open retries at most max(budgetMin, budgetShare × requests in flight). */
  budget = false;
  budgetShare = 0;
  budgetMin = 0;
  /**
   * Sticky requests waiting for a slot on one server (HAProxy's server pendconns), by server:
   * made when the first one waits, dropped once empty (rescan), so a server that never queues
   * has no list, and the waiters can be moved when their server goes DOWN or away.
   */
  private readonly serverQueues = new Map<Server, WaitList>();
  private draining = false;
  private rescanScheduled = false;

  constructor(private readonly backend: QueueOwner) {
    this.queue = new WaitList(backend.counters, this);
  }

  configure(c: BackendConfig): void {
    const cb = c.circuitBreaker ?? null;
    const maxQueue = c.maxQueue ?? 0;
    const maxPending = cb?.maxPending ?? 0;
    // `circuit_breaker.max_pending` is the same bound seen as a breaker: the smaller one wins.
    if (maxPending > 0 && (maxQueue === 0 || maxPending < maxQueue)) {
      this.capacity = maxPending;
      this.capacityLimit = LIMIT_MAX_PENDING;
    } else {
      this.capacity = maxQueue;
      this.capacityLimit = LIMIT_MAX_QUEUE;
    }
    this.queueTimeoutMs = c.queueTimeoutMs ?? c.timeouts.connectMs;
    this.redispatch = c.redispatch ?? true;
    this.maxRequests = cb?.maxRequests ?? 0;
    this.maxConnections = cb?.maxConnections ?? 0;
    this.maxRetries = cb?.maxRetries ?? -1;
    const budget = cb?.retryBudget ?? null;
    this.budget = budget !== null;
    this.budgetShare = budget === null ? 0 : budget.percent / 100;
    this.budgetMin = budget === null ? 0 : budget.minRetryConcurrency;
    this.active = this.capacity > 0 || this.maxRequests > 0 || this.maxConnections > 0 || !this.redispatch;
  }

  /** The backend-wide threshold a new request would cross ('' when it may go). */
  admission(): string {
    const inFlight = this.backend.counters.scur;
    if (this.maxRequests > 0 && inFlight >= this.maxRequests) return LIMIT_MAX_REQUESTS;
    // Every request in flight holds one connection; idle pooled ones are closed to make room
    // (upstream.ts), so only busy ones count against a new request.
    if (this.maxConnections > 0 && inFlight >= this.maxConnections) return LIMIT_MAX_CONNECTIONS;
    return '';
  }

  /** May a request refused for `limit` wait? Full servers and connections wait; max_requests does not (Envoy). */
  canWait(limit: string): boolean {
    return this.capacity > 0 && limit !== LIMIT_MAX_REQUESTS && limit !== NO_SERVER;
  }

  /**
   * Queue `w` (for `server`'s own queue when it is bound to that server). False when the queue
   * is full: the caller answers 503 naming `capacityLimit` (counted here).
   */
  enqueue(w: QueueWaiter, server: Server | null, now: number): boolean {
    if (this.waiting >= this.capacity) {
      countRefusal(this.backend.counters, this.capacityLimit);
      return false;
    }
    w.waitSince = now;
    if (server === null) {
      this.queue.push(w);
    } else {
      this.serverQueue(server).push(w);
    }
    return true;
  }

  /** `server`'s own queue (qcur/qmax in its counters), made on first use. */
  private serverQueue(server: Server): WaitList {
    let list = this.serverQueues.get(server);
    if (list === undefined) {
      list = new WaitList(server.counters, this);
      this.serverQueues.set(server, list);
    }
    return list;
  }

  /** The client went away while waiting. */
  leave(w: QueueWaiter): void {
    w.waitList?.remove(w);
  }

  /** `timeouts.queue` passed for `w` (its session's deadline): it leaves with its 503. */
  timedOut(w: QueueWaiter, now: number): void {
    if (w.waitList === null) return;
    w.waitList.remove(w);
    this.observe(null, now - w.waitSince);
    countRefusal(this.backend.counters, LIMIT_TIMEOUT_QUEUE);
    w.dequeued(null, LIMIT_TIMEOUT_QUEUE);
  }

  /**
   * A slot freed (on `freed`, or anywhere: null): hand it to the oldest waiter that can use it,
   * and go on while waiters fit. Re-entry (a dispatched request that ends at once frees its
   * slot again) is folded into the running loop.
   */
  drain(freed: Server | null): void {
    if (this.waiting === 0 || this.draining) return;
    this.draining = true;
    try {
      const backend = this.backend;
      for (;;) {
        const own = freed === null ? null : (this.serverQueues.get(freed)?.head ?? null);
        const ownFits = own !== null && freed!.stickable && freed!.hasRoom && this.admission() === '';
        const general = this.queue.head;
        let w: QueueWaiter;
        let server: Server | null;
        if (ownFits && (general === null || own.waitSince <= general.waitSince)) {
          w = own;
          server = freed;
        } else if (general !== null && freed !== null && freed.eligibleNow && freed.hasRoom && freed.effectiveWeight > 0 && this.admission() === '') {
          // HAProxy's process_srv_queue: the server that freed a slot takes the backend's next
          // waiter itself (any eligible server is one the strategy may use).
          w = general;
          server = freed;
          backend.assign(general.ctx, freed);
        } else if (general !== null) {
          server = backend.pick(general.ctx);
          if (server === null && backend.refusedServer !== null) {
            // It has become bound to a server meanwhile (source stickiness): wait for that one.
            const bound = backend.refusedServer;
            this.queue.remove(general);
            this.serverQueue(bound).insertByAge(general);
            continue;
          }
          if (server !== null) w = general;
          else if (ownFits) {
            w = own;
            server = freed;
          } else break;
        } else break;
        w.waitList!.remove(w);
        this.observe(server, Date.now() - w.waitSince);
        w.dequeued(server, NO_SERVER);
      }
    } finally {
      this.draining = false;
    }
  }

  /** The eligible set or server states changed (Backend.refresh): look again, once, soon. */
  refreshed(): void {
    if (this.waiting === 0 || this.rescanScheduled) return;
    this.rescanScheduled = true;
    setImmediate(rescan, this);
  }

  /**
   * Sticky waiters whose server can no longer take them go to the backend queue (redispatch)
   * or get their 503; then whatever fits now (servers UP again, a maxconn raised) is served.
   */
  rescan(): void {
    this.rescanScheduled = false;
    for (const [s, list] of this.serverQueues) {
      if (list.length > 0 && !s.stickable) {
        while (list.head !== null) {
          const w = list.head;
          list.remove(w);
          if (this.redispatch) this.queue.insertByAge(w);
          else {
            this.observe(null, Date.now() - w.waitSince);
            w.dequeued(null, NO_SERVER);
          }
        }
      }
      if (list.length === 0) this.serverQueues.delete(s);
      else if (s.hasRoom) this.drain(s);
    }
    this.drain(null);
  }

  /** The backend was removed by a reload: nobody will free a slot for its waiters. */
  retire(): void {
    for (const list of this.serverQueues.values()) {
      while (list.head !== null) {
        const w = list.head;
        list.remove(w);
        w.dequeued(null, NO_SERVER);
      }
    }
    this.serverQueues.clear();
    while (this.queue.head !== null) {
      const w = this.queue.head;
      this.queue.remove(w);
      w.dequeued(null, NO_SERVER);
    }
  }

  /**
   * A request is about to be retried: '' and it counts as an open retry, or the limit that
   * refuses it (counted). Open retries at most `max_retries`, and at most the retry budget:
   * a share of the requests in flight with a floor (Envoy's retry_budget), so retries cannot
   * multiply the load of a backend that is failing.
   */
  startRetry(): string {
    if (this.maxRetries >= 0 && this.retries >= this.maxRetries) {
      countRefusal(this.backend.counters, LIMIT_MAX_RETRIES);
      return LIMIT_MAX_RETRIES;
    }
    if (this.budget) {
      // The request being retried is in flight too (its failed attempt was just closed).
      const allowed = Math.max(this.budgetMin, this.budgetShare * (this.backend.counters.scur + 1));
      if (this.retries >= allowed) {
        countRefusal(this.backend.counters, LIMIT_RETRY_BUDGET);
        return LIMIT_RETRY_BUDGET;
      }
    }
    this.retries++;
    return '';
  }

  /** Retry limits configured: only then are retries counted. */
  get limitsRetries(): boolean {
    return this.maxRetries >= 0 || this.budget;
  }

  /** Connections at `max_connections`: close the oldest idle pooled one to make room for a new one. */
  makeRoomForConnection(): void {
    if (this.maxConnections === 0 || this.connections < this.maxConnections) return;
    let oldest: Server | null = null;
    for (const s of this.backend.servers) if (s.idle.length > 0 && (oldest === null || s.idle.length > oldest.idle.length)) oldest = s;
    if (oldest !== null) oldest.idle.shift()!.destroy();
  }

  private observe(server: Server | null, ms: number): void {
    this.backend.counters.observeQueue(ms);
    if (server !== null) server.counters.observeQueue(ms);
  }
}

function rescan(overload: BackendOverload): void {
  overload.rescan();
}

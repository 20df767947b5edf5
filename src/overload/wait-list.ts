import type { Counters } from '../model/counters.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';

// A FIFO of requests (HTTP) or connections (TCP) waiting for a server slot, as HAProxy's
// pendconn queues: one per backend (no server assigned yet) and one per server (sticky requests
// waiting for the server they are bound to). Intrusive: the links are fields of the waiting
// session itself, so queueing a request allocates nothing and a client that goes away leaves
// in O(1). (A server's own list is made when its first sticky request waits, and dropped by
// the next rescan that finds it empty: overload/backend-overload.ts.)

/** What waits: an HTTP exchange or a TCP session (they carry the link fields). */
export interface QueueWaiter {
  waitNext: QueueWaiter | null;
  waitPrev: QueueWaiter | null;
  /** The list it waits in; null when not waiting. */
  waitList: WaitList | null;
  /** When it started waiting (ms since epoch). */
  waitSince: number;
  readonly ctx: BalanceContext;
  /**
   * It leaves the queue: with a server (the slot is its own: the caller opens the session on
   * it), or with none and the limit that refused it (`timeout_queue`, `no_server`...): its 503.
   */
  dequeued(server: Server | null, limit: string): void;
}

/** Told when the length of any of its lists changes (the backend's total of waiting requests). */
export interface WaitCount {
  waiting: number;
}

export class WaitList {
  head: QueueWaiter | null = null;
  tail: QueueWaiter | null = null;
  length = 0;

  constructor(
    /** qcur / qmax of the backend or server this list belongs to. */
    private readonly counters: Counters,
    private readonly total: WaitCount,
  ) {}

  push(w: QueueWaiter): void {
    w.waitList = this;
    w.waitNext = null;
    w.waitPrev = this.tail;
    if (this.tail === null) this.head = w;
    else this.tail.waitNext = w;
    this.tail = w;
    this.grew();
  }

  /** Insert keeping the list ordered by waitSince (a sticky waiter moved to the backend queue). */
  insertByAge(w: QueueWaiter): void {
    let after = this.tail;
    while (after !== null && after.waitSince > w.waitSince) after = after.waitPrev;
    w.waitList = this;
    w.waitPrev = after;
    w.waitNext = after === null ? this.head : after.waitNext;
    if (w.waitNext === null) this.tail = w;
    else w.waitNext.waitPrev = w;
    if (after === null) this.head = w;
    else after.waitNext = w;
    this.grew();
  }

  remove(w: QueueWaiter): void {
    if (w.waitList !== this) return;
    if (w.waitPrev === null) this.head = w.waitNext;
    else w.waitPrev.waitNext = w.waitNext;
    if (w.waitNext === null) this.tail = w.waitPrev;
    else w.waitNext.waitPrev = w.waitPrev;
    w.waitNext = null;
    w.waitPrev = null;
    w.waitList = null;
    this.length--;
    this.total.waiting--;
    this.counters.qcur = this.length;
  }

  private grew(): void {
    this.length++;
    this.total.waiting++;
    const c = this.counters;
    c.qcur = this.length;
    if (this.length > c.qmax) c.qmax = this.length;
  }
}

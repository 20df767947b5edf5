// Timeouts without a timer per request. Every HTTP session and TCP tunnel keeps a `deadline`
// (ms since epoch, 0 = none) and what to do when it passes; one unref'd interval checks them
// all. Setting a deadline is a field write on the hot path, where re-arming a socket timer per
// request would cost a timer-list insertion each time. Resolution: SWEEP_MS.

import { SlotList } from '../model/slot-list.js';

export const SWEEP_MS = 50;

export interface Expirable {
  deadline: number;
  expire(now: number): void;
}

/** Not a Set: see slot-list.ts (one add and one delete per connection). */
const tracked = new SlotList<Expirable>(Symbol('switchyard.sweepSlot'));
let timer: NodeJS.Timeout | null = null;

/**
 * A clock that moves every sweep: good enough for inactivity deadlines (±SWEEP_MS) and free to
 * read per chunk, where Date.now() would be a call each time.
 */
export let coarseNow = Date.now();

function sweep(): void {
  const now = Date.now();
  coarseNow = now;
  // Backwards: expire() may untrack members (SlotList.at).
  for (let i = tracked.size - 1; i >= 0; i--) {
    if (i >= tracked.size) continue;
    const item = tracked.at(i);
    if (item.deadline !== 0 && item.deadline <= now) item.expire(now);
  }
}

export function track(item: Expirable): void {
  tracked.add(item);
  if (timer === null) {
    coarseNow = Date.now();
    timer = setInterval(sweep, SWEEP_MS);
    timer.unref();
  }
}

export function untrack(item: Expirable): void {
  tracked.delete(item);
  if (tracked.size === 0 && timer !== null) {
    clearInterval(timer);
    timer = null;
  }
}

// A set of objects that come and go once per connection or request (open sessions, the
// sweeper's deadlines, a server's busy connections): an array, with each member's index kept on
// the member under the list's own symbol, so adding and deleting are a few field writes, and a
// deleted member leaves no reference behind.
//
// Why not a Set: V8 keeps a Set in a hash table that a steady add/delete churn rehashes every few
// dozen deletions, and a rehashed (obsolete) table keeps every entry it had plus a link to its
// successor. Once a long-lived Set's table is in the old generation, its successors are
// allocated there too (ordered-hash-table.cc, Rehash), and each dead one holds on to the young
// members it listed: the scavenger takes them as live, so every session of the last second is
// copied and promoted until the next mark-compact. With a new connection per request that was
// 3 MB promoted per scavenge and a mark-compact about every second (docs/performance.md).

type Slotted = Record<symbol, number | undefined>;

export class SlotList<T extends object> implements Iterable<T> {
  private readonly items: T[] = [];

  /** `slot`: the property the member's index is kept under; one symbol per kind of list. */
  constructor(private readonly slot: symbol) {}

  get size(): number {
    return this.items.length;
  }

  add(item: T): void {
    if (this.has(item)) return;
    (item as Slotted)[this.slot] = this.items.length;
    this.items.push(item);
  }

  has(item: T): boolean {
    const i = (item as Slotted)[this.slot];
    return i !== undefined && i >= 0 && this.items[i] === item;
  }

  /** Out of the list (the last member takes its place); false when it was not in it. */
  delete(item: T): boolean {
    const i = (item as Slotted)[this.slot];
    const items = this.items;
    if (i === undefined || i < 0 || items[i] !== item) return false;
    (item as Slotted)[this.slot] = -1;
    const last = items.pop()!;
    if (last !== item) {
      items[i] = last;
      (last as Slotted)[this.slot] = i;
    }
    return true;
  }

  /**
   * Member `i` (0 <= i < size). A walk from size - 1 down to 0 that may delete members as it
   * goes misses none: a deletion moves only the last member, which was already visited (it may
   * be seen twice).
   */
  at(i: number): T {
    return this.items[i]!;
  }

  clear(): void {
    for (const item of this.items) (item as Slotted)[this.slot] = -1;
    this.items.length = 0;
  }

  /** The members as they are now: the loop may add or delete meanwhile (cold paths). */
  [Symbol.iterator](): Iterator<T> {
    return this.items.slice()[Symbol.iterator]();
  }
}

import t from 'tap';
import { SlotList } from '../src/model/slot-list.js';

// SlotList: the per-connection collections (open sessions, the sweeper's deadlines, a server's
// busy connections) without a Set's rehash chains (slot-list.ts). What they rely on: one entry
// per member whatever the order of adds and deletes, an object in several lists at once, and a
// backwards walk that deletes as it goes missing no member.

interface Item {
  readonly id: number;
}
const kA = Symbol('a');
const kB = Symbol('b');
const items = (n: number): Item[] => Array.from({ length: n }, (_, id) => ({ id }));
const ids = (list: SlotList<Item>): number[] => [...list].map((i) => i.id).sort((a, b) => a - b);

t.test('add, has and delete keep exactly the members, in any order', async (t) => {
  const list = new SlotList<Item>(kA);
  const all = items(50);
  for (const i of all) list.add(i);
  list.add(all[3]!);
  t.equal(list.size, 50, 'adding a member twice keeps one entry');
  // Delete in a scrambled order, checking the rest each time.
  const order = all.map((i) => i.id).sort((a, b) => ((a * 37) % 50) - ((b * 37) % 50));
  const left = new Set(order);
  for (const id of order) {
    t.equal(list.delete(all[id]!), true);
    t.equal(list.delete(all[id]!), false, 'a second delete finds nothing');
    left.delete(id);
    if (id % 7 === 0)
      t.same(
        ids(list),
        [...left].sort((a, b) => a - b),
      );
  }
  t.equal(list.size, 0);
  t.notOk(list.has(all[0]!));
  list.add(all[0]!);
  t.ok(list.has(all[0]!), 'a deleted member can come back');
});

t.test('one object in two lists: each keeps its own slot', async (t) => {
  const a = new SlotList<Item>(kA);
  const b = new SlotList<Item>(kB);
  const all = items(10);
  for (const i of all) a.add(i);
  for (const i of [...all].reverse()) b.add(i);
  a.delete(all[2]!);
  b.delete(all[7]!);
  t.same(ids(a), [0, 1, 3, 4, 5, 6, 7, 8, 9]);
  t.same(ids(b), [0, 1, 2, 3, 4, 5, 6, 8, 9]);
  t.notOk(a.has(all[2]!));
  t.ok(b.has(all[2]!));
});

t.test('a backwards walk that deletes members (the sweeper) visits every member', async (t) => {
  const list = new SlotList<Item>(kA);
  const all = items(40);
  for (const i of all) list.add(i);
  const seen = new Set<number>();
  for (let i = list.size - 1; i >= 0; i--) {
    if (i >= list.size) continue;
    const item = list.at(i);
    seen.add(item.id);
    // Every third member expires; some visits also end another member (a lower id).
    if (item.id % 3 === 0) list.delete(item);
    if (item.id % 5 === 0 && item.id >= 10) list.delete(all[item.id - 10]!);
  }
  const deletedUnseen = all.filter((i) => !seen.has(i.id) && list.has(i));
  t.same(deletedUnseen, [], 'no member still in the list was skipped');
  for (const i of all) if (list.has(i)) t.ok(seen.has(i.id), `member ${i.id} visited`);
});

t.test('iterating while deleting (drain, shutdown_sessions) sees the members of the start', async (t) => {
  const list = new SlotList<Item>(kA);
  const all = items(8);
  for (const i of all) list.add(i);
  const visited: number[] = [];
  for (const i of list) {
    visited.push(i.id);
    list.delete(i);
    if (i.id === 0) list.delete(all[5]!);
  }
  t.same(visited, [0, 1, 2, 3, 4, 5, 6, 7]);
  t.equal(list.size, 0);
  for (const i of all) list.add(i);
  list.clear();
  t.equal(list.size, 0);
  t.notOk(list.has(all[4]!), 'clear empties it');
});

// Table-driven pick sequences per built-in strategy: the algorithm-specific properties the
// conformance suite (test/strategies-conformance.test.ts) does not cover.
import t from 'tap';
import { roundRobin } from '../src/strategies/round-robin.js';
import { leastConnections } from '../src/strategies/least-connections.js';
import { ipHash } from '../src/strategies/ip-hash.js';
import { random } from '../src/strategies/random.js';
import type { Strategy, StrategyServer } from '../src/strategies/strategy.js';
import { Backend } from '../src/model/backend.js';
import { backendConfig } from './support/backend-config.js';
import { ctx, testServer, type TestServer } from './support/strategy-conformance.js';

const names = (seq: readonly (StrategyServer | null)[]) => seq.map((s) => s?.name ?? '-').join(' ');
const countBy = (seq: readonly (StrategyServer | null)[]) => {
  const m: Record<string, number> = {};
  for (const s of seq) m[s?.name ?? '-'] = (m[s?.name ?? '-'] ?? 0) + 1;
  return m;
};
const picks = (s: Strategy, n: number, ip = (_i: number) => '192.0.2.1') => Array.from({ length: n }, (_, i) => s.pick(ctx(ip(i))));
const ips = (n: number, salt = 0) => Array.from({ length: n }, (_, i) => `${10 + salt}.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

t.test('round-robin: exact smooth weighted sequences', async (t) => {
  const cases: { weights: number[]; n: number; counts: number[]; prefix?: string }[] = [
    { weights: [1, 2, 1], n: 40, counts: [10, 20, 10], prefix: 's2 s1 s3 s2 s2 s1 s3 s2' },
    { weights: [5, 1, 1], n: 7, counts: [5, 1, 1], prefix: 's1 s1 s2 s1 s3 s1 s1' }, // nginx's own example
    { weights: [1, 1, 1], n: 30, counts: [10, 10, 10], prefix: 's1 s2 s3 s1 s2 s3' },
    { weights: [3, 0, 1], n: 40, counts: [30, 0, 10] },
  ];
  for (const c of cases) {
    const s = roundRobin();
    s.update(c.weights.map((w, i) => testServer(i + 1, w)));
    const seq = picks(s, c.n);
    const got = countBy(seq);
    t.same(
      c.counts.map((_, i) => got[`s${i + 1}`] ?? 0),
      c.counts,
      `${c.weights.join(':')} over ${c.n} picks`,
    );
    if (c.prefix) t.equal(names(seq.slice(0, c.prefix.split(' ').length)), c.prefix, 'spread, not bursts');
  }
});

t.test('least-connections: rotates among tied servers', async (t) => {
  const s = leastConnections();
  const set = [testServer(1), testServer(2), testServer(3)];
  s.update(set);
  t.equal(names(picks(s, 7)), 's1 s2 s3 s1 s2 s3 s1', 'all idle: in turn, not always the first');
  set[1]!.active = 4; // s2 busy: s1 and s3 share, in turn
  t.equal(names(picks(s, 6)), 's3 s1 s3 s1 s3 s1');
  // Weights count at zero load: (active + 1) / weight, HAProxy's leastconn key.
  const w = leastConnections();
  w.update([testServer(1, 1), testServer(2, 2), testServer(3, 1)]);
  t.equal(names(picks(w, 3)), 's2 s2 s2', 'idle 1:2:1: the heaviest takes a new connection');
});

t.test('least-connections under held connections (Backend.opened/closed)', async (t) => {
  const b = new Backend(backendConfig([1, 2, 1], { strategy: 'least-connections' }), leastConnections);
  const [s1, s2, s3] = b.servers as [(typeof b.servers)[0], (typeof b.servers)[0], (typeof b.servers)[0]];
  const held: typeof b.servers = [];
  const open = (n: number) => {
    for (let i = 0; i < n; i++) {
      const p = b.pick({ clientIp: '192.0.2.1', avoid: null, stickyCookie: null, setStickyCookie: null })!;
      b.opened(p, Date.now());
      held.push(p);
    }
  };
  for (let k = 1; k <= 4; k++) {
    open(8);
    t.same([s1.active, s2.active, s3.active], [2 * k, 4 * k, 2 * k], `${8 * k} held: proportional to weight 1:2:1`);
  }
  // Release all of s3's: the next four go to s3 (it is now the least loaded by far).
  for (const p of held.filter((p) => p === s3)) b.closed(p);
  t.equal(s3.active, 0);
  const next: string[] = [];
  for (let i = 0; i < 4; i++) {
    const p = b.pick({ clientIp: '192.0.2.1', avoid: null, stickyCookie: null, setStickyCookie: null })!;
    b.opened(p, Date.now());
    next.push(p.name);
  }
  t.same(next, ['s3', 's3', 's3', 's3'], 'refills the emptied server');
  // A retry avoids the failed server even when it is the least loaded.
  const retry = b.pick({ clientIp: '192.0.2.1', avoid: s3, stickyCookie: null, setStickyCookie: null });
  t.not(retry, s3);
});

t.test('least-connections: ties under held connections are shared, not taken by the first', async (t) => {
  // Every server holds one long connection: all tie at load 2. Short requests (opened and closed
  // at once) keep them tied, so a "first minimum" scan would send all 400 to s1.
  const b = new Backend(backendConfig([1, 1, 1, 1], { strategy: 'least-connections' }), leastConnections);
  const req = { clientIp: '192.0.2.1', avoid: null, stickyCookie: null, setStickyCookie: null };
  for (let i = 0; i < 4; i++) b.opened(b.pick(req)!, Date.now());
  t.same(
    b.servers.map((s) => s.active),
    [1, 1, 1, 1],
    'one held on each',
  );
  const got: Record<string, number> = {};
  for (let i = 0; i < 400; i++) {
    const s = b.pick(req)!;
    b.opened(s, Date.now());
    got[s.name] = (got[s.name] ?? 0) + 1;
    b.closed(s);
  }
  t.same(got, { s1: 100, s2: 100, s3: 100, s4: 100 }, 'tied servers take turns');

  // A weighted tie: s1 (weight 1) holds 1, s2 (weight 2) holds 3: (1+1)/1 = (3+1)/2.
  const w = leastConnections();
  const set = [testServer(1, 1, 1), testServer(2, 2, 3)];
  w.update(set);
  t.same(countBy(picks(w, 10)), { s1: 5, s2: 5 }, 'equal weighted load: in turn');
});

t.test('ip-hash: same set -> same choice, on every instance, in any order or history', async (t) => {
  const pool = Array.from({ length: 10 }, (_, i) => testServer(i + 1, 1 + (i % 3)));
  const a = ipHash();
  a.update(pool);
  const b = ipHash();
  b.update([...pool].reverse());
  // c reaches the same set by another road: small steps (incremental) through other sets.
  const c = ipHash();
  c.update(pool.slice(0, 8));
  c.update(pool.slice(2, 8));
  c.update([...pool.slice(2, 8), pool[9]!]);
  c.update(pool.map((s) => (s === pool[4] ? { ...s, weight: 7 } : s)));
  c.update(pool.slice(0, 9));
  c.update(pool);
  // d: same ids and weights, other objects (another process).
  const d = ipHash();
  d.update(pool.map((s) => ({ ...s })));
  let differ = 0;
  for (const ip of ips(20000)) {
    const x = a.pick(ctx(ip))!;
    if (b.pick(ctx(ip)) !== x || c.pick(ctx(ip)) !== x || d.pick(ctx(ip))!.id !== x.id) differ++;
    if (a.pick(ctx(ip))!.id !== x.id) differ++;
  }
  t.equal(differ, 0, '20000 clients: same server on every instance');
  t.equal(a.pick(ctx('::ffff:10.1.2.3')), a.pick(ctx('10.1.2.3')), 'IPv4-mapped IPv6 = IPv4');
  const x = a.pick(ctx('10.9.9.9'))!;
  t.equal(a.pick(ctx('10.9.9.9', x)), b.pick(ctx('10.9.9.9', x)), 'a retry lands on the same server on every instance');
});

t.test('ip-hash: two switchyard backends built from configs listing the servers in another order agree', async (t) => {
  const servers = [
    { name: 'alpha', weight: 1 },
    { name: 'beta', weight: 2 },
    { name: 'gamma', weight: 1 },
    { name: 'delta', weight: 3 },
  ];
  const one = new Backend(backendConfig(servers, { strategy: 'ip-hash' }), ipHash);
  const two = new Backend(backendConfig([servers[2]!, servers[0]!, servers[3]!, servers[1]!], { strategy: 'ip-hash' }), ipHash);
  t.not(one.servers[0]!.name, two.servers[0]!.name, 'really another order');
  let differ = 0;
  for (const ip of ips(5000, 3)) {
    const r = { clientIp: ip, avoid: null, stickyCookie: null, setStickyCookie: null };
    if (one.pick(r)!.name !== two.pick(r)!.name) differ++;
  }
  t.equal(differ, 0, '5000 clients: the same server name on both');
});

t.test('ip-hash: weight-aware spread', async (t) => {
  const s = ipHash();
  const set = [testServer(1, 1), testServer(2, 2), testServer(3, 1), testServer(4, 4)];
  s.update(set);
  const got = countBy(ips(80000).map((ip) => s.pick(ctx(ip))));
  const total = 8;
  for (const srv of set) {
    const share = (got[srv.name] ?? 0) / 80000;
    t.ok(Math.abs(share - srv.weight / total) < 0.1 * (srv.weight / total), `${srv.name} (weight ${srv.weight}): share ${share.toFixed(3)}`);
  }
});

t.test('ip-hash: minimal remap on removal and addition', async (t) => {
  const N = 10;
  const pool = Array.from({ length: N + 1 }, (_, i) => testServer(i + 1, 1));
  const clients = ips(50000, 7);
  const s = ipHash();
  s.update(pool.slice(0, N));
  const before = clients.map((ip) => s.pick(ctx(ip)));

  // Removal: every client of the removed server moves; nobody else does.
  const removed = pool[3]!;
  s.update(pool.slice(0, N).filter((x) => x !== removed));
  let movedOthers = 0;
  let stayedOnRemoved = 0;
  const afterRemoval = clients.map((ip) => s.pick(ctx(ip)));
  afterRemoval.forEach((x, i) => {
    if (before[i] === removed) {
      if (x === removed) stayedOnRemoved++;
    } else if (x !== before[i]) movedOthers++;
  });
  t.equal(stayedOnRemoved, 0, 'the removed server keeps no client');
  t.equal(movedOthers, 0, 'no client of another server moves');
  // Its clients spread over the others rather than piling onto one neighbour (ring-style).
  const heirs = countBy(afterRemoval.filter((_, i) => before[i] === removed));
  t.ok(Object.keys(heirs).length >= N - 2, `heirs of the removed server: ${Object.keys(heirs).length}`);

  // Back again: exactly the original mapping.
  s.update(pool.slice(0, N));
  t.equal(clients.filter((ip, i) => s.pick(ctx(ip)) !== before[i]).length, 0, 're-adding restores every client');

  // Addition: only clients that go to the new server move, about 1/(N+1) of them.
  const added = pool[N]!;
  s.update(pool);
  let movedElsewhere = 0;
  let movedToNew = 0;
  clients.forEach((ip, i) => {
    const x = s.pick(ctx(ip));
    if (x === before[i]) return;
    if (x === added) movedToNew++;
    else movedElsewhere++;
  });
  t.equal(movedElsewhere, 0, 'a client moves only to the new server');
  const fraction = movedToNew / clients.length;
  t.ok(fraction <= 1.3 / (N + 1) && fraction >= 0.7 / (N + 1), `moved ${(fraction * 100).toFixed(2)}% (1/(N+1) = ${(100 / (N + 1)).toFixed(2)}%)`);

  // Adding a heavier server (weight 2 among ten of weight 1 and one new): it takes ~2/13.
  const heavy = testServer(99, 2);
  const beforeHeavy = clients.map((ip) => s.pick(ctx(ip)));
  s.update([...pool, heavy]);
  let toHeavy = 0;
  let strayedHeavy = 0;
  clients.forEach((ip, i) => {
    const x = s.pick(ctx(ip));
    if (x === heavy) toHeavy++;
    else if (x !== beforeHeavy[i]) strayedHeavy++;
  });
  t.equal(strayedHeavy, 0, 'adding a weight-2 server: clients move only onto it');
  const heavyShare = toHeavy / clients.length;
  t.ok(Math.abs(heavyShare - 2 / 13) < 0.3 * (2 / 13), `weight 2 of 13 takes ${(heavyShare * 100).toFixed(2)}% (${(200 / 13).toFixed(2)}%)`);
  s.update(pool);

  // A weight change moves clients only to or from the reweighted server.
  const heavier = pool.map((x) => (x === pool[0] ? { ...x, weight: 3 } : x));
  const beforeW = clients.map((ip) => s.pick(ctx(ip)));
  s.update(heavier);
  let strayed = 0;
  clients.forEach((ip, i) => {
    const x = s.pick(ctx(ip))!;
    if (x.id !== beforeW[i]!.id && x.id !== pool[0]!.id) strayed++;
  });
  t.equal(strayed, 0, 'reweighting s1 up only moves clients onto s1');
});

t.test('random (P2C): never the busier of the two', async (t) => {
  // Two servers: both are always sampled, so the less loaded one always wins.
  const two = random();
  const a = testServer(1, 1, 3),
    b = testServer(2, 1, 5);
  two.update([a, b]);
  t.same(countBy(picks(two, 2000)), { s1: 2000 }, 'equal weights: fewer active');
  // Normalised by weight: b carries 5 on weight 4 (1.25) < a's 3 on weight 1.
  const wb = testServer(2, 4, 5);
  two.update([a, wb]);
  t.same(countBy(picks(two, 2000)), { s2: 2000 }, 'active / weight decides');

  // Ten servers with distinct loads: the busiest is never picked (it loses every pair), and the
  // k-th least loaded wins exactly the pairs it is in with a busier one.
  const set = Array.from({ length: 10 }, (_, i) => testServer(i + 1, 1, i));
  const s = random();
  s.update(set);
  const got = countBy(picks(s, 90000));
  t.equal(got['s10'] ?? 0, 0, 'the busiest server never wins');
  for (let k = 0; k < 9; k++) {
    // P(server k wins) = P(k sampled and the other sample busier) = 2 * (9 - k) / (10 * 9)
    const expected = (2 * (9 - k)) / 90;
    const share = (got[`s${k + 1}`] ?? 0) / 90000;
    t.ok(Math.abs(share - expected) < 0.01, `rank ${k}: share ${share.toFixed(3)} ~ ${expected.toFixed(3)}`);
  }

  // Weighted: the two are compared on active / weight, not on active. Loads 1, 3, 7, 9 on
  // weights 1, 2, 4, 8 rank s1 (1) < s4 (1.125) < s2 (1.5) < s3 (1.75): s3, the heaviest sampled
  // after s4, never wins a pair; s1 wins every pair it is in, P = 1/15 + sum_j w_j/15 / (15 - w_j).
  const ws = [testServer(1, 1, 1), testServer(2, 2, 3), testServer(3, 4, 7), testServer(4, 8, 9)];
  const r = random();
  r.update(ws);
  const wgot = countBy(picks(r, 60000));
  t.equal(wgot['s3'] ?? 0, 0, 'the busiest by active/weight never wins (though second most sampled)');
  const pS1 = 1 / 15 + 2 / 15 / 13 + 4 / 15 / 11 + 8 / 15 / 7;
  t.ok(Math.abs((wgot['s1'] ?? 0) / 60000 - pS1) < 0.01, `s1 wins whenever sampled: ${((wgot['s1'] ?? 0) / 600).toFixed(1)}% ~ ${(pS1 * 100).toFixed(1)}%`);

  // At equal load the split is the weighted sampling: 1:2:1.
  const w = random();
  w.update([testServer(1, 1), testServer(2, 2), testServer(3, 1)]);
  const split = countBy(picks(w, 40000));
  t.ok(Math.abs(split['s2']! / 40000 - 0.5) < 0.02, `weight 2 of 4 gets ~50%: ${(split['s2']! / 400).toFixed(1)}%`);
});

t.test('random (P2C): spreads held connections evenly', async (t) => {
  const set: TestServer[] = Array.from({ length: 10 }, (_, i) => testServer(i + 1, 1));
  const s = random();
  s.update(set);
  for (let i = 0; i < 1000; i++) (s.pick(ctx()) as TestServer).active++;
  const max = Math.max(...set.map((x) => x.active));
  const min = Math.min(...set.map((x) => x.active));
  // Measured over 3,000 runs: spread 2-3 mostly, 4 in 9%, 7 at worst (the tail falls ~5x per
  // step). One random choice spreads ~30 (each count's sd is ~9.5): 10 tells them apart
  // without flaking.
  t.ok(max - min <= 10, `1000 held on 10: spread ${min}..${max} (one choice would be ~±30)`);
});

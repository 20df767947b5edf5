// One conformance suite for every strategy, built-in or user-written (Hono's
// `runTest({ newRouter })` pattern): `strategyConformance(name, factory)` registers a tap
// subtest checking the contract of src/strategies/strategy.ts. Algorithm-specific sequences
// live in the per-strategy tests; this only checks what every strategy owes the backend.
import t from 'tap';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import type { PickContext, Strategy, StrategyFactory, StrategyServer } from '../../src/strategies/strategy.js';

export interface TestServer extends StrategyServer {
  weight: number;
  active: number;
}

export function testServer(i: number, weight = 1, active = 0): TestServer {
  return { id: `static:s${i}`, name: `s${i}`, address: `127.0.0.1:${9000 + i}`, weight, active };
}

/** A small deterministic PRNG (mulberry32) so a failing case can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function ctx(clientIp = '192.0.2.1', avoid: StrategyServer | null = null): PickContext {
  return { clientIp, avoid };
}

const IPS = Array.from({ length: 512 }, (_, i) => `10.${(i * 7) & 255}.${i >> 4}.${(i * 13) & 255}`);

/** Minor + major GCs that started while `fn` ran (perf_hooks 'gc' entries). */
async function gcsDuring(fn: () => void): Promise<number> {
  const starts: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) starts.push(e.startTime);
  });
  obs.observe({ entryTypes: ['gc'] });
  const from = performance.now();
  fn();
  const to = performance.now();
  await new Promise((r) => setTimeout(r, 50)); // entries are delivered asynchronously
  obs.disconnect();
  return starts.filter((s) => s >= from && s <= to).length;
}

export function strategyConformance(name: string, factory: StrategyFactory, options: Readonly<Record<string, unknown>> = {}): void {
  const make = (): Strategy => factory(options);

  t.test(`${name}: conformance`, async (t) => {
    t.test('null on an empty set, before and after servers', async (t) => {
      const s = make();
      s.update([]);
      t.equal(s.pick(ctx()), null, 'empty from the start');
      s.update([testServer(1), testServer(2)]);
      t.not(s.pick(ctx()), null);
      s.update([]);
      t.equal(s.pick(ctx()), null, 'emptied');
      t.equal(s.pick(ctx('192.0.2.9', testServer(1))), null, 'emptied, with avoid');
    });

    t.test('weight 0 is never picked; only weight 0 gives null', async (t) => {
      const s = make();
      const zero = [testServer(1, 0), testServer(2, 0)];
      s.update(zero);
      t.equal(s.pick(ctx()), null, 'every server at weight 0');
      const set = [testServer(1, 0), testServer(2, 1), testServer(3, 0), testServer(4, 3)];
      s.update(set);
      let bad = 0;
      for (let i = 0; i < 2000; i++) {
        const p = s.pick(ctx(IPS[i & 511]));
        if (p === null || p.weight === 0) bad++;
      }
      t.equal(bad, 0, 'no weight-0 pick in 2000');
    });

    t.test('honours avoid when another server exists', async (t) => {
      const s = make();
      const set = [testServer(1, 1), testServer(2, 2), testServer(3, 1), testServer(4, 0)];
      s.update(set);
      for (const avoid of set.slice(0, 3)) {
        let hits = 0;
        for (let i = 0; i < 600; i++) {
          const p = s.pick(ctx(IPS[i & 511], avoid));
          if (p === avoid || p === null) hits++;
        }
        t.equal(hits, 0, `never ${avoid.name} when avoided`);
      }
      // Two servers, avoid one: the other, every time.
      s.update([set[0]!, set[1]!]);
      for (let i = 0; i < 100; i++) t.equal(s.pick(ctx(IPS[i], set[0])), set[1], 'the other of two');
      // A single server: picked even when avoided (a retry on the same server beats a 503).
      s.update([set[0]!]);
      t.equal(s.pick(ctx('192.0.2.1', set[0])), set[0]);
    });

    t.test('never returns an ineligible server across shrinking and growing sets', async (t) => {
      const rnd = prng(42);
      const pool = Array.from({ length: 14 }, (_, i) => testServer(i + 1, i % 5 === 4 ? 0 : 1 + (i % 3)));
      const s = make();
      let bad = 0;
      let nulls = 0;
      for (let round = 0; round < 60; round++) {
        // A random subset, in a random order, sometimes empty, sometimes everything.
        const size = round % 10 === 9 ? 0 : Math.floor(rnd() * (pool.length + 1));
        const set = [...pool].sort(() => rnd() - 0.5).slice(0, size);
        for (const srv of pool) srv.active = Math.floor(rnd() * 6);
        s.update(set);
        const ok = new Set(set.filter((x) => x.weight > 0));
        for (let i = 0; i < 150; i++) {
          const avoid = rnd() < 0.3 && set.length > 0 ? set[Math.floor(rnd() * set.length)]! : null;
          const p = s.pick(ctx(IPS[Math.floor(rnd() * 512)], avoid));
          if (p === null) {
            if (ok.size > 0) nulls++;
          } else if (!ok.has(p)) bad++;
          // Load moves while picking, as it does under traffic.
          if (p !== null && rnd() < 0.5) (p as TestServer).active++;
        }
      }
      t.equal(bad, 0, 'no pick outside the current eligible set (or of weight 0)');
      t.equal(nulls, 0, 'no null while something is eligible');
    });

    t.test('a server added later is reachable; a removed one is gone at once', async (t) => {
      const s = make();
      const a = testServer(1),
        b = testServer(2),
        c = testServer(3);
      s.update([a, b]);
      s.update([a, b, c]);
      a.active = 50;
      b.active = 50;
      const seen = new Set<StrategyServer>();
      for (let i = 0; i < 2000; i++) {
        const p = s.pick(ctx(IPS[i & 511]));
        if (p !== null) seen.add(p);
      }
      t.ok(seen.has(c), 'the new, idle server gets picks');
      s.update([a, c]);
      let stale = 0;
      for (let i = 0; i < 500; i++) if (s.pick(ctx(IPS[i & 511])) === b) stale++;
      t.equal(stale, 0, 'the removed server is not picked');
    });

    t.test('pick() allocates nothing (no GC during 1M picks)', async (t) => {
      const s = make();
      const set = Array.from({ length: 30 }, (_, i) => testServer(i + 1, 1 + (i % 3), i % 4));
      s.update(set);
      // A mutable context reused by every pick, as the proxy core reuses its per-request state.
      const c: { clientIp: string; avoid: StrategyServer | null } = { clientIp: IPS[0]!, avoid: null };
      const run = (n: number) => {
        for (let i = 0; i < n; i++) {
          c.clientIp = IPS[i & 511]!;
          c.avoid = (i & 7) === 0 ? set[i % 30]! : null;
          s.pick(c);
        }
      };
      run(200_000); // warm up: let the JIT optimise pick() (the interpreter boxes doubles)
      const gcs = await gcsDuring(() => run(1_000_000));
      // 1M picks allocating even one 16-byte HeapNumber each is 16 MB: dozens of scavenges.
      t.ok(gcs <= 1, `GCs during 1M picks: ${gcs}`);
    });
  });
}

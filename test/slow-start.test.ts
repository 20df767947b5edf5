// Slow start: a server back in service (UP after DOWN, out of MAINT, newly added) takes a
// weight that ramps from a floor to its full weight over `slow_start`, in round-robin,
// least-connections and random; ip-hash keeps its mapping. Model-level picks for the shapes,
// and real traffic through the proxy for the distribution over time.
import t from 'tap';
import { request } from 'undici';
import { Backend } from '../src/model/backend.js';
import type { Server } from '../src/model/server.js';
import { roundRobin } from '../src/strategies/round-robin.js';
import { leastConnections } from '../src/strategies/least-connections.js';
import { random } from '../src/strategies/random.js';
import { ipHash } from '../src/strategies/ip-hash.js';
import type { StrategyFactory } from '../src/strategies/strategy.js';
import { backendConfig } from './support/backend-config.js';
import * as harness from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';

const SLOW = { durationMs: 1500, minWeightPercent: 10 };

function ctx(ip = '10.0.0.1') {
  return { clientIp: ip, avoid: null, stickyCookie: null, setStickyCookie: null };
}

/** Share of `n` picks that went to `server` (least-connections: each pick is released at once). */
function share(b: Backend, server: Server, n: number): number {
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const s = b.pick(ctx(`10.0.${i % 250}.${(i * 7) % 250}`));
    if (s === server) hits++;
    if (s !== null) {
      b.opened(s, Date.now());
      b.closed(s);
    }
  }
  return hits / n;
}

function maintThenReady(s: Server): void {
  s.admin = 'maint';
  s.noteChange('test');
  s.admin = 'ready';
  s.noteChange('test');
}

const strategies: [string, StrategyFactory][] = [
  ['round-robin', roundRobin],
  ['least-connections', leastConnections],
  ['random', random],
];

for (const [name, factory] of strategies) {
  t.test(`${name}: a server leaving MAINT starts near the floor and reaches its full share`, async (t) => {
    const b = new Backend(backendConfig([1, 1], { strategy: name, slowStart: SLOW }), factory);
    t.teardown(() => b.retire());
    const [, s2] = b.servers as [Server, Server];
    t.equal(s2.effectiveWeight, 1, 'no ramp at start (HAProxy: slowstart never applies at startup)');
    maintThenReady(s2);
    t.ok(s2.effectiveWeight < 0.3, `ramping: effective weight ${s2.effectiveWeight.toFixed(2)}`);
    const early = share(b, s2, 400);
    // Least-connections with instant releases ties at 0 load: the weights break the ties.
    t.ok(early < 0.3, `early share ${early.toFixed(2)} is well under half`);
    await waitFor('ramp done', () => (s2.effectiveWeight === 1 && s2.rampSince === 0 ? true : undefined), 10_000);
    const late = share(b, s2, 400);
    t.ok(late > 0.4 && late < 0.6, `full share again: ${late.toFixed(2)}`);
  });
}

t.test('DOWN to UP ramps; DRAIN to UP does not; ip-hash keeps its mapping during a ramp', async (t) => {
  const b = new Backend(backendConfig([1, 1, 1], { strategy: 'ip-hash', slowStart: SLOW }), ipHash);
  t.teardown(() => b.retire());
  const [s1, s2] = b.servers as [Server, Server, Server];
  const before = Array.from({ length: 200 }, (_, i) => b.pick(ctx(`192.168.${i}.9`))?.name);
  s1.admin = 'drain';
  s1.noteChange('test');
  s1.admin = 'ready';
  s1.noteChange('test');
  t.equal(s1.rampSince, 0, 'DRAIN → UP: no ramp');
  s2.checkDown = true;
  s2.noteChange('test');
  s2.checkDown = false;
  s2.noteChange('test');
  t.ok(s2.rampSince > 0 && s2.effectiveWeight < 1, 'DOWN → UP: ramping');
  const during = Array.from({ length: 200 }, (_, i) => b.pick(ctx(`192.168.${i}.9`))?.name);
  t.same(during, before, 'ip-hash maps every client as before');
});

t.test('without slow_start the effective weight is the weight; turning it off ends a ramp', async (t) => {
  const b = new Backend(backendConfig([2, 3], { slowStart: { durationMs: 60_000, minWeightPercent: 10 } }), roundRobin);
  t.teardown(() => b.retire());
  const s2 = b.servers[1]!;
  maintThenReady(s2);
  t.ok(s2.effectiveWeight < 3);
  b.apply(backendConfig([2, 3]), roundRobin);
  t.equal(s2.effectiveWeight, 3);
  t.equal(s2.rampSince, 0);
  maintThenReady(s2);
  t.equal(s2.effectiveWeight, 3, 'off: no ramp');
});

t.test('a server added by a reload ramps up; real traffic shows it in the distribution over time', async (t) => {
  const a = await harness.httpServer('a');
  const b = await harness.httpServer('b');
  const fe = harness.frontendConfig('web', 'http', 'api');
  // An 8 s ramp: 40 requests on a loaded machine can take a second or two, and b's share of them
  // must still be clearly below the even split (a ramp of 2.5 s was nearly over by then).
  const slow = { slowStart: { durationMs: 8000, minWeightPercent: 5 } };
  const sy = await harness.start(harness.config([fe], [harness.backendConfig('api', 'http', [a.address], slow)]));
  t.teardown(async () => {
    await sy.stop(200);
    await a.close();
    await b.close();
  });
  const port = sy.frontendAddress('web').port;
  const tally = async (n: number) => {
    const seen = { a: 0, b: 0 };
    for (let i = 0; i < n; i++) {
      const res = await request(`http://127.0.0.1:${port}/`);
      seen[(await res.body.text()) as 'a' | 'b']++;
    }
    return seen;
  };
  await sy.apply(harness.config([fe], [harness.backendConfig('api', 'http', [a.address, b.address], slow)]));
  const added = sy.runtime().backends.get('api')!.servers[1]!;
  t.ok(added.rampSince > 0, 'the added server ramps');
  const early = await tally(40);
  t.ok(early.b < 14, `early: b took ${early.b} of 40`);
  await waitFor('ramp done', () => (added.rampSince === 0 ? true : undefined), 30_000);
  const late = await tally(40);
  t.ok(late.b >= 18 && late.b <= 22, `after the ramp: b took ${late.b} of 40 (round-robin, equal weights)`);
});

// Pure parts of discovery: entries -> snapshot, Meta.weight, X-Consul-Index, backoff.
import t from 'tap';
import { parseIndex, toSnapshot, weightFromMeta } from '../src/discovery/entries.js';
import { backoffDelay } from '../src/discovery/backoff.js';
import { goDuration } from '../src/discovery/client.js';
import { TokenBucket } from '../src/discovery/rate-limit.js';

const entry = (id: string, over: { addr?: string; node?: string; nodeAddr?: string; port?: number; meta?: Record<string, string>; status?: string } = {}) => ({
  Node: { Node: over.node ?? 'n1', Address: over.nodeAddr ?? '10.0.0.1', Datacenter: 'dc1' },
  Service: { ID: id, Service: 'svc', Tags: [], Address: over.addr ?? '', Port: over.port ?? 80, Meta: over.meta ?? {}, Weights: { Passing: 1, Warning: 1 } },
  Checks: [
    { CheckID: 'serfHealth', Status: 'passing' },
    { CheckID: `service:${id}`, Status: over.status ?? 'passing', ServiceID: id },
  ],
});

t.test('toSnapshot', async (t) => {
  const s = toSnapshot([
    entry('b', { addr: '10.1.0.2', meta: { weight: '7' } }),
    entry('a', { status: 'critical' }),
    entry('c', { nodeAddr: '[fd00::1]' }),
    { Service: { Service: 'svc', Port: 1 } },
    entry('d', { port: 0 }),
    entry('b', { node: 'n2', nodeAddr: '10.0.0.9' }),
  ]);
  t.same(
    s.specs.map((x) => [x.id, x.name, x.host, x.port, x.weight]),
    [
      ['consul:a', 'a', '10.0.0.1', 80, 1],
      ['consul:b', 'b', '10.1.0.2', 80, 7],
      ['consul:b@n2', 'b@n2', '10.0.0.9', 80, 1],
      ['consul:c', 'c', 'fd00::1', 80, 1],
    ],
    'sorted by id; node address when Service.Address is empty; duplicate IDs on two nodes kept apart',
  );
  t.same([...s.critical], ['consul:a']);
  t.equal(s.skipped.length, 2);
  t.equal(toSnapshot([entry('x'), entry('y')]).key, toSnapshot([entry('y'), entry('x')]).key, 'order does not matter');
  t.not(toSnapshot([entry('x')]).key, toSnapshot([entry('x', { status: 'critical' })]).key);
  t.same(toSnapshot(null).specs, []);
});

t.test('weightFromMeta', async (t) => {
  t.equal(weightFromMeta({ weight: '3' }), 3);
  t.equal(weightFromMeta({ weight: '0' }), 0);
  t.equal(weightFromMeta({ weight: '256' }), 256);
  for (const bad of ['257', '-1', '1.5', 'x', '', '1e2']) t.equal(weightFromMeta({ weight: bad }), 1, bad);
  t.equal(weightFromMeta({}), 1);
  t.equal(weightFromMeta(null), 1);
});

t.test('parseIndex', async (t) => {
  t.equal(parseIndex('42'), 42n);
  t.equal(parseIndex('18446744073709551615'), 18446744073709551615n, 'uint64 kept exact');
  t.equal(parseIndex('0'), 0n, 'zero is a number (the watch raises it to 1)');
  for (const bad of [undefined, '', 'abc', '-3', '1.5']) t.equal(parseIndex(bad), null, String(bad));
  t.equal(parseIndex(['7', '8']), 7n);
});

t.test('backoffDelay: exponential, capped, jittered', async (t) => {
  const o = (r: number) => ({ baseMs: 100, capMs: 30_000, random: () => r });
  t.same(
    [1, 2, 3, 4].map((a) => backoffDelay(a, o(0))),
    [50, 100, 200, 400],
    'lower bound: half the step',
  );
  t.same(
    [1, 2, 3, 4].map((a) => backoffDelay(a, o(0.999999))),
    [100, 200, 400, 800],
    'upper bound: the step',
  );
  t.equal(backoffDelay(50, o(0.999999)), 30_000, 'capped');
  t.equal(backoffDelay(10_000, o(0)), 15_000);
  t.equal(goDuration(30_000), '30s');
  t.equal(goDuration(120_000), '2m');
  t.equal(goDuration(250), '250ms');
});

t.test('TokenBucket: burst 2 goes straight on, then one per refill period', async (t) => {
  let now = 0;
  const b = new TokenBucket(2, 500, () => now);
  t.equal(b.take(), 0, 'first: a token is there');
  t.equal(b.take(), 0, 'second: burst of 2');
  t.equal(b.take(), 500, 'third in a row: wait one refill period');
  now += 500;
  t.equal(b.take(), 500, 'waited as told, taken again at once: one more period');
  now += 500;
  now += 10_000; // a quiet spell (a blocking query that held for `wait`) refills, up to the burst
  t.equal(b.take(), 0);
  t.equal(b.take(), 0);
  t.equal(b.take(), 500, 'never more than the burst saved up');
  t.equal(new TokenBucket(2, 0, () => now).take(), 0, 'refill 0: no limit');
  const unlimited = new TokenBucket(2, 0, () => now);
  for (let i = 0; i < 5; i++) t.equal(unlimited.take(), 0);
});

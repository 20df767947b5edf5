// Consul discovery when Consul misbehaves (the real `consul` client against the Consul test
// server): outages, errors, slow answers, an index that goes backwards or is 0, ACL refusals,
// unreadable answers, churn. Every time: the last known servers are kept, retries back off,
// and changes are picked up once Consul answers again.
import t from 'tap';
import { backoffDelay } from '../src/discovery/backoff.js';
import { ConsulDiscovery } from '../src/discovery/consul.js';
import {
  captureLogger,
  consulConfig,
  discoveryBackend,
  FAST_DISCOVERY as FAST,
  liveNames,
  setupDiscovery as setup,
  sleep,
  spyDiscovered as spy,
  testConfig,
  testRuntime,
  waitFor,
} from './support/consul-fixtures.js';

t.test('outage: the last set is kept, then changes are picked up after restart', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})]);
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 2, 10_000, 'first read');
  const calls = spy(b);
  await sleep(50);
  await consul.stop();
  await waitFor(() => discovery.status()[0]!.failures >= 2, 10_000, 'retrying');
  t.same(liveNames(b), ['a', 'b'], 'servers kept while Consul is down');
  t.equal(b.state, 'UP');
  t.equal(calls.calls, 0, 'nothing applied during the outage');
  const warns = lines.filter((l) => l.level === 40 && /keeping the last known servers/.test(String(l.msg)));
  t.ok(warns.length >= 1 && warns.length <= 2, `failure logged once per distinct error (${warns.length})`);

  consul.removeService('a');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  const before = consul.requests.length;
  await consul.restart();
  await waitFor(() => liveNames(b).join() === 'b,c', 10_000, 'changes after restart');
  t.equal(discovery.status()[0]!.failures, 0);
  t.ok(lines.some((l) => l.msg === 'consul answers again'));
  t.equal(consul.requests[before]!.query.has('index'), false, 'the connection was lost: the first query after it is a fresh read (index 0)');
  await waitFor(() => consul.requests.length > before + 1, 10_000, 'blocking again');
  t.equal(consul.requests[before + 1]!.query.get('index'), String(consul.indexOf('api')), 'then blocking on the new index');
});

t.test('500 errors are retried with growing backoff; the set is kept meanwhile', async (t) => {
  const { consul, discovery, runtime, backend } = await setup(t, [discoveryBackend('api', {})], {
    discovery: { backoffBaseMs: 40, backoffCapMs: 160, random: () => 0.99 },
  });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 10_000, 'first read');
  await sleep(30);
  consul.failNext(5, 500);
  const from = consul.requests.length;
  // Wakes the blocked query (already past the failure check): it answers b; the following ones fail.
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 });
  await waitFor(() => liveNames(b).length === 2, 10_000, 'b');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  await sleep(60);
  t.same(liveNames(b), ['a', 'b'], 'kept while failing');
  await waitFor(() => liveNames(b).length === 3, 10_000, 'change after the errors');
  const times = consul.requests.slice(from).map((r) => r.at);
  const gaps = times.slice(1).map((x, i) => x - times[i]!);
  t.ok(gaps.length >= 5, `${gaps.length} retries`);
  // ~40, 80, 160, 160, 160 (cap), each at least half its step (equal jitter).
  // Lower bounds only (timers fire late, never early): the first waits at least half of base, the
  // third at least half of 4 x base, so the doubling is wired in. The cap is an upper bound on a
  // delay, which a loaded machine cannot be trusted to show: checked on the delays themselves.
  t.ok(gaps[0]! >= 20, `first retry after ${gaps[0]}ms`);
  t.ok(gaps[2]! >= 80, `third retry after ${gaps[2]}ms`);
  t.same(
    [1, 2, 3, 4, 5].map((n) => backoffDelay(n, { baseMs: 40, capMs: 160, random: () => 0.99 })),
    [40, 80, 159, 159, 159],
    `capped delays (seen: ${gaps.join(',')})`,
  );
  t.notOk(
    consul.requests.slice(from + 1).some((r, i) => i < 5 && r.query.has('index')),
    'retries are fresh reads (index 0)',
  );
});

t.test('slow answers: still followed; answers slower than the timeout are retried', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})], {
    consul: { waitMs: 300 },
    discovery: { timeoutMs: 250 },
  });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  consul.setDelay(150);
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 10_000, 'first (slow) read');
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 });
  await waitFor(() => liveNames(b).length === 2, 10_000, 'slow but in time');

  consul.setDelay(800); // past the 250ms timeout of a fresh read
  await waitFor(() => lines.some((l) => /timed out/i.test(String(l.err))), 10_000, 'a timeout');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  await sleep(200);
  t.same(liveNames(b), ['a', 'b'], 'kept during timeouts');
  consul.setDelay(0);
  await waitFor(() => liveNames(b).length === 3, 10_000, 'recovered');
});

t.test('index going backwards is followed by a fresh read; a broken index polls with backoff', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})]);
  for (let i = 0; i < 5; i++) consul.addService({ id: `s${i}`, name: 'api', address: '127.0.0.1', port: 1000 + i });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 5, 10_000, 'first read');
  await sleep(50);
  const from = consul.requests.length;
  consul.resetIndex();
  await waitFor(() => lines.some((l) => /index went backwards/.test(String(l.msg))), 10_000, 'reset noticed');
  await waitFor(() => consul.requests.length >= from + 2, 10_000, 'next requests');
  t.equal(consul.requests[from - 1]!.query.get('index'), '6', 'the blocked query carried the old index');
  const after = consul.requests.slice(from);
  t.equal(after[0]!.query.has('index'), false, 'then a fresh read (index 0)');
  t.equal(after[1]!.query.get('index'), '1', 'then blocking on the new, lower index');
  consul.addService({ id: 'new', name: 'api', address: '127.0.0.1', port: 2000 });
  await waitFor(() => liveNames(b).includes('new'), 10_000, 'change after the reset');

  // X-Consul-Index 0 (a Consul bug the docs warn about): "always safe to use an index of 1".
  consul.setIndexHeader('0');
  const z = consul.requests.length;
  consul.addService({ id: 'zero', name: 'api', address: '127.0.0.1', port: 2001 });
  await waitFor(() => liveNames(b).includes('zero'), 10_000, 'read despite index 0');
  await waitFor(() => consul.requests.slice(z).some((r) => r.query.get('index') === '1'), 10_000, 'a query on index 1');
  t.notOk(
    consul.requests.slice(z).some((r) => r.query.get('index') === '0'),
    'never index=0 sent as a blocking index',
  );
  t.equal(lines.filter((l) => /X-Consul-Index 0/.test(String(l.msg))).length, 1, 'warned once');
  // The test server still holds its real (higher) index, so index=1 answers at once: only the
  // rate limit stands between this and a busy loop.
  const n = consul.requests.length;
  await sleep(300);
  t.ok(consul.requests.length - n <= 300 / 20 + 2, `rate-limited (${consul.requests.length - n} requests in 300ms, one per 20ms allowed)`);
  consul.setIndexHeader('garbage');
  consul.removeService('zero');
  await waitFor(() => !liveNames(b).includes('zero'), 10_000, 'read despite a non-numeric index');
  consul.setIndexHeader(null);
  await waitFor(() => consul.requests.at(-1)!.query.has('index'), 10_000, 'blocking again');
});

t.test('ACL token: sent as X-Consul-Token; without it 403 and nothing applied', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})], { server: { token: 'tok-123' } });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  await waitFor(() => lines.some((l) => /status 403/.test(String(l.err))), 10_000, '403');
  t.same(liveNames(backend('api')), []);
  t.ok(lines.some((l) => /check consul.token/.test(String(l.msg))));
  await discovery.stop();

  const { logger } = captureLogger();
  const cfg = consulConfig(consul.address, { token: 'tok-123' });
  const rt = testRuntime(testConfig(cfg, [discoveryBackend('api', {})]));
  const withToken = new ConsulDiscovery(cfg, logger, FAST);
  t.teardown(() => withToken.stop());
  withToken.sync(rt);
  await waitFor(() => liveNames(rt.backends.get('api')!).length === 1, 10_000, 'read with the token');
  t.equal(consul.requests.at(-1)!.headers['x-consul-token'], 'tok-123');
});

t.test('ACL token: a wrong token gets 403, retried with backoff; servers kept; a fixed token recovers', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})], {
    server: { token: 'right' },
    consul: { token: 'right' },
    discovery: { backoffBaseMs: 40, backoffCapMs: 160, random: () => 0.99 },
  });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 10_000, 'first read');
  await sleep(30);
  // The token is revoked (the server now wants another one): every query gets 403.
  consul.token = 'rotated';
  const from = consul.requests.length;
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 });
  await waitFor(() => consul.requests.length >= from + 4, 10_000, 'retries');
  t.same(liveNames(b), ['a', 'b'], 'the blocked query (already authorised) saw b; the 403s after it changed nothing');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  await sleep(200);
  t.same(liveNames(b), ['a', 'b'], 'kept while every query is refused');
  const warn = lines.find((l) => /status 403/.test(String(l.err)));
  t.ok(warn, '403 logged');
  t.match(String(warn!.msg), /check consul\.token/);
  t.equal(lines.filter((l) => /status 403/.test(String(l.err)) && l.level === 40).length, 1, 'warned once, not per retry');
  t.ok(
    consul.requests.slice(from).every((r) => r.token === 'right' && r.headers['x-consul-token'] === 'right'),
    'every query carried the configured token as X-Consul-Token',
  );
  const times = consul.requests.slice(from + 1).map((r) => r.at);
  const gaps = times.slice(1).map((x, i) => x - times[i]!);
  t.ok(gaps.length >= 2 && gaps.every((g) => g >= 20), `retries spaced by the backoff: ${gaps.join(',')}ms`);
  t.ok(discovery.status()[0]!.failures >= 3);
  consul.token = 'right';
  await waitFor(() => liveNames(b).length === 3, 10_000, 'recovered with the right token');
  t.equal(discovery.status()[0]!.failures, 0);
});

t.test('an answer that is not a list of entries is an error: the last set is kept', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})]);
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 10_000, 'first read');
  await sleep(30);
  // A proxy in front of Consul answering 200 with an HTML page, twice.
  consul.failNext(2, 200, '<html>maintenance</html>');
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 }); // wakes the blocked query
  await waitFor(() => liveNames(b).length === 2, 10_000, 'b');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  await waitFor(() => lines.some((l) => /invalid answer/.test(String(l.err))), 10_000, 'invalid answer logged');
  t.ok(liveNames(b).length >= 2, `servers kept (${liveNames(b).join()}), not wiped by an unreadable answer`);
  await waitFor(() => liveNames(b).length === 3, 10_000, 'next good answer applied');
});

t.test('rate limit: churn degrades into one query per period; a lone change is not delayed', async (t) => {
  const { consul, discovery, runtime, backend } = await setup(t, [discoveryBackend('api', { passing: false })], { discovery: { rateLimitMs: 1000 } });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 10_000, 'first read');
  await sleep(50);
  const a = b.serverById('consul:a')!;
  // 11 changes in 250 ms (ends critical): without a limit, one query per change.
  const from = consul.requests.length;
  await consul.flap('a', 11, 25);
  await waitFor(() => a.state === 'DOWN', 10_000, 'the final state is applied');
  const flapped = consul.requests.length - from;
  t.ok(flapped <= 4, `${flapped} queries for 11 changes (burst 2, then one per second)`);
  const status = () => discovery.status().find((w) => w.backend === 'api')!;
  t.ok(status().rateLimited > 0, `the churn was held by the rate limit (${status().rateLimited} waits)`);
  // The bucket refills while the query blocks: two changes in a row go straight through (a
  // sleep after every answer would hold the second one for most of a second). The churn left
  // the bucket up to one token in debt; after 3 s it is full again (burst 2). A change can only
  // be held by the limiter while the loop sleeps on it, so "no wait counted" proves neither
  // change was delayed, without measuring elapsed time, which a loaded machine stretches.
  await sleep(3100);
  const limitedBefore = status().rateLimited;
  consul.setStatus('a', 'passing');
  await waitFor(() => a.state === 'UP', 10_000, 'first change');
  await sleep(100);
  consul.setStatus('a', 'critical');
  await waitFor(() => a.state === 'DOWN', 10_000, 'second change');
  t.equal(status().rateLimited, limitedBefore, 'neither of two changes in a row waited for the rate limit');
});

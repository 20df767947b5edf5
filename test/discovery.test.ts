// Consul discovery against the Consul test server, with the real `consul` client.
import t from 'tap';
import { ConsulDiscovery, type ConsulDiscoveryOptions } from '../src/discovery/consul.js';
import type { Backend } from '../src/model/backend.js';
import type { Runtime } from '../src/model/runtime.js';
import type { ConsulConfig, BackendConfig } from '../src/config/types.js';
import { ConsulTestServer } from './support/consul-server.js';
import { captureLogger, consulConfig, discoveryBackend, liveNames, sleep, testConfig, testRuntime, waitFor } from './support/consul-fixtures.js';

const FAST: ConsulDiscoveryOptions = { backoffBaseMs: 20, backoffCapMs: 200, timeoutMs: 1000 };

async function setup(t: Tap.Test, backends: BackendConfig[], opts: { server?: ConstructorParameters<typeof ConsulTestServer>[0]; consul?: Partial<ConsulConfig>; discovery?: ConsulDiscoveryOptions } = {}) {
  const consul = await ConsulTestServer.start(opts.server);
  const { logger, lines } = captureLogger();
  const cfg = consulConfig(consul.address, opts.consul);
  const runtime = testRuntime(testConfig(cfg, backends));
  const discovery = new ConsulDiscovery(cfg, logger, { ...FAST, ...opts.discovery });
  t.teardown(async () => { await discovery.stop(); await consul.close(); });
  const backend = (name: string): Backend => runtime.backends.get(name)!;
  return { consul, discovery, runtime, backend, lines, cfg };
}

/** Count setDiscovered calls on a backend object. */
function spy(b: Backend): { calls: number } {
  const counter = { calls: 0 };
  const orig = b.setDiscovered.bind(b);
  b.setDiscovered = (specs) => { counter.calls++; orig(specs); };
  return counter;
}

declare namespace Tap { type Test = Parameters<Parameters<typeof t.test>[1]>[0] }

t.test('added in Consul: in backend.servers within 1s; removed: retired; weight from Meta', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('mcp-files', {})]);
  const b = backend('mcp-files');
  consul.addService({ id: 'files-1', name: 'mcp-files', address: '127.0.0.1', port: 9001 });
  discovery.sync(runtime);
  await waitFor(() => liveNames(b).length === 1, 1000, 'first read');
  const s1 = b.serverById('consul:files-1')!;
  t.match(s1, { name: 'files-1', host: '127.0.0.1', port: 9001, weight: 1, source: 'consul', state: 'UP' });
  await sleep(50); // the watch is now blocked on the index

  const t0 = Date.now();
  consul.addService({ id: 'files-2', name: 'mcp-files', port: 9002, meta: { weight: '5' }, nodeAddress: '127.0.0.2' });
  const took = await waitFor(() => liveNames(b).length === 2, 1000, 'added server');
  t.ok(took < 1000, `seen after ${Date.now() - t0}ms`);
  const s2 = b.serverById('consul:files-2')!;
  t.equal(s2.host, '127.0.0.2', 'no Service.Address: the node address');
  t.equal(s2.weight, 5, 'weight from Meta.weight');
  t.same(b.eligible.map((s) => s.name).sort(), ['files-1', 'files-2']);

  consul.addService({ id: 'files-2', name: 'mcp-files', port: 9002, meta: { weight: 'heavy' }, nodeAddress: '127.0.0.2' });
  await waitFor(() => b.serverById('consul:files-2')!.weight === 1, 1000, 'invalid weight: 1');
  t.equal(b.serverById('consul:files-2'), s2, 'same server object (identity kept)');

  consul.removeService('files-1');
  await waitFor(() => s1.retired, 1000, 'removed server retired');
  t.same(liveNames(b), ['files-2']);
  t.notOk(b.eligible.includes(s1), 'no new traffic to the removed server');

  const changes = lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('consul: '));
  t.same(changes.map((l) => [l.added, l.removed]), [
    [['files-1 127.0.0.1:9001'], []],
    [['files-2 127.0.0.2:9002'], []],
    [[], []],
    [[], ['files-1']],
  ], 'each change logged once, with names');
  t.same(changes[2]!.changed, ['files-2 127.0.0.2:9002 weight 1']);
});

t.test('tag, passing and dc filters; critical with passing=false', async (t) => {
  const { consul, discovery, runtime, backend } = await setup(t, [
    discoveryBackend('v1', { service: 'mcp-http', tag: 'v1' }),
    discoveryBackend('all', { service: 'mcp-http', passing: false }),
    discoveryBackend('dc2', { service: 'mcp-http', dc: 'dc2', passing: false }),
  ]);
  consul.addService({ id: 'h1', name: 'mcp-http', address: '127.0.0.1', port: 1, tags: ['v1'] });
  consul.addService({ id: 'h2', name: 'mcp-http', address: '127.0.0.1', port: 2, tags: ['v2'] });
  consul.addService({ id: 'h3', name: 'mcp-http', address: '127.0.0.1', port: 3, tags: ['v1'], status: 'critical' });
  consul.addService({ id: 'h4', name: 'mcp-http', address: '127.0.0.1', port: 4, tags: ['v1'], status: 'warning' });
  consul.addService({ id: 'far', name: 'mcp-http', address: '10.2.0.1', port: 5, dc: 'dc2', node: 'far-node' });
  discovery.sync(runtime);
  const v1 = backend('v1');
  const all = backend('all');
  await waitFor(() => liveNames(v1).length > 0 && liveNames(all).length > 0 && liveNames(backend('dc2')).length > 0, 1000, 'first reads');
  t.same(liveNames(v1), ['h1'], 'tag v1 and passing only (warning and critical filtered by Consul)');
  t.same(liveNames(all), ['h1', 'h2', 'h3', 'h4'], 'passing: false lists every instance');
  t.same(liveNames(backend('dc2')), ['far'], 'dc');
  const h3 = all.serverById('consul:h3')!;
  t.equal(h3.consulCritical, true);
  t.equal(h3.state, 'DOWN');
  t.equal(h3.stateReason, 'consul: critical');
  t.notOk(all.eligible.includes(h3), 'critical: not eligible');
  t.equal(all.serverById('consul:h4')!.state, 'UP', 'warning is not critical');

  consul.setStatus('h3', 'passing');
  await waitFor(() => h3.state === 'UP', 1000, 'h3 back UP');
  t.equal(h3.consulCritical, false);
  t.equal(h3.stateReason, 'consul: passing');
  await waitFor(() => liveNames(v1).length === 2, 1000, 'h3 now passing joins the tag v1 backend');
  t.same(liveNames(v1), ['h1', 'h3']);

  consul.setStatus('h1', 'critical');
  await waitFor(() => all.serverById('consul:h1')!.state === 'DOWN', 1000, 'h1 critical');
  await waitFor(() => liveNames(v1).length === 1, 1000, 'h1 leaves the passing-only backend');
  t.same(liveNames(v1), ['h3']);
});

t.test('outage: the last set is kept, then changes are picked up after restart', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})]);
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 2, 1000, 'first read');
  const calls = spy(b);
  await sleep(50);
  await consul.stop();
  await sleep(400);
  t.same(liveNames(b), ['a', 'b'], 'servers kept while Consul is down');
  t.equal(b.state, 'UP');
  t.equal(calls.calls, 0, 'nothing applied during the outage');
  t.ok(discovery.status()[0]!.failures >= 2, 'retrying');
  const warns = lines.filter((l) => l.level === 40 && /keeping the last known servers/.test(String(l.msg)));
  t.ok(warns.length >= 1 && warns.length <= 2, `failure logged once per distinct error (${warns.length})`);

  consul.removeService('a');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  await consul.restart();
  await waitFor(() => liveNames(b).join() === 'b,c', 1500, 'changes after restart');
  t.equal(discovery.status()[0]!.failures, 0);
  t.ok(lines.some((l) => l.msg === 'consul answers again'));
});

t.test('500 errors are retried with growing backoff; the set is kept meanwhile', async (t) => {
  const { consul, discovery, runtime, backend } = await setup(t, [discoveryBackend('api', {})], { discovery: { backoffBaseMs: 40, backoffCapMs: 160, random: () => 0.99 } });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 1000, 'first read');
  await sleep(30);
  consul.failNext(5, 500);
  const from = consul.requests.length;
  // Wakes the blocked query (already past the failure check): it answers b; the following ones fail.
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 });
  await waitFor(() => liveNames(b).length === 2, 1000, 'b');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  await sleep(60);
  t.same(liveNames(b), ['a', 'b'], 'kept while failing');
  await waitFor(() => liveNames(b).length === 3, 3000, 'change after the errors');
  const times = consul.requests.slice(from).map((r) => r.at);
  const gaps = times.slice(1).map((x, i) => x - times[i]!);
  t.ok(gaps.length >= 5, `${gaps.length} retries`);
  // ~40, 80, 160, 160, 160 (cap), each at least half its step (equal jitter).
  t.ok(gaps[0]! >= 20 && gaps[0]! < 400, `first retry after ${gaps[0]}ms`);
  t.ok(gaps[2]! >= 80, `third retry after ${gaps[2]}ms`);
  t.ok(gaps.slice(0, 5).every((g) => g < 1000), `capped: ${gaps.join(',')}`);
  t.notOk(consul.requests.slice(from + 1).some((r, i) => i < 5 && r.query.has('index')), 'retries are fresh reads (index 0)');
});

t.test('slow answers: still followed; answers slower than the timeout are retried', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})], { consul: { waitMs: 300 }, discovery: { timeoutMs: 250 } });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  consul.setDelay(150);
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 1000, 'first (slow) read');
  consul.addService({ id: 'b', name: 'api', address: '127.0.0.1', port: 2 });
  await waitFor(() => liveNames(b).length === 2, 1000, 'slow but in time');

  consul.setDelay(800); // past the 250ms timeout of a fresh read
  await waitFor(() => lines.some((l) => /timed out/i.test(String(l.err))), 3000, 'a timeout');
  consul.addService({ id: 'c', name: 'api', address: '127.0.0.1', port: 3 });
  await sleep(200);
  t.same(liveNames(b), ['a', 'b'], 'kept during timeouts');
  consul.setDelay(0);
  await waitFor(() => liveNames(b).length === 3, 2000, 'recovered');
});

t.test('index going backwards is followed by a fresh read; a broken index polls with backoff', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})]);
  for (let i = 0; i < 5; i++) consul.addService({ id: `s${i}`, name: 'api', address: '127.0.0.1', port: 1000 + i });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 5, 1000, 'first read');
  await sleep(50);
  const from = consul.requests.length;
  consul.resetIndex();
  await waitFor(() => lines.some((l) => /index went backwards/.test(String(l.msg))), 1000, 'reset noticed');
  await waitFor(() => consul.requests.length >= from + 2, 1000, 'next requests');
  t.equal(consul.requests[from - 1]!.query.get('index'), '6', 'the blocked query carried the old index');
  const after = consul.requests.slice(from);
  t.equal(after[0]!.query.has('index'), false, 'then a fresh read (index 0)');
  t.equal(after[1]!.query.get('index'), '1', 'then blocking on the new, lower index');
  consul.addService({ id: 'new', name: 'api', address: '127.0.0.1', port: 2000 });
  await waitFor(() => liveNames(b).includes('new'), 1000, 'change after the reset');

  // X-Consul-Index 0 (a Consul bug the docs warn about): no busy loop, changes still seen.
  consul.setIndexHeader('0');
  consul.addService({ id: 'zero', name: 'api', address: '127.0.0.1', port: 2001 });
  await waitFor(() => liveNames(b).includes('zero'), 1000, 'read despite index 0');
  const n = consul.requests.length;
  await sleep(300);
  t.ok(consul.requests.length - n < 12, `rate-limited polling (${consul.requests.length - n} requests in 300ms)`);
  consul.setIndexHeader('garbage');
  consul.removeService('zero');
  await waitFor(() => !liveNames(b).includes('zero'), 1000, 'read despite a non-numeric index');
  consul.setIndexHeader(null);
  await waitFor(() => consul.requests.at(-1)!.query.has('index'), 1000, 'blocking again');
});

t.test('ACL token: sent as X-Consul-Token; without it 403 and nothing applied', async (t) => {
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('api', {})], { server: { token: 'tok-123' } });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  await waitFor(() => lines.some((l) => /status 403/.test(String(l.err))), 1000, '403');
  t.same(liveNames(backend('api')), []);
  t.ok(lines.some((l) => /check consul.token/.test(String(l.msg))));
  await discovery.stop();

  const { logger } = captureLogger();
  const cfg = consulConfig(consul.address, { token: 'tok-123' });
  const rt = testRuntime(testConfig(cfg, [discoveryBackend('api', {})]));
  const withToken = new ConsulDiscovery(cfg, logger, FAST);
  t.teardown(() => withToken.stop());
  withToken.sync(rt);
  await waitFor(() => liveNames(rt.backends.get('api')!).length === 1, 1000, 'read with the token');
  t.equal(consul.requests.at(-1)!.headers['x-consul-token'], 'tok-123');
});

t.test('unchanged snapshots are not re-applied', async (t) => {
  const { consul, discovery, runtime, backend } = await setup(t, [discoveryBackend('api', { passing: false })]);
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 1000, 'first read');
  const calls = spy(b);
  await sleep(30);
  // Writes that bump the index but change nothing we use: check output, an identical re-add.
  consul.setStatus('a', 'passing', 'HTTP GET /health: 200 OK (1)');
  await sleep(50);
  consul.setStatus('a', 'passing', 'HTTP GET /health: 200 OK (2)');
  await sleep(50);
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  await waitFor(() => discovery.status()[0]!.unchanged >= 3, 1000, 'three unchanged answers');
  t.equal(calls.calls, 0, 'setDiscovered not called');
  consul.setStatus('a', 'warning');
  await sleep(100);
  t.equal(calls.calls, 0, 'warning is not critical: still the same snapshot');
  consul.setStatus('a', 'critical');
  await waitFor(() => calls.calls === 1, 1000, 'critical is a change');
  t.equal(b.serverById('consul:a')!.state, 'DOWN');
});

t.test('sync follows reloads: new backend object, settings change, discovery removed; stop aborts', async (t) => {
  const { consul, discovery, runtime, lines } = await setup(t, [discoveryBackend('api', {}), discoveryBackend('web', {})], { consul: { waitMs: 30_000 } });
  consul.addService({ id: 'a1', name: 'api', address: '127.0.0.1', port: 1, tags: ['blue'] });
  consul.addService({ id: 'a2', name: 'api', address: '127.0.0.1', port: 2, tags: ['green'] });
  consul.addService({ id: 'w1', name: 'web', address: '127.0.0.1', port: 3 });
  discovery.sync(runtime);
  await waitFor(() => liveNames(runtime.backends.get('api')!).length === 2 && liveNames(runtime.backends.get('web')!).length === 1, 1000, 'first reads');

  // Reload 1: a runtime whose backends are new objects (built without reuse): each gets the
  // last snapshot at once, without waiting for Consul to change.
  const cfg = runtime.config;
  const readded = testRuntime(testConfig(cfg.consul, [...cfg.backends]), null);
  t.not(readded.backends.get('web'), runtime.backends.get('web'));
  discovery.sync(readded);
  t.same(liveNames(readded.backends.get('web')!), ['w1'], 're-applied synchronously');
  t.same(liveNames(readded.backends.get('api')!), ['a1', 'a2']);

  // Reload 2: api now filters on tag `green`: a new watch; web untouched.
  const webRequests = () => consul.requests.filter((r) => r.path.endsWith('/web')).length;
  const before = webRequests();
  const green = testRuntime(testConfig(cfg.consul, [discoveryBackend('api', { tag: 'green' }), cfg.backends[1]!]), readded);
  discovery.sync(green);
  await waitFor(() => liveNames(green.backends.get('api')!).join() === 'a2', 1000, 'tag change applied');
  t.equal(webRequests(), before, 'the unchanged watch kept its blocking query');

  // Reload 3: web no longer discovered: its watch stops, its discovered servers go.
  const noWeb = testRuntime(testConfig(cfg.consul, [discoveryBackend('api', { tag: 'green' }), discoveryBackend('web', null)]), green);
  discovery.sync(noWeb);
  t.same(liveNames(noWeb.backends.get('web')!), []);
  await sleep(50);
  const n = webRequests();
  consul.addService({ id: 'w2', name: 'web', address: '127.0.0.1', port: 4 });
  await sleep(100);
  t.equal(webRequests(), n, 'no more queries for web');
  t.same(discovery.status().map((s) => s.backend), ['api']);

  // stop(): the 30s blocking query is aborted at once.
  const t0 = Date.now();
  await discovery.stop();
  t.ok(Date.now() - t0 < 200, `stopped in ${Date.now() - t0}ms`);
  consul.addService({ id: 'a3', name: 'api', address: '127.0.0.1', port: 5, tags: ['green'] });
  await sleep(100);
  t.same(liveNames(noWeb.backends.get('api')!), ['a2'], 'nothing applied after stop');
  t.notOk(lines.some((l) => l.level >= 50), 'no error logged');
});

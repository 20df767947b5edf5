// Consul discovery against the Consul test server, with the real `consul` client: what a
// watch applies (servers, weights, identity, filters, critical), how it follows reloads, and the
// queries it sends. Failure handling is in discovery-faults.test.ts.
import t from 'tap';
import { serverConfigs } from './support/backend-config.js';
import {
  discoveryBackend,
  liveNames,
  setupDiscovery as setup,
  sleep,
  spyDiscovered as spy,
  testConfig,
  testRuntime,
  waitFor,
} from './support/consul-fixtures.js';

t.test('added in Consul: in backend.servers as the blocking query wakes; removed: retired; weight from Meta', async (t) => {
  // The watch blocks for a minute (waitMs 60 s) and every wait below is 10 s: a change seen in
  // time woke the blocking query; a watch that only saw it when the wait expired fails.
  const { consul, discovery, runtime, backend, lines } = await setup(t, [discoveryBackend('mcp-files', {})], { consul: { waitMs: 60_000 } });
  const b = backend('mcp-files');
  consul.addService({ id: 'files-1', name: 'mcp-files', address: '127.0.0.1', port: 9001 });
  discovery.sync(runtime);
  await waitFor(() => liveNames(b).length === 1, 10_000, 'first read');
  const s1 = b.serverById('consul:files-1')!;
  t.match(s1, { name: 'files-1', host: '127.0.0.1', port: 9001, weight: 1, source: 'consul', state: 'UP' });
  await sleep(50); // the watch is now blocked on the index

  consul.addService({ id: 'files-2', name: 'mcp-files', port: 9002, meta: { weight: '5' }, nodeAddress: '127.0.0.2' });
  const took = await waitFor(() => liveNames(b).length === 2, 10_000, 'added server');
  t.pass(`seen after ${took}ms, well before the 60 s wait`);
  const s2 = b.serverById('consul:files-2')!;
  t.equal(s2.host, '127.0.0.2', 'no Service.Address: the node address');
  t.equal(s2.weight, 5, 'weight from Meta.weight');
  t.same(b.eligible.map((s) => s.name).sort(), ['files-1', 'files-2']);

  consul.addService({ id: 'files-2', name: 'mcp-files', port: 9002, meta: { weight: 'heavy' }, nodeAddress: '127.0.0.2' });
  await waitFor(() => b.serverById('consul:files-2')!.weight === 1, 10_000, 'invalid weight: 1');
  t.equal(b.serverById('consul:files-2'), s2, 'same server object (identity kept)');

  consul.removeService('files-1');
  await waitFor(() => s1.retired, 10_000, 'removed server retired');
  t.same(liveNames(b), ['files-2']);
  t.notOk(b.eligible.includes(s1), 'no new traffic to the removed server');

  const changes = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('consul: '));
  t.same(
    changes.map((l) => [l.added, l.removed]),
    [
      [['files-1 127.0.0.1:9001'], []],
      [['files-2 127.0.0.2:9002'], []],
      [[], []],
      [[], ['files-1']],
    ],
    'each change logged once, with names',
  );
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
  await waitFor(() => liveNames(v1).length > 0 && liveNames(all).length > 0 && liveNames(backend('dc2')).length > 0, 10_000, 'first reads');
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
  await waitFor(() => h3.state === 'UP', 10_000, 'h3 back UP');
  t.equal(h3.consulCritical, false);
  t.equal(h3.stateReason, 'consul: passing');
  await waitFor(() => liveNames(v1).length === 2, 10_000, 'h3 now passing joins the tag v1 backend');
  t.same(liveNames(v1), ['h1', 'h3']);

  consul.setStatus('h1', 'critical');
  await waitFor(() => all.serverById('consul:h1')!.state === 'DOWN', 10_000, 'h1 critical');
  await waitFor(() => liveNames(v1).length === 1, 10_000, 'h1 leaves the passing-only backend');
  t.same(liveNames(v1), ['h3']);
});

t.test('unchanged snapshots are not re-applied', async (t) => {
  const { consul, discovery, runtime, backend } = await setup(t, [discoveryBackend('api', { passing: false })]);
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  discovery.sync(runtime);
  const b = backend('api');
  await waitFor(() => liveNames(b).length === 1, 10_000, 'first read');
  const calls = spy(b);
  await sleep(30);
  // Writes that bump the index but change nothing we use: check output, an identical re-add.
  consul.setStatus('a', 'passing', 'HTTP GET /health: 200 OK (1)');
  await sleep(50);
  consul.setStatus('a', 'passing', 'HTTP GET /health: 200 OK (2)');
  await sleep(50);
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1 });
  await waitFor(() => discovery.status()[0]!.unchanged >= 3, 10_000, 'three unchanged answers');
  t.equal(calls.calls, 0, 'setDiscovered not called');
  consul.setStatus('a', 'warning');
  await sleep(100);
  t.equal(calls.calls, 0, 'warning is not critical: still the same snapshot');
  consul.setStatus('a', 'critical');
  await waitFor(() => calls.calls === 1, 10_000, 'critical is a change');
  t.equal(b.serverById('consul:a')!.state, 'DOWN');
});

t.test('sync follows reloads: new backend object, settings change, discovery removed; stop aborts', async (t) => {
  const { consul, discovery, runtime, lines } = await setup(t, [discoveryBackend('api', {}), discoveryBackend('web', {})], { consul: { waitMs: 30_000 } });
  consul.addService({ id: 'a1', name: 'api', address: '127.0.0.1', port: 1, tags: ['blue'] });
  consul.addService({ id: 'a2', name: 'api', address: '127.0.0.1', port: 2, tags: ['green'] });
  consul.addService({ id: 'w1', name: 'web', address: '127.0.0.1', port: 3 });
  discovery.sync(runtime);
  await waitFor(() => liveNames(runtime.backends.get('api')!).length === 2 && liveNames(runtime.backends.get('web')!).length === 1, 10_000, 'first reads');

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
  // web's blocking query is sent right after its first answer; wait until Consul holds it.
  await waitFor(() => consul.requests.some((r) => r.path.endsWith('/web') && r.query.has('index')), 10_000, 'web blocking');
  const before = webRequests();
  const green = testRuntime(testConfig(cfg.consul, [discoveryBackend('api', { tag: 'green' }), cfg.backends[1]!]), readded);
  discovery.sync(green);
  await waitFor(() => liveNames(green.backends.get('api')!).join() === 'a2', 10_000, 'tag change applied');
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
  t.same(
    discovery.status().map((s) => s.backend),
    ['api'],
  );

  // stop(): the 30s blocking query is aborted, not waited out: a 10 s deadline, far from the 30 s
  // wait and far from what a loaded machine needs (a stop that waits for the query fails).
  const t0 = Date.now();
  await discovery.stop();
  t.ok(Date.now() - t0 < 10_000, `stopped in ${Date.now() - t0}ms`);
  consul.addService({ id: 'a3', name: 'api', address: '127.0.0.1', port: 5, tags: ['green'] });
  await sleep(100);
  t.same(liveNames(noWeb.backends.get('api')!), ['a2'], 'nothing applied after stop');
  t.notOk(
    lines.some((l) => Number(l.level) >= 50),
    'no error logged',
  );
});

t.test('static servers merge with Consul ones; identity is the service ID (address changes keep the server)', async (t) => {
  const withStatic = discoveryBackend(
    'api',
    {},
    {
      servers: serverConfigs([{ name: 'fixed', address: '127.0.0.1:9000', weight: 2 }]),
    },
  );
  const { consul, discovery, runtime, backend } = await setup(t, [withStatic]);
  const b = backend('api');
  const fixed = b.serverByName('fixed')!;
  t.equal(fixed.source, 'static');
  consul.addService({ id: 'api-1', name: 'api', address: '127.0.0.1', port: 9001 });
  discovery.sync(runtime);
  await waitFor(() => liveNames(b).length === 2, 10_000, 'merged');
  t.same(liveNames(b), ['api-1', 'fixed'], 'static and discovered side by side');
  t.same(b.eligible.map((s) => s.name).sort(), ['api-1', 'fixed']);
  const s1 = b.serverById('consul:api-1')!;
  t.equal(s1.source, 'consul');
  s1.counters.stot = 42; // stands for the counters, health and pooled sockets a server keeps

  // The instance moves (same service ID, new address and weight): same Server object.
  consul.addService({ id: 'api-1', name: 'api', address: '127.0.0.2', port: 9101, meta: { weight: '4' } });
  await waitFor(() => s1.address === '127.0.0.2:9101', 10_000, 'moved');
  t.equal(b.serverById('consul:api-1'), s1, 'identity = service ID');
  t.equal(s1.counters.stot, 42, 'counters kept');
  t.equal(s1.weight, 4);

  // A different ID at the old address is another server.
  consul.addService({ id: 'api-2', name: 'api', address: '127.0.0.1', port: 9001 });
  await waitFor(() => liveNames(b).length === 3, 10_000, 'api-2');
  t.not(b.serverById('consul:api-2'), s1);

  // Consul empties the service, then goes away: the static server stays throughout.
  consul.removeService('api-1');
  consul.removeService('api-2');
  await waitFor(() => liveNames(b).length === 1, 10_000, 'discovered ones gone');
  t.same(liveNames(b), ['fixed']);
  t.equal(b.serverByName('fixed'), fixed, 'the static server object is untouched');
  await consul.stop();
  await sleep(150);
  t.same(liveNames(b), ['fixed']);
  t.same(b.eligible, [fixed]);
});

t.test("blocking queries carry index and wait in Consul's format; filters go as query parameters", async (t) => {
  const { consul, discovery, runtime } = await setup(t, [discoveryBackend('api', { tag: 'v1', dc: 'dc1', passing: true })], { consul: { waitMs: 120_000 } });
  consul.addService({ id: 'a', name: 'api', address: '127.0.0.1', port: 1, tags: ['v1'] });
  discovery.sync(runtime);
  await waitFor(() => consul.requests.length >= 2, 10_000, 'two queries');
  const [first, second] = consul.requests;
  t.equal(first!.path, '/v1/health/service/api');
  t.equal(first!.query.has('index'), false, 'the first read is not blocking');
  t.equal(first!.query.has('wait'), false);
  t.equal(second!.query.get('index'), String(consul.indexOf('api')), 'then the X-Consul-Index it got');
  t.equal(second!.query.get('wait'), '2m', 'wait as a Go duration (consul.wait: 2m)');
  for (const r of [first!, second!]) {
    t.equal(r.query.get('tag'), 'v1');
    t.equal(r.query.get('dc'), 'dc1');
    t.ok(r.query.has('passing'), 'passing');
  }
});

// The Consul test server itself follows Consul's documented HTTP API (it is a fixture users may
// reuse, so its behaviour is tested like code).
import t from 'tap';
import { ConsulTestServer, parseGoDuration } from './support/consul-server.js';

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: any; ms: number }> {
  const start = Date.now();
  const res = await fetch(url, { headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* plain text */
  }
  return { status: res.status, headers: res.headers, body, ms: Date.now() - start };
}

t.test('health/service: entries, headers, filters', async (t) => {
  const c = await ConsulTestServer.start();
  t.teardown(() => c.close());
  c.addService({ id: 'web-1', name: 'web', address: '10.0.0.1', port: 80, tags: ['v1'], meta: { weight: '3' } });
  c.addService({ id: 'web-2', name: 'web', port: 81, tags: ['v2'], status: 'warning' });
  c.addService({ id: 'web-3', name: 'web', address: '10.0.0.3', port: 82, tags: ['v1', 'canary'], status: 'critical' });
  c.addService({ id: 'db-1', name: 'db', address: '10.0.1.1', port: 5432 });

  const all = await get(`${c.address}/v1/health/service/web`);
  t.equal(all.status, 200);
  t.equal(all.headers.get('x-consul-index'), String(c.indexOf('web')));
  t.equal(all.headers.get('x-consul-knownleader'), 'true');
  t.equal(all.headers.get('x-consul-lastcontact'), '0');
  t.same(
    all.body.map((e: any) => e.Service.ID),
    ['web-1', 'web-2', 'web-3'],
  );
  const e = all.body[0];
  t.match(e, {
    Node: { Node: 'node1', Address: '127.0.0.1', Datacenter: 'dc1' },
    Service: { ID: 'web-1', Service: 'web', Tags: ['v1'], Address: '10.0.0.1', Port: 80, Meta: { weight: '3' }, Weights: { Passing: 1, Warning: 1 } },
  });
  t.same(
    e.Checks.map((c: any) => [c.CheckID, c.Status]),
    [
      ['serfHealth', 'passing'],
      ['service:web-1', 'passing'],
    ],
  );
  t.equal(all.body[1].Service.Address, '', 'no service address: empty, the node address applies');

  t.same(
    (await get(`${c.address}/v1/health/service/web?passing`)).body.map((e: any) => e.Service.ID),
    ['web-1'],
    'passing drops warning and critical',
  );
  t.same(
    (await get(`${c.address}/v1/health/service/web?passing=true`)).body.map((e: any) => e.Service.ID),
    ['web-1'],
  );
  t.same((await get(`${c.address}/v1/health/service/web?passing=false`)).body.length, 3);
  t.same(
    (await get(`${c.address}/v1/health/service/web?tag=v1`)).body.map((e: any) => e.Service.ID),
    ['web-1', 'web-3'],
  );
  t.same(
    (await get(`${c.address}/v1/health/service/web?tag=v1&tag=canary`)).body.map((e: any) => e.Service.ID),
    ['web-3'],
  );
  t.same((await get(`${c.address}/v1/health/service/web?dc=dc1`)).body.length, 3);
  const nodc = await get(`${c.address}/v1/health/service/web?dc=mars`);
  t.equal(nodc.status, 500);
  t.match(nodc.body, /No path to datacenter/);
  t.same((await get(`${c.address}/v1/health/service/nothing`)).body, []);
  t.equal((await get(`${c.address}/v1/health/service/web?index=abc`)).status, 400);
  t.equal((await get(`${c.address}/v1/health/service/web?index=1&wait=soon`)).status, 400);

  const cat = await get(`${c.address}/v1/catalog/service/db`);
  t.match(cat.body, [{ Node: 'node1', ServiceID: 'db-1', ServiceName: 'db', ServiceAddress: '10.0.1.1', ServicePort: 5432 }]);
  t.ok(cat.headers.get('x-consul-index'));
  t.equal((await get(`${c.address}/v1/status/leader`)).body, '127.0.0.1:8300');
});

t.test('blocking queries: hold until a change or wait, index per service', async (t) => {
  const c = await ConsulTestServer.start();
  t.teardown(() => c.close());
  c.addService({ id: 'a', name: 'svc', port: 1 });
  const first = await get(`${c.address}/v1/health/service/svc`);
  const index = Number(first.headers.get('x-consul-index'));

  // Nothing changes: held for at least the wait (a lower bound only: a loaded machine answers late,
  // never early). An answer at once (no blocking) fails here.
  const idle = await get(`${c.address}/v1/health/service/svc?index=${index}&wait=200ms`);
  t.ok(idle.ms >= 190, `held ${idle.ms}ms`);
  t.equal(Number(idle.headers.get('x-consul-index')), index, 'same index after a timeout');

  // A write to another service does not wake it (woken before 140 ms fails); the change to svc
  // does: the answer comes long before the 30 s wait expires (a query left to time out fails, and
  // after a timeout it would carry the same data, so the time is what tells the two apart).
  const pending = get(`${c.address}/v1/health/service/svc?index=${index}&wait=30s`);
  setTimeout(() => c.addService({ id: 'x', name: 'other', port: 2 }), 50);
  setTimeout(() => c.addService({ id: 'b', name: 'svc', port: 3 }), 150);
  const woke = await pending;
  t.ok(woke.ms >= 140 && woke.ms < 10_000, `woken by the change after ${woke.ms}ms, not by the 30 s wait`);
  t.ok(Number(woke.headers.get('x-consul-index')) > index);
  t.equal(woke.body.length, 2);

  // A lower index than current: answers at once, not after the 30 s wait (a held query fails).
  const quick = await get(`${c.address}/v1/health/service/svc?index=1&wait=30s`);
  t.ok(quick.ms < 10_000, `answered after ${quick.ms}ms, not held for the wait`);
  t.equal(parseGoDuration('1m30s'), 90_000);
  t.equal(parseGoDuration('100ms'), 100);
  t.equal(parseGoDuration('1.5s'), 1500);
  t.equal(parseGoDuration('5'), null);
});

t.test('resetIndex: indexes go backwards and blocked queries wake', async (t) => {
  const c = await ConsulTestServer.start();
  t.teardown(() => c.close());
  for (let i = 0; i < 20; i++) c.addService({ id: `s${i}`, name: i < 10 ? 'a' : 'b', port: 1000 + i });
  const before = Number((await get(`${c.address}/v1/health/service/a`)).headers.get('x-consul-index'));
  const pending = get(`${c.address}/v1/health/service/a?index=${before}&wait=30s`);
  setTimeout(() => c.resetIndex(), 50);
  const after = await pending;
  // Woken by the reset, not left to the 30 s wait (a query the reset does not wake fails).
  t.ok(after.ms < 10_000, `woken after ${after.ms}ms`);
  t.ok(Number(after.headers.get('x-consul-index')) < before, `${after.headers.get('x-consul-index')} < ${before}`);
  t.equal(after.body.length, 10, 'same data');
  c.setIndexHeader('0');
  t.equal((await get(`${c.address}/v1/health/service/a`)).headers.get('x-consul-index'), '0');
});

t.test('ACL token, failNext, setDelay, stop/restart on the same port', async (t) => {
  const c = await ConsulTestServer.start({ token: 's3cret' });
  t.teardown(() => c.close());
  c.addService({ id: 'a', name: 'svc', port: 1 });
  const denied = await get(`${c.address}/v1/health/service/svc`);
  t.equal(denied.status, 403);
  t.equal(denied.body, 'ACL not found');
  t.equal((await get(`${c.address}/v1/health/service/svc`, { 'X-Consul-Token': 'nope' })).status, 403);
  t.equal((await get(`${c.address}/v1/health/service/svc`, { 'X-Consul-Token': 's3cret' })).status, 200);
  t.equal((await get(`${c.address}/v1/health/service/svc`, { Authorization: 'Bearer s3cret' })).status, 200);
  t.equal((await get(`${c.address}/v1/health/service/svc?token=s3cret`)).status, 200);
  t.equal((await get(`${c.address}/v1/status/leader`)).status, 200, 'status needs no token');
  t.equal(c.requests.at(-2)!.token, 's3cret');

  c.failNext(2, 503);
  const h = { 'X-Consul-Token': 's3cret' };
  t.equal((await get(`${c.address}/v1/health/service/svc`, h)).status, 503);
  t.equal((await get(`${c.address}/v1/health/service/svc`, h)).status, 503);
  t.equal((await get(`${c.address}/v1/health/service/svc`, h)).status, 200);

  c.setDelay(150);
  const slow = await get(`${c.address}/v1/health/service/svc`, h);
  t.ok(slow.ms >= 140, `slow answer ${slow.ms}ms`);
  c.setDelay(0);

  const port = c.port;
  await c.stop();
  await t.rejects(fetch(`${c.address}/v1/status/leader`));
  c.addService({ id: 'b', name: 'svc', port: 2 });
  await c.restart();
  t.equal(c.port, port);
  t.equal((await get(`${c.address}/v1/health/service/svc`, h)).body.length, 2);
});

t.test('agent register/deregister with an HTTP check run at its interval', async (t) => {
  const { createServer } = await import('node:http');
  let healthy = true;
  const target = createServer((_req, res) => {
    res.statusCode = healthy ? 200 : 503;
    res.end();
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  const tport = (target.address() as import('node:net').AddressInfo).port;
  const c = await ConsulTestServer.start();
  t.teardown(async () => {
    await c.close();
    await new Promise((r) => target.close(r));
  });

  const put = (path: string, body?: unknown) => fetch(`${c.address}${path}`, { method: 'PUT', body: body === undefined ? undefined : JSON.stringify(body) });
  t.equal((await put('/v1/agent/service/register', { Name: '' })).status, 400, 'Name required');
  t.equal((await put('/v1/agent/service/register', { Name: 'x', Check: { HTTP: 'http://127.0.0.1:1/' } })).status, 400, 'Interval required');
  const ok = await put('/v1/agent/service/register', {
    ID: 'sy-1',
    Name: 'switchyard',
    Address: '10.0.0.2',
    Port: 11099,
    Tags: ['lb'],
    Check: { HTTP: `http://127.0.0.1:${tport}/health`, Interval: '50ms', DeregisterCriticalServiceAfter: '1m' },
  });
  t.equal(ok.status, 200);
  t.match(c.registrations.at(-1), { ID: 'sy-1', Name: 'switchyard', Check: { Interval: '50ms' } });
  const services = (await get(`${c.address}/v1/agent/services`)).body;
  t.match(services['sy-1'], { ID: 'sy-1', Service: 'switchyard', Address: '10.0.0.2', Port: 11099, Tags: ['lb'] });

  const status = async () => (await get(`${c.address}/v1/health/service/switchyard`)).body[0]?.Checks[1].Status;
  // Polled with a generous deadline (10 s): a check that never runs still fails.
  const until = async (want: string) => {
    for (const end = Date.now() + 10_000; Date.now() < end && (await status()) !== want;) await new Promise((r) => setTimeout(r, 20));
  };
  await until('passing');
  t.equal(await status(), 'passing', 'check ran and passed');
  healthy = false;
  await until('critical');
  t.equal(await status(), 'critical', 'check failing: critical');

  t.equal((await put('/v1/agent/service/deregister/sy-1')).status, 200);
  t.same(c.deregistrations, ['sy-1']);
  t.same((await get(`${c.address}/v1/agent/services`)).body, {});
  t.equal((await put('/v1/agent/service/deregister/sy-1')).status, 404);
});

t.test('flap toggles a check and wakes blocked queries at each change; register keeps Weights', async (t) => {
  const c = await ConsulTestServer.start({ runChecks: false });
  t.teardown(() => c.close());
  c.addService({ id: 'a', name: 'svc', port: 1 });
  const statuses: string[] = [];
  let index = Number((await get(`${c.address}/v1/health/service/svc`)).headers.get('x-consul-index'));
  const flapping = c.flap('a', 4, 200);
  for (let i = 0; i < 4; i++) {
    // Each toggle wakes the query: long before the 30 s wait (a query not woken fails).
    const r = await get(`${c.address}/v1/health/service/svc?index=${index}&wait=30s`);
    t.ok(r.ms < 10_000, `change ${i + 1} woke the query (${r.ms}ms)`);
    const next = Number(r.headers.get('x-consul-index'));
    t.ok(next > index, 'the index moved on');
    index = next;
    statuses.push(r.body[0].Checks[1].Status);
  }
  await flapping;
  t.same(statuses, ['critical', 'passing', 'critical', 'passing']);
  t.same((await get(`${c.address}/v1/health/service/svc?passing`)).body.length, 1);
  await t.rejects(c.flap('nope', 1, 1), /no service nope/);

  const put = await fetch(`${c.address}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ ID: 'w', Name: 'weighted', Port: 5, Weights: { Passing: 10, Warning: 1 } }),
  });
  t.equal(put.status, 200);
  t.same((await get(`${c.address}/v1/health/service/weighted`)).body[0].Service.Weights, { Passing: 10, Warning: 1 });
});

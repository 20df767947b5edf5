import t from 'tap';
import { request, Agent } from 'undici';
import { backendConfig, config, frontendConfig, httpServer, start } from './support/proxy-harness.js';

t.test('hot swap under load: strategy, weights and server list change with zero failed requests', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const c = await httpServer('c', (_req, res) => setTimeout(() => res.end('c'), 20));
  const fe = frontendConfig('web', 'http', 'api');
  const v1 = config([fe], [backendConfig('api', 'http', [a.address, b.address])]);
  const sy = await start(v1);
  t.teardown(async () => { await sy.stop(200); await a.close(); await b.close(); await c.close(); });
  const port = sy.frontendAddress('web').port;
  const agent = new Agent({ connections: 16, keepAliveTimeout: 10000 });
  t.teardown(() => agent.close());

  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const seen = new Set<string>();
  const worker = async () => {
    while (!stop) {
      try {
        const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent });
        const body = await res.body.text();
        if (res.statusCode !== 200) failures.push(`${res.statusCode} ${body}`);
        else { ok++; seen.add(body); }
      } catch (error) {
        failures.push(String(error));
      }
    }
  };
  const workers = Array.from({ length: 12 }, worker);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(300);
  // 1: weights change
  const v2 = config([fe], [backendConfig('api', 'http', [a.address, b.address], {
    servers: [
      { name: 's1', address: { host: '127.0.0.1', port: a.port }, weight: 1, backup: false, maxconn: 0 },
      { name: 's2', address: { host: '127.0.0.1', port: b.port }, weight: 3, backup: false, maxconn: 0 },
    ],
  })]);
  t.ok((await sy.apply(v2)).ok);
  const serverBefore = sy.runtime().backends.get('api')!.serverById('static:s1');
  const countBefore = serverBefore!.counters.reqTot;
  await sleep(300);
  // 2: strategy change and a new server (a slow one, so requests are in flight at the next swap)
  const v3 = config([fe], [backendConfig('api', 'http', [a.address, b.address, c.address], { strategy: 'round-robin', retries: 3 })]);
  t.ok((await sy.apply(v3)).ok);
  await sleep(300);
  // 3: server removed while requests to it are in flight: they finish
  const v4 = config([fe], [backendConfig('api', 'http', [a.address], {})]);
  t.ok((await sy.apply(v4)).ok);
  await sleep(300);
  stop = true;
  await Promise.all(workers);
  t.same(failures, [], 'no request failed across four configs');
  t.ok(ok > 100, `requests served: ${ok}`);
  t.ok(seen.has('c'), 'the added server got traffic');
  const serverAfter = sy.runtime().backends.get('api')!.serverById('static:s1');
  t.equal(serverAfter, serverBefore, 'a server that stays keeps its identity');
  t.ok(serverAfter!.counters.reqTot > countBefore, 'and its counters keep counting');
  t.equal(sy.runtime().backends.get('api')!.servers.length, 1);
});

t.test('a config that fails to build leaves the running one serving', async (t) => {
  const a = await httpServer('a');
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address])]));
  t.teardown(async () => { await sy.stop(100); await a.close(); });
  const before = sy.runtime();
  const bad = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address], { strategy: './does-not-exist.js' })]);
  const r = await sy.apply(bad);
  t.equal(r.ok, false);
  t.match(r.errors.join('\n'), /backends\.api\.strategy/);
  t.equal(sy.runtime(), before, 'the runtime was not swapped');
  const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`);
  t.equal(await res.body.text(), 'a');
});

t.test('a config whose new bind fails is rolled back: servers and strategy stay as they were', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const busy = await httpServer('busy');
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address])]));
  t.teardown(async () => { await sy.stop(100); await a.close(); await b.close(); await busy.close(); });
  const next = config(
    [frontendConfig('web', 'http', 'api'), frontendConfig('extra', 'http', 'api', { bind: { host: '127.0.0.1', port: busy.port } })],
    [backendConfig('api', 'http', [b.address])],
  );
  const r = await sy.apply(next);
  t.equal(r.ok, false);
  t.match(r.errors.join('\n'), /cannot listen/);
  for (let i = 0; i < 3; i++) {
    const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`);
    t.equal(await res.body.text(), 'a', 'still served by the old server list');
  }
});

import t from 'tap';
import { request } from 'undici';
import { startSwitchyard } from '../src/switchyard.js';
import { HealthChecker } from '../src/health/checker.js';
import { ConsulDiscovery } from '../src/discovery/consul.js';
import { ConsulTestServer } from './support/consul-server.js';
import { backendConfig, config, frontendConfig, httpServer, quietLogger } from './support/proxy-harness.js';

// Health checks and discovery wired to the proxy core, end to end through a frontend.

t.test('a killed server is DOWN within fall x interval, requests meanwhile succeed by retry, back UP after rise', async (t) => {
  const a = await httpServer('a');
  let b = await httpServer('b');
  const bPort = b.port;
  const health = { type: 'http' as const, method: 'GET', path: '/', host: null, expect: [[200, 399]] as [number, number][], body: null, intervalMs: 200, fastIntervalMs: 100, downIntervalMs: 200, timeoutMs: 150, rise: 2, fall: 2, onMarkedDown: 'none' as const };
  const cfg = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address, b.address], { health })]);
  const sy = await startSwitchyard({ config: cfg, logger: quietLogger, watch: false, components: async () => [new HealthChecker({ log: quietLogger })] });
  t.teardown(async () => { await sy.stop(100); await a.close(); await b.close(); });
  const port = sy.frontendAddress('web').port;
  const server = sy.runtime().backends.get('api')!.serverByName('s2')!;
  await b.close();
  const killedAt = Date.now();
  // Requests during the DOWN window still succeed: refused connects are retried on a.
  for (let i = 0; i < 10; i++) {
    const res = await request(`http://127.0.0.1:${port}/`);
    t.equal(res.statusCode, 200);
    t.equal(await res.body.text(), 'a');
  }
  while (server.state !== 'DOWN' && Date.now() - killedAt < 3000) await new Promise((r) => setTimeout(r, 20));
  t.equal(server.state, 'DOWN');
  const downAfter = Date.now() - killedAt;
  t.ok(downAfter <= 2 * 200 * 1.1 + 150 + 300, `DOWN after ${downAfter} ms (fall 2 x 200 ms + timeout)`);
  t.match(server.stateReason, /refused|timeout|reset/);
  // Restart b on the same port: UP after rise successes.
  b = await httpServer('b', undefined);
  if (b.port !== bPort) {
    // httpServer picks a port itself; reopen on the old one instead.
    await b.close();
    const { createServer } = await import('node:http');
    const srv = createServer((_q, r) => r.end('b'));
    await new Promise<void>((r) => srv.listen(bPort, '127.0.0.1', r));
    t.teardown(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  }
  const upFrom = Date.now();
  while (server.state !== 'UP' && Date.now() - upFrom < 3000) await new Promise((r) => setTimeout(r, 20));
  t.equal(server.state, 'UP', `back UP after ${Date.now() - upFrom} ms`);
  const bodies = new Set<string>();
  for (let i = 0; i < 6; i++) bodies.add(await (await request(`http://127.0.0.1:${port}/`)).body.text());
  t.same([...bodies].sort(), ['a', 'b'], 'traffic spreads over both again');
});

t.test('a server added in Consul receives traffic within 1 s; removed, it gets no new requests', async (t) => {
  const consul = await ConsulTestServer.start();
  const a = await httpServer('a');
  const c = await httpServer('c');
  const cfg = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address], {
    discovery: { consul: { service: 'mcp-files', tag: null, passing: true, dc: null } },
  })], { consul: { address: consul.address, token: null, register: null, waitMs: 5000 } });
  const sy = await startSwitchyard({ config: cfg, logger: quietLogger, watch: false, components: async () => [new ConsulDiscovery(cfg.consul, quietLogger, { backoffBaseMs: 50, backoffCapMs: 200 })] });
  t.teardown(async () => { await sy.stop(100); await a.close(); await c.close(); await consul.stop(); });
  const port = sy.frontendAddress('web').port;
  t.equal(await (await request(`http://127.0.0.1:${port}/`)).body.text(), 'a');
  const addedAt = Date.now();
  consul.addService({ id: 'files-c', name: 'mcp-files', address: '127.0.0.1', port: c.port, status: 'passing' });
  let sawC = -1;
  while (Date.now() - addedAt < 2000) {
    if ((await (await request(`http://127.0.0.1:${port}/`)).body.text()) === 'c') { sawC = Date.now() - addedAt; break; }
  }
  t.ok(sawC >= 0 && sawC < 1000, `the new server got traffic ${sawC} ms after the change`);
  consul.removeService('files-c');
  const removedAt = Date.now();
  const backend = sy.runtime().backends.get('api')!;
  while (backend.servers.length !== 1 && Date.now() - removedAt < 2000) await new Promise((r) => setTimeout(r, 20));
  const before = c.seen.length;
  for (let i = 0; i < 10; i++) t.equal(await (await request(`http://127.0.0.1:${port}/`)).body.text(), 'a');
  t.equal(c.seen.length, before, 'no new requests after removal');
});

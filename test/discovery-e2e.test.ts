// Consul discovery wired to the proxy core, end to end: the real `consul` client against the
// Consul test server, traffic through a frontend to real HTTP servers. Default rate limit and
// wait: what a user runs.
import t, { type Test } from 'tap';
import { request } from 'undici';
import { startSwitchyard, type Switchyard } from '../src/switchyard.js';
import { ConsulDiscovery } from '../src/discovery/consul.js';
import type { ConsulDiscoveryConfig } from '../src/config/types.js';
import { ConsulTestServer } from './support/consul-server.js';
import { backendConfig, config, frontendConfig, httpServer, quietLogger, type TestHttpServer } from './support/proxy-harness.js';

const SERVICE: ConsulDiscoveryConfig = { service: 'mcp-files', tag: null, passing: true, dc: null };

async function startWithConsul(
  t: Test,
  consul: ConsulTestServer,
  staticServers: string[],
): Promise<{ sy: Switchyard; get: (path?: string) => Promise<string> }> {
  const cfg = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', staticServers, { discovery: { consul: SERVICE } })], {
    consul: { address: consul.address, token: null, register: null, waitMs: 60_000 },
  });
  const sy = await startSwitchyard({
    config: cfg,
    logger: quietLogger,
    watch: false,
    components: async () => [new ConsulDiscovery(cfg.consul, quietLogger, { backoffBaseMs: 50, backoffCapMs: 200 })],
  });
  t.teardown(() => sy.stop(100));
  const port = sy.frontendAddress('web').port;
  const get = async (path = '/') => {
    const res = await request(`http://127.0.0.1:${port}${path}`);
    const body = await res.body.text();
    return res.statusCode === 200 ? body : `status ${res.statusCode}`;
  };
  return { sy, get };
}

/** Send requests until `want` answers, for at most `ms`; the ms it took, or -1. */
async function firstAnswerFrom(get: () => Promise<string>, want: string, ms: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) if ((await get()) === want) return Date.now() - start;
  return -1;
}

t.test('added in Consul: traffic as the watch wakes; removed: no new requests while its open ones finish', async (t) => {
  const consul = await ConsulTestServer.start();
  const a = await httpServer('a');
  // c holds /slow until released below: requests in flight when c leaves Consul (released by the
  // test, not by a timer, so a slow machine cannot finish them before the removal).
  const held: (() => void)[] = [];
  const c = await httpServer('c', (req, res) => {
    if (req.url === '/slow') held.push(() => res.end('c-slow'));
    else res.end('c');
  });
  t.teardown(async () => {
    await a.close();
    await c.close();
    await consul.close();
  });
  const { sy, get } = await startWithConsul(t, consul, [a.address]);
  t.equal(await get(), 'a');
  await new Promise((r) => setTimeout(r, 100)); // the watch now blocks on Consul's index

  consul.addService({ id: 'files-c', name: 'mcp-files', address: '127.0.0.1', port: c.port });
  // The watch blocks for a minute (waitMs 60 s): c answering within 10 s means the change woke the
  // blocking query (a watch that waits the query out fails: -1).
  const took = await firstAnswerFrom(get, 'c', 10_000);
  t.ok(took >= 0, `the new server answered ${took} ms after it was added, well before the 60 s wait`);

  // Requests in flight on c, then c is removed.
  const slow = Array.from({ length: 4 }, () => get('/slow'));
  const backend = sy.runtime().backends.get('api')!;
  const cServer = backend.serverById('consul:files-c')!;
  const deadline = Date.now() + 10_000;
  // Every slow request has reached its server (a answers at once, c holds them).
  const slowSeen = (s: TestHttpServer) => s.seen.filter((r) => r.url === '/slow').length;
  while (slowSeen(a) + slowSeen(c) < slow.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.ok(cServer.active > 0 && cServer.active === slowSeen(c), `${cServer.active} request(s) open on c`);
  consul.removeService('files-c');
  while (!cServer.retired && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 5));
  t.ok(cServer.retired, 'c left the backend');
  t.ok(cServer.active > 0, 'its requests are still running');
  const seenBefore = seenCount(c);
  for (let i = 0; i < 10; i++) t.equal(await get(), 'a', 'new requests go to a');
  t.equal(seenCount(c), seenBefore, 'c got no new request after its removal');
  for (const release of held) release();
  const answers = await Promise.all(slow);
  t.ok(answers.filter((x) => x === 'c-slow').length >= 1, `open requests on c finished: ${answers.join(', ')}`);
  t.ok(
    answers.every((x) => x === 'c-slow' || x === 'a'),
    'none failed',
  );
  t.equal(cServer.active, 0);
});

t.test('a Consul outage changes nothing served; recovery and an index reset are followed', async (t) => {
  const consul = await ConsulTestServer.start();
  const servers: TestHttpServer[] = await Promise.all(['c1', 'c2', 'c3', 'c4'].map((n) => httpServer(n)));
  const [c1, c2, c3, c4] = servers as [TestHttpServer, TestHttpServer, TestHttpServer, TestHttpServer];
  t.teardown(async () => {
    for (const s of servers) await s.close();
    await consul.close();
  });
  consul.addService({ id: 'c1', name: 'mcp-files', address: '127.0.0.1', port: c1.port });
  consul.addService({ id: 'c2', name: 'mcp-files', address: '127.0.0.1', port: c2.port });
  const { get } = await startWithConsul(t, consul, []);
  const answered = async (n: number) => {
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) seen.add(await get());
    return [...seen].sort();
  };
  for (let i = 0; i < 100 && (await answered(4)).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  t.same(await answered(6), ['c1', 'c2'], 'both discovered servers serve');

  await consul.stop();
  // At least 600 ms and at least 10 requests (a loaded machine may take longer for 10).
  const outageEnd = Date.now() + 600;
  const during: string[] = [];
  while (Date.now() < outageEnd || during.length < 10) during.push(await get());
  t.same([...new Set(during)].sort(), ['c1', 'c2'], 'during the outage: the same servers, every request answered (no 502/503)');

  // Changes made while the balancer could not see them are picked up when Consul is back.
  consul.removeService('c1');
  consul.addService({ id: 'c3', name: 'mcp-files', address: '127.0.0.1', port: c3.port });
  await consul.restart();
  t.ok((await firstAnswerFrom(get, 'c3', 10_000)) >= 0, 'c3 serves after recovery');
  const seenC1 = seenCount(c1);
  t.same(await answered(6), ['c2', 'c3'], 'c1 is gone');
  t.equal(seenCount(c1), seenC1);

  // The index goes backwards (a snapshot restore): followed, and later changes still arrive.
  await new Promise((r) => setTimeout(r, 100));
  consul.resetIndex();
  await new Promise((r) => setTimeout(r, 100));
  consul.addService({ id: 'c4', name: 'mcp-files', address: '127.0.0.1', port: c4.port });
  // Within 10 s against a 60 s wait: the change after the reset woke the watch (-1 fails).
  const took = await firstAnswerFrom(get, 'c4', 10_000);
  t.ok(took >= 0, `after an index reset a new server answered after ${took} ms`);
});

function seenCount(s: TestHttpServer): number {
  return s.seen.length;
}

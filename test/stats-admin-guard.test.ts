// The admin surface against browsers and rebinding: admin writes need
// `Content-Type: application/json`; an Origin, when sent, must be the stats page's own
// (`Origin: null` is refused); `stats.allowed_hosts` answers 421 to other Host names (DNS
// rebinding) but leaves /health open; `stats.auth.read: private` protects reads; and
// maxconn_per_source counts stay right when a reload turns the limit off and on.
import t from 'tap';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { parseConfig } from '../src/config/load.js';
import { ADMIN_AUTH, sampleConfig, startFixture, statsConfig } from './support/stats-fixtures.js';
import { backendConfig, config, frontendConfig, httpServer, start } from './support/proxy-harness.js';
import { until } from './support/hostile.js';

async function call(base: string, method: string, path: string, headers: Record<string, string>, body?: string) {
  const res = await request(`${base}${path}`, { method: method as 'POST', headers, body });
  return { status: res.statusCode, text: await res.body.text() };
}

t.test('admin writes need Content-Type: application/json (415 otherwise), and change nothing without it', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const s1 = f.runtime.backends.get('api')!.serverByName('s1')!;
  const body = JSON.stringify({ state: 'maint' });
  for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx']) {
    const headers: Record<string, string> = { authorization: ADMIN_AUTH };
    if (type !== undefined) headers['content-type'] = type;
    const res = await call(f.base, 'POST', '/api/backends/api/servers/s1/state', headers, body);
    t.equal(res.status, 415, `content-type ${type ?? '(none)'}: 415`);
  }
  const reload = await call(f.base, 'POST', '/api/reload', { authorization: ADMIN_AUTH });
  t.equal(reload.status, 415, 'a reload without a JSON body type too');
  t.equal(f.host.reloads, 0, 'reload never ran');
  t.equal(s1.admin, 'ready', 'nothing changed');
  const ok = await call(
    f.base,
    'POST',
    '/api/backends/api/servers/s1/state',
    { authorization: ADMIN_AUTH, 'content-type': 'Application/JSON; charset=utf-8' },
    body,
  );
  t.equal(ok.status, 200, 'application/json with a charset is fine');
  t.equal(s1.admin, 'maint');
});

t.test("Origin: only the stats page's own; null and others are refused even with credentials", async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const s1 = f.runtime.backends.get('api')!.serverByName('s1')!;
  const json = { authorization: ADMIN_AUTH, 'content-type': 'application/json' };
  const body = JSON.stringify({ state: 'maint' });
  const port = new URL(f.base).port;
  for (const origin of ['null', 'http://evil.example', `http://127.0.0.1.evil.example:${port}`, `ftp://127.0.0.1:${port}`, 'garbage']) {
    const res = await call(f.base, 'POST', '/api/backends/api/servers/s1/state', { ...json, origin }, body);
    t.equal(res.status, 403, `Origin ${origin}: 403`);
  }
  t.equal(s1.admin, 'ready', 'nothing changed');
  t.equal((await call(f.base, 'POST', '/api/backends/api/servers/s1/state', { ...json, origin: f.base }, body)).status, 200, "the page's own origin");
  t.equal(
    (await call(f.base, 'POST', '/api/backends/api/servers/s1/state', json, JSON.stringify({ state: 'ready' }))).status,
    200,
    'no Origin (curl, scripts)',
  );
});

t.test('stats.allowed_hosts: other Host names get 421 (DNS rebinding), /health stays open', async (t) => {
  const f = await startFixture({ ...sampleConfig(), stats: statsConfig({ allowedHosts: ['stats.internal', 'localhost:9999'] }) });
  t.teardown(f.close);
  const port = Number(new URL(f.base).port);
  const get = async (path: string, host: string) => (await request(`${f.base}${path}`, { headers: { host } })).statusCode;
  t.equal(await get('/api/stats', 'attacker.example'), 421, 'a rebinding name is refused');
  t.equal(await get('/stats;csv', `127.0.0.1:${port}`), 421, 'an unlisted address too');
  t.equal(await get('/api/stats', 'localhost:1234'), 421, 'a listed name with another port');
  t.equal(await get('/api/stats', `stats.internal:${port}`), 200, 'a listed name, any port');
  t.equal(await get('/api/stats', 'STATS.INTERNAL'), 200, 'case does not matter');
  t.equal(await get('/api/stats', 'localhost:9999'), 200, 'a listed host:port');
  t.equal(await get('/health', 'attacker.example'), 200, '/health stays open to probes');
  const res = await request(`${f.base}/api/backends/api/servers/s1/state`, {
    method: 'POST',
    headers: { host: 'attacker.example', authorization: ADMIN_AUTH, 'content-type': 'application/json' },
    body: '{"state":"maint"}',
  });
  await res.body.text();
  t.equal(res.statusCode, 421, 'admin writes too');
  t.equal(f.runtime.backends.get('api')!.serverByName('s1')!.admin, 'ready');
});

t.test('config: stats.auth.read and stats.allowed_hosts', async (t) => {
  const base = 'frontends: { w: { bind: 1, backend: b } }\nbackends: { b: { servers: [{ address: "127.0.0.1:1" }] } }\n';
  const c = parseConfig(`stats:\n  auth: { username: u, password: p, read: private }\n  allowed_hosts: [Stats.Example, "10.0.0.2:11099"]\n${base}`, null);
  t.equal(c.stats.read, 'private', 'auth.read: private');
  t.same(c.stats.auth, { username: 'u', password: 'p' });
  t.same(c.stats.allowedHosts, ['stats.example', '10.0.0.2:11099'], 'lowercased');
  t.equal(parseConfig(`stats:\n  auth: { username: u, password: p }\n  read: private\n${base}`, null).stats.read, 'private', 'stats.read still works');
  t.equal(parseConfig(base, null).stats.read, 'public', 'public by default');
});

t.test('read: private through auth.read protects reads', async (t) => {
  const cfg = parseConfig(
    'stats:\n  bind: 127.0.0.1:0\n  auth: { username: admin, password: "s3cret pass", read: private }\nfrontends: { w: { bind: "127.0.0.1:0", backend: b } }\nbackends: { b: { servers: [{ address: "127.0.0.1:1" }] } }\n',
    null,
  );
  const f = await startFixture(cfg);
  t.teardown(f.close);
  t.equal((await request(`${f.base}/api/stats`)).statusCode, 401, 'no credentials: 401');
  t.equal((await request(`${f.base}/api/stats`, { headers: { authorization: ADMIN_AUTH } })).statusCode, 200, 'with them: 200');
});

/** Open a connection and resolve once connected; `closed()` tells whether the proxy dropped it. */
function hold(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let closed = false;
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => {});
    socket.on('connect', () => resolve({ socket, closed: () => closed }));
  });
}

t.test('maxconn_per_source counts stay right when a reload turns the limit off and on again', async (t) => {
  const srv = await httpServer('a');
  const fe = frontendConfig('web', 'http', 'api', { maxconnPerSource: 2 });
  const sy = await start(config([fe], [backendConfig('api', 'http', [srv.address])]));
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const bind = sy.runtime().config.frontends[0]!.bind;
  const withLimit = async (n: number) => {
    const cfg = sy.runtime().config;
    t.ok((await sy.apply({ ...cfg, frontends: [{ ...fe, bind, maxconnPerSource: n }] })).ok, `reloaded with maxconn_per_source ${n}`);
  };
  const frontend = sy.runtime().frontends.get('web')!;
  const first = await Promise.all([hold(port), hold(port)]);
  await withLimit(0);
  for (const h of first) h.socket.destroy();
  const during = await hold(port); // accepted while the limit is off
  await until(() => first.every((h) => h.closed()), 10_000);
  await withLimit(2);
  const next = await hold(port);
  await new Promise((r) => setTimeout(r, 100));
  t.notOk(next.closed(), 'room for a second connection: the two closed while the limit was off are not counted');
  const over = await hold(port);
  // 5 s: half the 10 s http_request timeout, so a close seen here is the refusal, not that timeout.
  t.ok(await until(over.closed, 5000), 'a third is refused: the one accepted while the limit was off counts');
  t.equal(frontend.perSource.get('127.0.0.1'), 2, 'the count is the connections open');
  during.socket.destroy();
  next.socket.destroy();
  t.ok(await until(() => frontend.perSource.size === 0, 10_000), 'back to zero when they close');
  const again = await Promise.all([hold(port), hold(port)]);
  await new Promise((r) => setTimeout(r, 100));
  t.ok(
    again.every((h) => !h.closed()),
    'two new connections are welcome',
  );
  for (const h of again) h.socket.destroy();
});

import t from 'tap';
import { request } from 'undici';
import { buildRuntime } from '../src/model/runtime.js';
import { ADMIN, ADMIN_AUTH, basic, sampleConfig, startFixture, statsConfig } from './support/stats-fixtures.js';

// The admin API and `read: private` (contract: "Admin calls without valid credentials get 401
// and change nothing"). Each refused call is followed by a look at the model: nothing moved.

type Headers = Record<string, string>;

async function call(
  base: string,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  headers: Headers = {},
  body?: unknown,
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const res = await request(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const WRONG: [string, Headers][] = [
  ['no credentials', {}],
  ['wrong password', { authorization: basic(ADMIN.username, 'guess') }],
  ['wrong user', { authorization: basic('root', ADMIN.password) }],
  ['password as a prefix of the right one', { authorization: basic(ADMIN.username, ADMIN.password.slice(0, -1)) }],
  ['not basic', { authorization: `Bearer ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}` }],
  ['no colon', { authorization: `Basic ${Buffer.from(ADMIN.username).toString('base64')}` }],
  ['garbage', { authorization: 'Basic %%%' }],
];

t.test('admin calls without valid credentials: 401 and nothing changes', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const api = f.runtime.backends.get('api')!;
  const s1 = api.serverByName('s1')!;
  for (const [what, headers] of WRONG) {
    const state = await call(f.base, 'POST', '/api/backends/api/servers/s1/state', headers, { state: 'maint' });
    t.equal(state.status, 401, `state, ${what}`);
    t.match(String(state.headers['www-authenticate']), /^Basic realm="switchyard stats"/, `challenge, ${what}`);
    t.match(JSON.parse(state.text), { error: what === 'no credentials' ? 'authentication required' : 'wrong credentials' });
    const strategy = await call(f.base, 'PUT', '/api/backends/api/strategy', headers, { strategy: 'random' });
    t.equal(strategy.status, 401, `strategy, ${what}`);
    const reload = await call(f.base, 'POST', '/api/reload', headers);
    t.equal(reload.status, 401, `reload, ${what}`);
  }
  t.equal(s1.admin, 'ready', 'server admin state unchanged');
  t.equal(s1.state, 'UP');
  t.equal(api.strategyName, 'round-robin', 'strategy unchanged');
  t.same(f.host.strategyCalls, [], 'setStrategy never called');
  t.equal(f.host.reloads, 0, 'reload never called');
  const stats = JSON.parse((await call(f.base, 'GET', '/api/stats')).text);
  t.equal(stats.backends[0].servers[0].admin, 'ready', '/api/stats agrees');

  // The page's own requests get no browser prompt on a 401.
  const fromPage = await call(
    f.base,
    'POST',
    '/api/backends/api/servers/s1/state',
    { 'x-requested-with': 'switchyard-page', authorization: basic('admin', 'nope') },
    { state: 'drain' },
  );
  t.equal(fromPage.status, 401);
  t.equal(fromPage.headers['www-authenticate'], undefined);
  t.equal(s1.admin, 'ready');

  // And with the right credentials each call does what it says.
  const ok = await call(f.base, 'POST', '/api/backends/api/servers/s1/state', { authorization: ADMIN_AUTH }, { state: 'maint' });
  t.equal(ok.status, 200);
  t.match(JSON.parse(ok.text), { backend: 'api', server: 's1', admin: 'maint', state: 'MAINT', changed: true });
  t.equal(s1.state, 'MAINT');
  const strat = await call(f.base, 'PUT', '/api/backends/api/strategy', { authorization: ADMIN_AUTH }, { strategy: 'least-connections' });
  t.equal(strat.status, 200);
  t.equal(api.strategyName, 'least-connections');
  t.equal((await call(f.base, 'POST', '/api/reload', { authorization: ADMIN_AUTH }, {})).status, 200);
  t.equal(f.host.reloads, 1);
});

t.test('bad admin input with good credentials: a clear 4xx and nothing changes', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const s1 = f.runtime.backends.get('api')!.serverByName('s1')!;
  const auth = { authorization: ADMIN_AUTH };
  const cases: [string, 'POST' | 'PUT', string, unknown, number, RegExp][] = [
    ['unknown state', 'POST', '/api/backends/api/servers/s1/state', { state: 'off' }, 400, /state: expected one of ready, drain, maint, got "off"/],
    ['no state', 'POST', '/api/backends/api/servers/s1/state', {}, 400, /state: expected one of/],
    ['bad JSON', 'POST', '/api/backends/api/servers/s1/state', '{"state":', 400, /invalid JSON/],
    ['JSON array', 'POST', '/api/backends/api/servers/s1/state', '["maint"]', 400, /expected a JSON object/],
    ['unknown server', 'POST', '/api/backends/api/servers/s9/state', { state: 'maint' }, 404, /unknown server "s9"/],
    ['unknown backend', 'POST', '/api/backends/nope/servers/s1/state', { state: 'maint' }, 404, /unknown backend "nope"/],
    ['unknown strategy', 'PUT', '/api/backends/api/strategy', { strategy: 'fastest' }, 400, /strategy: /],
    ['empty strategy', 'PUT', '/api/backends/api/strategy', { strategy: ' ' }, 400, /strategy: expected a strategy name/],
    ['wrong method', 'PUT', '/api/backends/api/servers/s1/state', { state: 'maint' }, 405, /method not allowed/],
  ];
  for (const [what, method, path, body, status, message] of cases) {
    const res = await call(f.base, method, path, auth, body);
    t.equal(res.status, status, what);
    t.match(JSON.parse(res.text).error, message, what);
  }
  const big = await call(f.base, 'POST', '/api/backends/api/servers/s1/state', auth, JSON.stringify({ state: 'maint', pad: 'x'.repeat(70_000) }));
  t.equal(big.status, 413, 'body over 64 KiB');
  t.equal(s1.admin, 'ready', 'nothing changed');
  t.equal(f.runtime.backends.get('api')!.strategyName, 'round-robin');
});

t.test('a cross-origin admin request is refused even with credentials', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const s1 = f.runtime.backends.get('api')!.serverByName('s1')!;
  const res = await call(
    f.base,
    'POST',
    '/api/backends/api/servers/s1/state',
    { authorization: ADMIN_AUTH, origin: 'http://evil.example' },
    { state: 'maint' },
  );
  t.equal(res.status, 403);
  t.equal(s1.admin, 'ready');
  const same = await call(f.base, 'POST', '/api/backends/api/servers/s1/state', { authorization: ADMIN_AUTH, origin: f.base }, { state: 'drain' });
  t.equal(same.status, 200, 'the page itself (same origin) may');
  t.equal(s1.admin, 'drain');
});

t.test('no stats.auth: admin is disabled (403), reading stays open', async (t) => {
  const cfg = { ...sampleConfig(), stats: statsConfig({ auth: null }) };
  const f = await startFixture(cfg);
  t.teardown(f.close);
  const res = await call(f.base, 'POST', '/api/backends/api/servers/s1/state', { authorization: ADMIN_AUTH }, { state: 'maint' });
  t.equal(res.status, 403);
  t.match(JSON.parse(res.text).error, /admin disabled: set stats\.auth/);
  t.equal(f.runtime.backends.get('api')!.serverByName('s1')!.admin, 'ready');
  t.equal((await call(f.base, 'GET', '/api/stats')).status, 200);
  t.equal(JSON.parse((await call(f.base, 'GET', '/api/stats')).text).admin, false, 'the page hides its login');
});

t.test('read: private — every read needs the credentials; /health stays open', async (t) => {
  const cfg = { ...sampleConfig(), stats: statsConfig({ read: 'private' }) };
  const f = await startFixture(cfg);
  t.teardown(f.close);
  const reads = ['/', '/stats', '/stats;csv', '/stats?format=csv', '/api/stats', '/metrics', '/api/history?backend=api', '/api/whoami'];
  for (const path of reads) {
    for (const [what, headers] of WRONG.slice(0, 3)) {
      const res = await call(f.base, 'GET', path, headers);
      t.equal(res.status, 401, `${path}, ${what}`);
      t.notMatch(res.text, /pxname|switchyard_|<html/, `${path}: nothing leaks in the 401 body`);
    }
  }
  // The event stream answers 200 and stays open: check its status only, then cut it.
  const denied = await request(`${f.base}/api/events`);
  t.equal(denied.statusCode, 401, '/api/events without credentials');
  await denied.body.text();
  const ac = new AbortController();
  const events = await request(`${f.base}/api/events`, { headers: { authorization: ADMIN_AUTH }, signal: ac.signal });
  t.equal(events.statusCode, 200, '/api/events with credentials');
  ac.abort();
  await events.body.text().catch(() => '');
  for (const path of reads) {
    const res = await call(f.base, 'GET', path, { authorization: ADMIN_AUTH });
    t.equal(res.status, 200, `${path} with the credentials`);
  }
  const health = await call(f.base, 'GET', '/health');
  t.equal(health.status, 200, '/health needs no credentials');
  t.same(JSON.parse(health.text), { status: 'ok' });
});

t.test('new credentials from a reload replace the old ones', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const next = await buildRuntime({ ...sampleConfig(), stats: statsConfig({ auth: { username: 'ops', password: 'n3w' }, read: 'private' }) }, f.runtime);
  f.stats.sync(next);
  t.equal((await call(f.base, 'GET', '/api/whoami', { authorization: ADMIN_AUTH })).status, 401, 'old credentials refused');
  t.equal((await call(f.base, 'GET', '/api/stats')).status, 401, 'read: private applies at once');
  const who = await call(f.base, 'GET', '/api/whoami', { authorization: basic('ops', 'n3w') });
  t.equal(who.status, 200);
  t.same(JSON.parse(who.text), { user: 'ops', admin: true });
});

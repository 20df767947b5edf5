// A user router and hooks from modules, with real traffic: every kind of router answer (a
// backend name, { backend }, redirect, deny, a direct answer, nothing to fall through to the
// routes), request/response header edits through the hooks, a hook answering directly; every
// failure contained (a throw, an unknown backend, a forbidden header edit: the default backend;
// a hook that throws: skipped, its edits undone), counted per module. Editing the router
// module on disk swaps it through the file watch; an endless loop in a new version is refused
// while the old one serves.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfigFile } from '../src/config/load.js';
import { startStats } from '../src/stats/listener.js';
import { startSwitchyard } from '../src/switchyard.js';
import { httpServer, quietLogger } from './support/proxy-harness.js';

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ROUTER = `
export function route(req) {
  switch (req.path) {
    case '/to-canary': req.setHeader('x-from-router', req.method + ' ' + req.path + '?' + req.query); return 'canary';
    case '/obj': return { backend: 'other' };
    case '/redirect': return { redirect: 'https://example.com/new', status: 301 };
    case '/deny': return { deny: 451, body: 'not here\\n' };
    case '/respond': return { respond: { status: 200, headers: { 'x-answered': 'router' }, body: 'from the router' } };
    case '/throw': req.setHeader('x-half', 'done'); throw new Error('router bug');
    case '/unknown': return 'no-such-backend';
    case '/bad-header': req.setHeader('content-length', '1'); return 'canary';
    case '/by-query': return req.queryParam('to') ?? undefined;
    case '/by-header': return req.header('X-Pick') ?? undefined;
    default: return undefined;
  }
}
`;

const HOOKS = `
export function onRequest(req) {
  if (req.path === '/hook-answer') return { respond: { status: 418, body: 'a teapot' } };
  req.setHeader('x-hook', req.backend + ' ' + (req.route ?? '-') + ' ' + req.clientIp);
  req.removeHeader('x-secret');
  if (req.path === '/hook-throw') { req.setHeader('x-partial', '1'); throw new Error('hook bug'); }
}
export function onResponse(req, res) {
  res.setHeader('x-served-by', req.server + ' for ' + req.path + ' ' + (req.header('x-in') ?? '-') + ' ' + res.status);
  res.removeHeader('x-internal');
}
`;

t.test('a user router and hooks on real traffic', async (t) => {
  const stable = await httpServer('stable', (_req, res) => {
    res.setHeader('x-internal', 'secret');
    res.end('stable');
  });
  const canary = await httpServer('canary');
  const other = await httpServer('other');
  const dir = mkdtempSync(join(tmpdir(), 'sy-router-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'router.js'), ROUTER);
  writeFileSync(join(dir, 'hooks.js'), HOOKS);
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:0 }
frontends:
  web:
    mode: http
    bind: 127.0.0.1:0
    router: ./router.js
    hooks: ./hooks.js
    default_backend: stable
    routes:
      - { name: fall, match: { path_prefix: /fall/ }, backend: other }
backends:
  stable: { mode: http, health: { type: none }, servers: [ { name: s1, address: ${stable.address} } ] }
  canary: { mode: http, health: { type: none }, servers: [ { name: c1, address: ${canary.address} } ] }
  other: { mode: http, health: { type: none }, servers: [ { name: o1, address: ${other.address} } ] }
`,
  );
  const config = await loadConfigFile(file);
  const sy = await startSwitchyard({ config, loadConfig: loadConfigFile, logger: quietLogger, watch: true });
  const stats = await startStats(sy, config.stats, quietLogger);
  t.teardown(async () => {
    await stats.stop();
    await sy.stop(100);
    await stable.close();
    await canary.close();
    await other.close();
  });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}${path}`, { headers });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  };
  const last = (s: typeof stable) => s.seen.at(-1)!;
  const errorsOf = async (kind: string) => {
    const json = (await (await request(`http://127.0.0.1:${stats.address().port}/api/stats`)).body.json()) as {
      userCode: { file: string; kind: string; errors: number; lastError: string | null }[];
    };
    return json.userCode.find((m) => m.kind === kind && m.file === join(dir, `${kind === 'router' ? 'router' : 'hooks'}.js`))!;
  };

  let r = await get('/to-canary?x=1', { 'x-in': 'in1', 'x-secret': 's' });
  t.equal(r.body, 'canary', 'a backend name');
  t.equal(last(canary).headers['x-from-router'], 'GET /to-canary?x=1', 'the router read method, path, query and set a request header');
  t.equal(last(canary).headers['x-hook'], 'canary - 127.0.0.1', 'onRequest saw backend, route and client');
  t.equal(last(canary).headers['x-secret'], undefined, 'onRequest removed a header');
  t.equal(r.headers['x-served-by'], 'c1 for /to-canary in1 200', 'onResponse saw server, path, a request header and the status');

  r = await get('/obj');
  t.equal(r.body, 'other', '{ backend }');
  r = await get('/redirect');
  t.equal(r.status, 301, 'redirect');
  t.equal(r.headers.location, 'https://example.com/new');
  r = await get('/deny');
  t.same([r.status, r.body], [451, 'not here\n'], 'deny with a body');
  r = await get('/respond');
  t.same([r.status, r.body, r.headers['x-answered']], [200, 'from the router', 'router'], 'a direct answer');
  r = await get('/by-query?to=other');
  t.equal(r.body, 'other', 'queryParam');
  r = await get('/by-header', { 'x-pick': 'canary' });
  t.equal(r.body, 'canary', 'header(), case-insensitive');
  r = await get('/fall/x');
  t.equal(r.body, 'other', 'nothing returned: the routes decide');
  t.equal(last(other).headers['x-hook'], 'other fall 127.0.0.1', 'hooks see the route that matched');
  r = await get('/elsewhere', { 'x-secret': 's' });
  t.equal(r.body, 'stable', 'then the default backend');
  t.equal(r.headers['x-internal'], undefined, 'onResponse removed a response header');
  t.equal(last(stable).headers['x-secret'], undefined);

  // Failures: the default backend, counted; a throw's partial edits are undone.
  const before = (await errorsOf('router')).errors;
  for (const path of ['/throw', '/unknown', '/bad-header']) {
    r = await get(path);
    t.same([r.status, r.body], [200, 'stable'], `${path}: the default backend`);
  }
  t.equal(last(stable).headers['content-length'], undefined, 'the forbidden edit did not happen');
  const router = await errorsOf('router');
  t.equal(router.errors - before, 3, 'three router failures counted on the module');
  t.match(router.lastError, /managed by the proxy/);
  await get('/throw');
  t.equal(last(stable).headers['x-half'], undefined, 'a throwing router leaves no header edit behind');

  r = await get('/hook-answer');
  t.same([r.status, r.body], [418, 'a teapot'], 'onRequest answered directly');
  r = await get('/hook-throw');
  t.same([r.status, r.body], [200, 'stable'], 'a throwing hook is skipped, the request served');
  t.equal(last(stable).headers['x-partial'], undefined, 'its edits undone');
  t.equal(last(stable).headers['x-hook'], undefined);
  t.equal((await errorsOf('hooks')).errors, 1, 'counted on the hooks module');

  // Hot swap through the watch; an endless loop refused while the old version serves.
  writeFileSync(join(dir, 'router.js'), `export const route = (req) => req.path === '/obj' ? 'canary' : undefined;`);
  await until('the watch to swap the router', async () => (await get('/obj')).body === 'canary');
  const generation = sy.runtime().generation;
  writeFileSync(join(dir, 'router.js'), `export function route(req) { if (req.header('x-canary') === '1') for (;;) {} return 'other'; }`);
  const refused = await sy.reload();
  t.equal(refused.ok, false, 'a router whose route() never returns is refused');
  t.match(refused.errors.join(' '), /frontends\.web\.router: router module .*router\.js \(dry run of route\(\)\) did not return within \d+ ms/);
  t.equal(sy.runtime().generation, generation);
  t.equal((await get('/obj')).body, 'canary', 'the old version keeps serving');
});

t.test('router and hooks: config errors name the key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-router-cfg-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(join(dir, 'none.js'), 'export const x = 1;');
  const cfg = (fe: string) => `frontends:
  web: { mode: http, bind: 127.0.0.1:0, backend: b, ${fe} }
  raw: { mode: tcp, bind: 127.0.0.1:0, backend: t, router: ./none.js }
backends:
  b: { mode: http, servers: [ { address: 127.0.0.1:1 } ] }
  t: { mode: tcp, servers: [ { address: 127.0.0.1:1 } ] }
`;
  writeFileSync(file, cfg('router: ./missing.js, hooks: router.js'));
  const error = await loadConfigFile(file).then(
    () => null,
    (e: unknown) => e as { issues?: { path: string; message: string }[] },
  );
  const text = (error?.issues ?? []).map((i) => `${i.path}: ${i.message}`).join('\n');
  t.match(text, /frontends\.web\.router: router module not found: .*missing\.js/);
  t.match(text, /frontends\.web\.hooks: a module path starting with \.\/ or \/ is expected/);
  t.match(text, /frontends\.raw\.router: router needs mode http/);
});

import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parseConfig } from '../src/config/load.js';
import { startStats } from '../src/stats/listener.js';
import { renderFrontends } from '../src/stats/page/frontends.js';
import type { StatsJson } from '../src/stats/page/types.js';
import { httpServer, quietLogger, start } from './support/proxy-harness.js';

// Route hits where users look: /api/stats, /metrics, the stats page; and `switchyard check`
// printing the route table and warning about shadowed routes.

const run = promisify(execFile);

const ROUTES = `
    routes:
      - name: api
        match: { path_prefix: /api }
        backend: api
      - name: legacy
        match: { path_prefix: /api/v0 }
        backend: api
      - match: { path: /gone }
        deny: { status: 410 }
    default_backend: web`;

t.test('hits per route in /api/stats and /metrics, kept across a reload', async (t) => {
  const api = await httpServer('api');
  const web = await httpServer('web');
  const yaml = (routes: string) =>
    `stats: { bind: 127.0.0.1:0 }\nfrontends:\n  web:\n    bind: 127.0.0.1:0\n${routes}\nbackends:\n  api: { servers: [ { address: ${api.address} } ] }\n  web: { servers: [ { address: ${web.address} } ] }\n`;
  const sy = await start(parseConfig(yaml(ROUTES), null));
  const stats = await startStats(sy, sy.runtime().config.stats, quietLogger);
  t.teardown(async () => {
    await stats.close();
    await sy.stop(200);
    await api.close();
    await web.close();
  });
  const port = sy.frontendAddress('web').port;
  for (const path of ['/api/a', '/api/b', '/api/v0/c', '/gone', '/', '/x']) await (await request(`http://127.0.0.1:${port}${path}`)).body.text();

  const json = (await (await request(`http://127.0.0.1:${stats.address().port}/api/stats`)).body.json()) as {
    frontends: { name: string; routes: { name: string; hits: number; action: string; match: string }[] }[];
  };
  const routes = json.frontends.find((f) => f.name === 'web')!.routes;
  t.same(
    routes.map((r) => [r.name, r.hits]),
    [
      ['api', 3],
      ['legacy', 0],
      ['routes[2]', 1],
      ['default', 2],
    ],
  );
  t.equal(routes[0]!.match, 'path_prefix /api');
  t.equal(routes[2]!.action, 'deny 410');

  const metrics = await (await request(`http://127.0.0.1:${stats.address().port}/metrics`)).body.text();
  t.match(metrics, /^switchyard_route_hits_total\{frontend="web",route="api",action="backend",backend="api"\} 3$/m);
  t.match(metrics, /^switchyard_route_hits_total\{frontend="web",route="routes\[2\]",action="deny",backend=""\} 1$/m);
  t.match(metrics, /^switchyard_route_hits_total\{frontend="web",route="default",action="backend",backend="web"\} 2$/m);

  // A reload that keeps the route names keeps their counts (counters survive reloads).
  const result = await sy.apply(parseConfig(yaml(ROUTES.replace('/gone', '/went')), null));
  t.ok(result.ok);
  await (await request(`http://127.0.0.1:${port}/api/z`)).body.text();
  const after = sy.runtime().frontends.get('web')!.routing;
  t.equal(after.routes[0]!.stats.hits, 4);
  t.equal(after.defaultStats.hits, 2);
});

t.test("the stats page shows each frontend's routes with their hits", async (t) => {
  const html = renderFrontends({
    frontends: [
      {
        name: 'web',
        mode: 'http',
        bind: '127.0.0.1:80',
        backend: 'web',
        status: 'OPEN',
        stats: { req_rate: 1 },
        routes: [
          { name: 'api', match: 'path_prefix /api', action: 'backend api', backend: 'api', hits: 3 },
          { name: 'default', match: 'no route matched', action: 'backend web', backend: 'web', hits: 1 },
        ],
      },
      { name: 'plain', mode: 'http', bind: '127.0.0.1:81', backend: 'web', status: 'OPEN', stats: {}, routes: [] },
    ],
  } as unknown as StatsJson);
  t.match(html, /<table class="inner" aria-label="routes of web">/);
  t.match(html, /data-route="api"[^]*path_prefix \/api[^]*backend api[^]*>3<span class="sub">75%<\/span>/);
  t.notMatch(html, /routes of plain/, 'no table for a frontend without routes');
});

t.test('switchyard check prints the route table and warns about shadowed routes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-routes-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `frontends:\n  web:\n    bind: 127.0.0.1:0\n${ROUTES}\n      - match: { host: "*.example.com" }\n        redirect: { status: 308, location: "https://example.com\${path}" }\n      - match: { host: a.example.com, method: GET }\n        backend: api\nbackends:\n  api: { servers: [ { address: 127.0.0.1:1 } ] }\n  web: { servers: [ { address: 127.0.0.1:1 } ] }\n`
      .replace('    default_backend: web\n', '')
      .replace('routes:\n', 'default_backend: web\n    routes:\n'),
  );
  const { stdout, stderr } = await run(process.execPath, [join(import.meta.dirname, '..', 'bin', 'switchyard.js'), 'check', '--config', file]);
  t.match(stdout, /^ok: 1 frontend/);
  t.match(stdout, /frontend web routes \(first match wins\):/);
  t.match(stdout, /\n {2}0 {2}api +path_prefix \/api +backend api\n/);
  t.match(stdout, /\n {2}3 {2}routes\[3\] +host \*\.example\.com +redirect 308 https:\/\/example\.com\$\{path\}\n/);
  t.match(stdout, /\n {2}- {2}default +no route matched +backend web\n/);
  t.match(stderr, /^warning: frontends\.web\.routes\[1\]: never matches: routes\[0\] \(api\) takes every request it would/m);
  t.match(stderr, /^warning: frontends\.web\.routes\[4\]: never matches: routes\[3\]/m);
  t.notMatch(stderr, /routes\[2\]/, 'routes that can match are not flagged');
});

import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { request } from 'undici';
import { normalizeConfig } from '../src/config/load.js';
import { httpServer, start, type TestHttpServer } from './support/proxy-harness.js';

// examples/mcp-routes.yaml with real traffic: its servers come from Consul, so here each
// backend gets one local test server instead and every listener moves to port 0; routes,
// rewrites and headers are the example's own.

const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'mcp-routes.yaml');

t.test('the MCP services by path prefix on one port and by port, to the same backends', async (t) => {
  process.env.SWITCHYARD_ADMIN_PASSWORD ??= 'test-only';
  const raw = parseYaml(
    readFileSync(EXAMPLE, 'utf8').replace(/\$\{(SWITCHYARD_ADMIN_PASSWORD|CONSUL_HTTP_ADDR|CONSUL_HTTP_TOKEN):-([^}]*)\}/g, '$2'),
  ) as Record<string, any>;
  const services: Record<string, TestHttpServer> = {};
  for (const name of Object.keys(raw.backends)) {
    if (raw.backends[name].mode === 'tcp') continue;
    services[name] = await httpServer(name, (req, res) => res.end(`${name} ${req.url}`));
  }
  t.teardown(async () => {
    for (const s of Object.values(services)) await s.close();
  });
  delete raw.consul;
  raw.stats.bind = '127.0.0.1:0';
  for (const [name, be] of Object.entries<Record<string, unknown>>(raw.backends)) {
    delete be.discovery;
    delete be.health;
    be.servers = [{ name: `${name}-1`, address: services[name]?.address ?? services['mcp-http']!.address }];
  }
  for (const fe of Object.values<Record<string, unknown>>(raw.frontends)) fe.bind = '127.0.0.1:0';
  const sy = await start(normalizeConfig(raw, null));
  t.teardown(() => sy.stop(200));
  const gateway = sy.frontendAddress('gateway').port;

  for (const [prefix, backend, frontend] of [
    ['/postgres', 'mcp-postgres-http', null],
    ['/files', 'mcp-files', 'files'],
    ['/http', 'mcp-http', 'http'],
    ['/ddg', 'mcp-ddg', 'ddg'],
    ['/github', 'mcp-github', 'github'],
    ['/memory', 'mcp-memory', 'memory'],
  ] as const) {
    const res = await request(`http://127.0.0.1:${gateway}${prefix}/health?x=1`);
    t.equal(await res.body.text(), `${backend} /health?x=1`, `${prefix} reaches ${backend} with the prefix stripped`);
    t.equal(res.headers['x-served-by'], `${backend}/${backend}-1`);
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/);
    t.match(services[backend]!.seen.at(-1)!.headers['x-request-id'], /^[0-9a-f-]{36}$/);
    if (frontend !== null) {
      const direct = await request(`http://127.0.0.1:${sy.frontendAddress(frontend).port}/health`);
      t.equal(await direct.body.text(), `${backend} /health`, `port of ${frontend} reaches the same backend`);
    }
  }
  const stray = await request(`http://127.0.0.1:${gateway}/elsewhere`);
  t.equal(stray.statusCode, 404);
  t.match(await stray.body.text(), /no MCP service here/);
  const hits = sy
    .runtime()
    .frontends.get('gateway')!
    .routing.routes.map((r) => [r.name, r.stats.hits]);
  t.same(hits, [
    ['postgres', 1],
    ['files', 1],
    ['http', 1],
    ['ddg', 1],
    ['github', 1],
    ['memory', 1],
    ['unknown-service', 1],
  ]);
});

// A reload under load: autocannon keeps a modest, bounded stream of keep-alive requests going
// (a correctness test, not a benchmark: 4 connections, a fixed number of requests) while the
// config file (routes, weights, backends) and a user strategy module are changed and reloaded
// several times, by the file watch and by reload() (what SIGHUP and POST /api/reload call). Zero failed requests: no error, no timeout, no non-2xx answer, and
// the versions really changed (both pinned servers served).
import t from 'tap';
import autocannon from 'autocannon';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../src/config/load.js';
import { startSwitchyard } from '../src/switchyard.js';
import { httpServer, quietLogger, type TestHttpServer } from './support/proxy-harness.js';

const pin = (name: string) => `export default function createStrategy() {
  let servers = [];
  return { update(e) { servers = e; }, pick() { return servers.find((s) => s.name === ${JSON.stringify(name)}) ?? servers[0] ?? null; } };
}
`;

function yaml(s: TestHttpServer[], weights: number[], extra: string, routes = ''): string {
  return `stats: { bind: 127.0.0.1:0 }
frontends:
  web:
    mode: http
    bind: 127.0.0.1:0
    default_backend: api
${routes}backends:
  api:
    mode: http
    strategy: ./pin.js
    health: { type: none }
    servers: [ ${s.map((b, i) => `{ name: ${'abc'[i]}, address: ${b.address}, weight: ${weights[i]} }`).join(', ')} ]
  other:
    mode: http
    health: { type: none }
    servers: [ { name: o, address: ${s[2]!.address} } ]
${extra}`;
}

t.test('reloads that change the config and a module under load: zero failed requests', async (t) => {
  const servers = [await httpServer('a'), await httpServer('b'), await httpServer('c')];
  const dir = mkdtempSync(join(tmpdir(), 'sy-underload-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'pin.js'), pin('a'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(file, yaml(servers, [1, 1, 1], ''));
  const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, logger: quietLogger, watch: true });
  t.teardown(async () => {
    await sy.stop(500);
    for (const s of servers) await s.close();
  });

  const total = 4000;
  const run = autocannon({ url: `http://127.0.0.1:${sy.frontendAddress('web').port}/`, connections: 4, amount: total, timeout: 20 });
  // Reloads while it runs: the module (pin a / pin b) and the config (weights, a backend added
  // and removed), alternately through the admin API's path (reload()) and the file watch.
  const seenBefore = () => servers[0]!.seen.length + servers[1]!.seen.length;
  const changes: (() => Promise<void>)[] = [];
  for (let i = 0; i < 6; i++) {
    changes.push(async () => {
      writeFileSync(join(dir, 'pin.js'), pin(i % 2 === 0 ? 'b' : 'a'));
      // Routes change too: a route to `other` for a path no request takes, then a host route
      // to `api` that every request matches (autocannon's Host is 127.0.0.1), then none.
      const routes = [
        '    routes:\n      - { name: unused, match: { path_prefix: /never/ }, backend: other }\n',
        '    routes:\n      - { name: all, match: { host: 127.0.0.1 }, backend: api, request_headers: { set: { x-route: all } } }\n',
        '',
      ][i % 3]!;
      writeFileSync(
        file,
        yaml(
          servers,
          [1 + (i % 3), 1, 2],
          i % 2 === 0 ? '  spare: { mode: http, health: { type: none }, servers: [ { name: x, address: 127.0.0.1:9 } ] }\n' : '',
          routes,
        ),
      );
      if (i % 2 === 0) {
        const r = await sy.reload();
        if (!r.ok) throw new Error(`reload ${i}: ${r.errors.join('; ')}`);
      } else {
        const generation = sy.runtime().generation;
        const deadline = Date.now() + 30_000;
        while (sy.runtime().generation === generation) {
          if (Date.now() > deadline) throw new Error('the watch did not apply the change');
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    });
  }
  const applied = (async () => {
    for (const change of changes) {
      // Space the reloads out over the run: wait for some traffic between them.
      const target = seenBefore() + total / 10;
      const deadline = Date.now() + 30_000;
      while (seenBefore() < target && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await change();
    }
  })();
  const result = await run;
  await applied;
  t.equal(result.errors, 0, 'no connection errors');
  t.equal(result.timeouts, 0, 'no timeouts');
  t.equal(result.non2xx, 0, 'no non-2xx answers');
  t.equal(result['2xx'], total, `all ${total} requests answered 200`);
  t.ok(
    servers[0]!.seen.length > 0 && servers[1]!.seen.length > 0,
    `both module versions served (a: ${servers[0]!.seen.length}, b: ${servers[1]!.seen.length})`,
  );
  t.ok(sy.runtime().generation >= 7, `six reloads applied (generation ${sy.runtime().generation})`);
  t.ok(
    [...servers[0]!.seen, ...servers[1]!.seen].some((r) => r.headers['x-route'] === 'all'),
    'the route added by a reload served requests',
  );
  t.equal(servers[2]!.seen.length, 0, 'the route that matches nothing took nothing');
});

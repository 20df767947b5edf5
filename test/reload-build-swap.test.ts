// Reload as build-and-swap: the next generation is built beside the running one and swapped in
// one step after every new bind succeeded. A reload whose bind fails (its build changed a
// strategy module, weights, the server list and stickiness) leaves behaviour and counters
// exactly as before: same generation, same frontend and backend objects and settings, the
// round-robin position where it was, every counter unchanged. A reload that succeeds keeps the
// state of the servers that stay: counters, round-robin position, sticky bindings.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfigFile } from '../src/config/load.js';
import { startSwitchyard, type Switchyard } from '../src/switchyard.js';
import { httpServer, quietLogger, type TestHttpServer } from './support/proxy-harness.js';

async function busyPort(): Promise<{ port: number; server: NetServer }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, server };
}

interface Variant {
  strategy: string;
  weights: [number, number, number];
  servers: number;
  extraPort: number | null;
  sticky?: string;
}

function yaml(s: TestHttpServer[], v: Variant): string {
  const servers = s.slice(0, v.servers).map((b, i) => `{ name: ${'abcd'[i]}, address: ${b.address}, weight: ${v.weights[i] ?? 1} }`);
  return `stats: { bind: 127.0.0.1:0 }
frontends:
  web: { mode: http, bind: 127.0.0.1:0, backend: api }
  pinned: { mode: http, bind: 127.0.0.1:0, backend: sticky }
${v.extraPort === null ? '' : `  extra: { mode: http, bind: 127.0.0.1:${v.extraPort}, backend: api }\n`}backends:
  api:
    mode: http
    strategy: ${v.strategy}
    health: { type: none }
    servers: [ ${servers.join(', ')} ]
  sticky:
    mode: http
    sticky: ${v.sticky ?? '{ type: source, ttl: 30m }'}
    health: { type: none }
    servers: [ ${servers.join(', ')} ]
`;
}

/** Everything a reload could change, as plain data. */
function snapshot(sy: Switchyard) {
  const rt = sy.runtime();
  return {
    generation: rt.generation,
    frontends: [...rt.frontends.values()].map((f) => ({
      name: f.name,
      bind: f.config.bind,
      backend: f.backend.name,
      counters: { ...f.counters, latencyBuckets: [...f.counters.latencyBuckets] },
      denied: f.denied,
    })),
    backends: [...rt.backends.values()].map((b) => ({
      name: b.name,
      strategy: b.strategyName,
      sticky: b.config.sticky,
      retries: b.config.retries,
      eligible: b.eligible.map((s) => s.name),
      counters: { ...b.counters, latencyBuckets: [...b.counters.latencyBuckets] },
      strategyErrors: b.strategyErrors,
      servers: b.servers.map((s) => ({
        name: s.name,
        weight: s.weight,
        state: s.state,
        active: s.active,
        counters: { ...s.counters, latencyBuckets: [...s.counters.latencyBuckets] },
      })),
    })),
  };
}

t.test('a reload whose bind fails leaves behaviour and counters exactly as before; one that succeeds keeps what stays', async (t) => {
  const servers = [await httpServer('a'), await httpServer('b'), await httpServer('c'), await httpServer('d')];
  const busy = await busyPort();
  const dir = mkdtempSync(join(tmpdir(), 'sy-buildswap-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'pin.js'), `export default () => { let s = []; return { update(e) { s = e; }, pick() { return s.at(-1) ?? null; } }; };`);
  const file = join(dir, 'switchyard.yaml');
  const base: Variant = { strategy: 'round-robin', weights: [1, 1, 1], servers: 3, extraPort: null };
  writeFileSync(file, yaml(servers, base));
  const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, logger: quietLogger, watch: false });
  t.teardown(async () => {
    await sy.stop(100);
    busy.server.close();
    for (const s of servers) await s.close();
  });
  const get = async (frontend = 'web') => (await request(`http://127.0.0.1:${sy.frontendAddress(frontend).port}/`)).body.text();

  const seen: string[] = [];
  for (let i = 0; i < 4; i++) seen.push(await get());
  t.same(seen, ['a', 'b', 'c', 'a'], 'round-robin');
  const boundTo = await get('pinned');
  for (let i = 0; i < 3; i++) t.equal(await get('pinned'), boundTo, 'source stickiness binds the client');

  const before = snapshot(sy);
  const objects = { web: sy.runtime().frontends.get('web'), api: sy.runtime().backends.get('api'), servers: sy.runtime().backends.get('api')!.servers };
  // Everything changes in the build (a user strategy, weights, a server added, stickiness, a
  // new frontend), and the new frontend's port is taken: the bind fails.
  writeFileSync(file, yaml(servers, { strategy: './pin.js', weights: [3, 2, 1], servers: 4, extraPort: busy.port, sticky: '{ type: cookie, name: SY }' }));
  const r = await sy.reload();
  t.equal(r.ok, false, 'rejected');
  t.match(r.errors.join(' '), /cannot listen: .*EADDRINUSE/, 'because the bind failed');
  t.same(snapshot(sy), before, 'generation, settings, servers, eligible sets and every counter exactly as before');
  t.equal(sy.runtime().frontends.get('web'), objects.web, 'the same frontend object');
  t.equal(sy.runtime().backends.get('api'), objects.api, 'the same backend object');
  t.same(sy.runtime().backends.get('api')!.servers, objects.servers, 'the same server objects');
  t.equal(await get(), 'b', 'round-robin goes on where it was (a, b, c, a, then b)');
  t.equal(await get('pinned'), boundTo, 'the sticky binding holds');

  // The same change without the busy port: applied; servers that stay keep their state.
  const lbtotB = sy.runtime().backends.get('api')!.servers[1]!.counters.lbtot;
  const stotWeb = sy.runtime().frontends.get('web')!.counters.stot;
  writeFileSync(file, yaml(servers, { ...base, servers: 4, extraPort: 0 }));
  const ok = await sy.reload();
  t.equal(ok.ok, true, `applied ${ok.errors.join('; ')}`);
  t.equal(sy.runtime().generation, before.generation + 1);
  t.equal(sy.runtime().backends.get('api'), objects.api, 'the backend object stays');
  t.equal(sy.runtime().backends.get('api')!.servers[1], objects.servers[1], 'server b is the same object');
  t.equal(sy.runtime().backends.get('api')!.servers[1]!.counters.lbtot, lbtotB, 'its counters kept');
  t.ok(sy.runtime().frontends.get('web')!.counters.stot >= stotWeb, 'frontend counters carried over');
  t.equal(await get('pinned'), boundTo, 'sticky binding kept across the swap');
  const next: string[] = [];
  for (let i = 0; i < 4; i++) next.push(await get());
  t.ok(next.includes('d'), `the added server takes traffic (${next.join(', ')})`);
  t.match(await get('extra'), /^[abcd]$/, 'the new frontend serves');
});

// The worked canary example (examples/canary/): its config validates as shipped; its router,
// with its hooks, run through the proxy against real servers (the example's modules copied
// next to a test config on ephemeral ports): `x-canary: 1` goes to the canary, `x-canary: 0`
// and other clients to stable unless their address hashes into the 5%; the share is ~5% of
// 20,000 addresses and the same address always gets the same answer.
import t from 'tap';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { loadConfigFile } from '../src/config/load.js';
import { buildRuntime } from '../src/model/runtime.js';
import { startSwitchyard } from '../src/switchyard.js';
import { loadUserModule } from '../src/usercode/loader.js';
import { UserRequest } from '../src/usercode/request.js';
import type { RequestView as CoreView } from '../src/routing/request-view.js';
import { httpServer, quietLogger } from './support/proxy-harness.js';

t.test('the example config validates and builds as shipped', async (t) => {
  const config = await loadConfigFile(resolve('examples/canary/switchyard.yaml'));
  const web = config.frontends.find((f) => f.name === 'web')!;
  t.equal(web.router, resolve('examples/canary/router.js'));
  t.equal(web.hooks, resolve('examples/canary/hooks.js'));
  const runtime = await buildRuntime(config, null);
  t.ok(runtime.frontends.get('web')!.routing.router !== null, 'the router loaded and passed its dry run');
  t.ok(runtime.userFiles.includes(resolve('examples/canary/router.js')), 'and is watched');
});

t.test('5% of clients by a stable hash', async (t) => {
  const mod = await loadUserModule(resolve('examples/canary/router.js'));
  const route = mod.exports.route as (req: UserRequest) => unknown;
  const req = new UserRequest('web');
  const decide = (ip: string, canaryHeader: string | null) => {
    req.core = { clientIp: ip, header: (name: string) => (name.toLowerCase() === 'x-canary' ? canaryHeader : null) } as unknown as CoreView;
    return route(req);
  };
  let canary = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const first = decide(ip, null);
    if (first === 'canary') canary++;
    if (decide(ip, null) !== first) t.fail(`${ip} changed its answer`);
  }
  const share = canary / n;
  t.ok(share > 0.04 && share < 0.06, `share ${(share * 100).toFixed(2)}% of ${n} addresses`);
  t.equal(decide('10.0.0.1', '1'), 'canary', 'x-canary: 1');
  let optedOut = 0;
  for (let i = 0; i < 2000; i++) if (decide(`10.1.${i >> 8}.${i & 255}`, '0') === undefined) optedOut++;
  t.equal(optedOut, 2000, 'x-canary: 0 always falls through');
});

t.test('the example modules through the proxy', async (t) => {
  const s1 = await httpServer('stable');
  const c1 = await httpServer('canary');
  const dir = mkdtempSync(join(tmpdir(), 'sy-canary-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  copyFileSync(resolve('examples/canary/router.js'), join(dir, 'router.js'));
  copyFileSync(resolve('examples/canary/hooks.js'), join(dir, 'hooks.js'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `frontends:
  web: { mode: http, bind: 127.0.0.1:0, router: ./router.js, hooks: ./hooks.js, default_backend: stable }
backends:
  stable: { mode: http, health: { type: none }, servers: [ { name: s1, address: ${s1.address} } ] }
  canary: { mode: http, health: { type: none }, servers: [ { name: c1, address: ${c1.address} } ] }
`,
  );
  const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, logger: quietLogger, watch: false });
  t.teardown(async () => {
    await sy.stop(100);
    await s1.close();
    await c1.close();
  });
  const get = async (headers: Record<string, string>) => {
    const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`, { headers });
    return { body: await res.body.text(), canary: res.headers['x-canary'] };
  };
  let r = await get({ 'x-canary': '1' });
  t.same(r, { body: 'canary', canary: 'served by c1' }, 'x-canary: 1 to the canary, marked by onResponse');
  t.equal(c1.seen.at(-1)!.headers['x-routed-to'], 'canary', 'onRequest marked the request');
  r = await get({ 'x-canary': '0', 'x-debug': '1' });
  t.same(r, { body: 'stable', canary: undefined }, 'x-canary: 0 to stable');
  t.equal(s1.seen.at(-1)!.headers['x-routed-to'], 'stable');
  t.equal(s1.seen.at(-1)!.headers['x-debug'], undefined, 'x-debug removed');
});

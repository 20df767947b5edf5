// 500 reloads of a changed user module: memory stays bounded. Each version carries 64 KiB of
// its own text, so a loading scheme that kept every version (import() with a cache-busting
// query: Node's module map never evicts) would grow by ~30 MiB between reload 100 and 500 plus
// the compiled code; the versioned-function loader frees each old version once swapped out.
// Heap figures are taken after a full GC; the bound (8 MiB) is far above the noise and far
// below what keeping versions costs. The figures are printed (docs/programming.md quotes them).
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { request } from 'undici';
import { loadConfigFile } from '../src/config/load.js';
import { startSwitchyard } from '../src/switchyard.js';
import { httpServer, quietLogger } from './support/proxy-harness.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

const version = (n: number) => `// version ${n}
const PAD = ${JSON.stringify(`${n}:`.padEnd(64 * 1024, String.fromCharCode(97 + (n % 26))))};
export default function createStrategy() {
  let servers = [];
  return {
    update(eligible) { servers = eligible; },
    pick() { return PAD.length > 0 ? servers[${n} % servers.length] ?? null : null; },
  };
}
`;

t.test('500 reloads of a changed strategy module: heap growth stays bounded', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const dir = mkdtempSync(join(tmpdir(), 'sy-usercode-mem-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(join(dir, 'grow.js'), version(0));
  writeFileSync(file, `stats: { bind: 127.0.0.1:0 }
frontends:
  web: { mode: http, bind: 127.0.0.1:0, backend: api }
backends:
  api:
    mode: http
    strategy: ./grow.js
    health: { type: none }
    servers: [ { name: a, address: ${a.address} }, { name: b, address: ${b.address} } ]
`);
  const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, logger: quietLogger, watch: false });
  t.teardown(async () => { await sy.stop(100); await a.close(); await b.close(); });
  const get = async () => (await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`)).body.text();

  const reloads = async (from: number, to: number) => {
    for (let n = from; n <= to; n++) {
      writeFileSync(join(dir, 'grow.js'), version(n));
      const r = await sy.reload();
      if (!r.ok) throw new Error(`reload ${n} failed: ${r.errors.join('; ')}`);
      if (n % 50 === 0) await get(); // and serve with it now and then
    }
  };
  await reloads(1, 100);
  const at100 = heapAfterGc();
  await reloads(101, 500);
  const at500 = heapAfterGc();
  t.equal(await get(), 'a', 'version 500 serves (500 % 2 = 0: server a)');
  const growth = (at500 - at100) / 1024 / 1024;
  t.comment(`heap after GC: ${(at100 / 1024 / 1024).toFixed(1)} MiB at reload 100, ${(at500 / 1024 / 1024).toFixed(1)} MiB at reload 500: ${growth >= 0 ? '+' : ''}${growth.toFixed(2)} MiB over 400 reloads`);
  t.ok(growth < 8, `heap growth over reloads 100-500 is ${growth.toFixed(2)} MiB (bound 8 MiB; keeping every version would be > 25 MiB)`);
});

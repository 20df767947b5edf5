// 500 reloads of a changed user module: memory stays bounded. Each version carries 64 KiB of
// its own text, so a loading scheme that kept every version (import() with a cache-busting
// query: Node's module map never evicts) would grow by ~50 MiB between reload 100 and 500; the
// versioned-function loader frees each old version once swapped out. Heap figures are taken
// after a full GC; the bound (8 MiB) is far above the noise and far below what keeping
// versions costs. The figures are printed (docs/programming.md quotes them).
//
// Measured in a child process running the built balancer (dist/) without coverage: with
// coverage on (tap collects it, in child processes too), V8 keeps every script it compiled for
// the report, which is exactly the retention this test must not see.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { httpServer } from './support/proxy-harness.js';

const dist = (p: string) => JSON.stringify(pathToFileURL(resolve('dist', p)).href);

const SCRIPT = `
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { pino } from 'pino';
import { loadConfigFile } from ${dist('config/load.js')};
import { startSwitchyard } from ${dist('switchyard.js')};
const [dir, a, b] = process.argv.slice(2);
const version = (n) => \`// version \${n}
const PAD = \${JSON.stringify(\`\${n}:\`.padEnd(64 * 1024, String.fromCharCode(97 + (n % 26))))};
export default function createStrategy() {
  let servers = [];
  return {
    update(eligible) { servers = eligible; },
    pick() { return PAD.length > 0 ? servers[\${n} % servers.length] ?? null : null; },
  };
}
\`;
writeFileSync(join(dir, 'grow.js'), version(0));
const file = join(dir, 'switchyard.yaml');
writeFileSync(file, \`stats: { bind: 127.0.0.1:0 }
frontends:
  web: { mode: http, bind: 127.0.0.1:0, backend: api }
backends:
  api:
    mode: http
    strategy: ./grow.js
    health: { type: none }
    servers: [ { name: a, address: \${a} }, { name: b, address: \${b} } ]
\`);
const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, logger: pino({ level: 'silent' }), watch: false });
const get = async () => (await request(\`http://127.0.0.1:\${sy.frontendAddress('web').port}/\`)).body.text();
const heap = () => { for (let i = 0; i < 3; i++) globalThis.gc(); return process.memoryUsage().heapUsed; };
const reloads = async (from, to) => {
  for (let n = from; n <= to; n++) {
    writeFileSync(join(dir, 'grow.js'), version(n));
    const r = await sy.reload();
    if (!r.ok) throw new Error(\`reload \${n} failed: \${r.errors.join('; ')}\`);
    if (n % 50 === 0) await get();
  }
};
await reloads(1, 100);
const at100 = heap();
await reloads(101, 500);
const at500 = heap();
const served = await get();
await sy.stop(100);
console.log(JSON.stringify({ at100, at500, served }));
`;

t.test('500 reloads of a changed strategy module: heap growth stays bounded', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const dir = mkdtempSync(join(tmpdir(), 'sy-usercode-mem-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  // The script sits in the repo's folder so that it resolves undici and pino from node_modules.
  const script = join(resolve('test'), `.memory-${process.pid}.mjs`);
  writeFileSync(script, SCRIPT);
  t.teardown(() => rmSync(script, { force: true }));
  // A plain node, as users run it. Asynchronous, so that the test's own HTTP servers keep
  // answering while the child runs.
  const child = await new Promise<{ status: number | null; stdout: string; stderr: string }>((done) => {
    // tap's processinfo puts its coverage hook into every child's NODE_OPTIONS (inspector
    // coverage, which keeps every compiled script): `env -i` starts node without it.
    const c = spawn('env', ['-i', `PATH=${process.env.PATH ?? ''}`, process.execPath, '--expose-gc', script, dir, a.address, b.address], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    c.on('exit', (status) => done({ status, stdout, stderr }));
  });
  const out = child.stdout.trim().split('\n').at(-1) ?? '';
  t.equal(child.status, 0, `the measurement ran ${child.stderr}`);
  const r = JSON.parse(out) as { at100: number; at500: number; served: string };
  t.equal(r.served, 'a', 'version 500 serves (500 % 2 = 0: server a)');
  const growth = (r.at500 - r.at100) / 1024 / 1024;
  t.comment(
    `heap after GC: ${(r.at100 / 1024 / 1024).toFixed(1)} MiB at reload 100, ${(r.at500 / 1024 / 1024).toFixed(1)} MiB at reload 500: ${growth >= 0 ? '+' : ''}${growth.toFixed(2)} MiB over 400 reloads`,
  );
  t.ok(growth < 8, `heap growth over reloads 100-500 is ${growth.toFixed(2)} MiB (bound 8 MiB; keeping every version would be > 40 MiB)`);
});

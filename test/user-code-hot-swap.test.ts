// User code that really hot-swaps: a strategy module edited on disk serves its new code after
// the file watch, POST /api/reload and SIGHUP (the CLI in its own process); an endless loop in
// a new version is refused by the load-time dry run while the old version keeps serving; a
// module that throws falls back and is counted per module; user code gets read-only views; an
// admin request cannot load a module from outside the config's folder.
// Waits poll a condition with a generous deadline; no elapsed time is asserted.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfigFile } from '../src/config/load.js';
import { startStats } from '../src/stats/listener.js';
import { startSwitchyard } from '../src/switchyard.js';
import { deadPort, httpServer, quietLogger, type TestHttpServer } from './support/proxy-harness.js';

const AUTH = `Basic ${Buffer.from('admin:secret').toString('base64')}`;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A strategy that sends everything to the server named `name`. */
const pin = (name: string, extra = '') => `// pins every request to ${name}
${extra}
export default function createStrategy() {
  let servers = [];
  return {
    update(eligible) { servers = eligible; },
    pick() { return servers.find((s) => s.name === ${JSON.stringify(name)}) ?? servers[0] ?? null; },
  };
}
`;

function yaml(backends: TestHttpServer[], strategy = './pin.js', port = 0): string {
  return `stats:
  bind: 127.0.0.1:0
  auth: { username: admin, password: secret }
frontends:
  web: { mode: http, bind: 127.0.0.1:${port}, backend: api }
backends:
  api:
    mode: http
    strategy: ${strategy}
    health: { type: none }
    servers: [ ${backends.map((b, i) => `{ name: ${'abc'[i]}, address: ${b.address} }`).join(', ')} ]
`;
}

async function setup(t: { teardown(fn: () => unknown): void }, watch: boolean) {
  const servers = [await httpServer('a'), await httpServer('b'), await httpServer('c')];
  const dir = mkdtempSync(join(tmpdir(), 'sy-usercode-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(join(dir, 'pin.js'), pin('a'));
  writeFileSync(file, yaml(servers));
  const config = await loadConfigFile(file);
  const sy = await startSwitchyard({ config, loadConfig: loadConfigFile, logger: quietLogger, watch });
  const stats = await startStats(sy, config.stats, quietLogger);
  t.teardown(async () => {
    await stats.stop();
    await sy.stop(100);
    for (const s of servers) await s.close();
  });
  const get = async (): Promise<string> => {
    const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`);
    return res.body.text();
  };
  const admin = async (method: 'POST' | 'PUT', path: string, body?: unknown) => {
    const res = await request(`http://127.0.0.1:${stats.address().port}${path}`, {
      method,
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  const statsJson = async () =>
    (await (await request(`http://127.0.0.1:${stats.address().port}/api/stats`)).body.json()) as {
      userCode: { file: string; kind: string; version: string; loads: number; errors: number; lastError: string | null }[];
      backends: { name: string; strategyErrors: number }[];
    };
  const metrics = async () => (await request(`http://127.0.0.1:${stats.address().port}/metrics`)).body.text();
  return { dir, file, sy, get, admin, statsJson, metrics, servers };
}

t.test('an edited strategy module serves its new code after the file watch', async (t) => {
  const { dir, get, sy } = await setup(t, true);
  t.equal(await get(), 'a', 'version 1 pins a');
  const generation = sy.runtime().generation;
  writeFileSync(join(dir, 'pin.js'), pin('b'));
  await until('the watch to swap in version 2', async () => (await get()) === 'b');
  t.ok(sy.runtime().generation > generation, 'a new generation');
  for (let i = 0; i < 5; i++) t.equal(await get(), 'b', 'version 2 keeps serving');
});

t.test('an edited strategy module serves its new code after POST /api/reload; an endless loop is refused while the old serves', async (t) => {
  const { dir, get, admin, statsJson, sy } = await setup(t, false);
  t.equal(await get(), 'a');
  writeFileSync(join(dir, 'pin.js'), pin('c'));
  t.equal(await get(), 'a', 'no watch here: nothing changed yet');
  const r = await admin('POST', '/api/reload');
  t.equal(r.status, 200, 'reload ok');
  t.equal(await get(), 'c', 'version 2 serves right after the reload answered');
  const v2 = (await statsJson()).userCode.find((m) => m.file === join(dir, 'pin.js'))!;
  t.equal(v2.kind, 'strategy');
  t.equal(v2.loads, 2, 'two versions loaded');

  const generation = sy.runtime().generation;
  const loops = {
    'pick() that never returns': pin('b').replace('pick() {', 'pick() { for (;;) {}'),
    'update() that never returns': pin('b').replace('update(eligible) {', 'update(eligible) { while (eligible) {}'),
    'a factory that never returns': pin('b').replace('let servers = [];', 'let servers = []; for (;;) {}'),
    'module code that never finishes': pin('b', 'while (true) {}'),
  };
  for (const [what, source] of Object.entries(loops)) {
    writeFileSync(join(dir, 'pin.js'), source);
    const refused = await admin('POST', '/api/reload');
    t.equal(refused.status, 422, `${what}: refused`);
    t.match(
      JSON.stringify(refused.body.errors),
      /backends\.api\.strategy: .*did not return within \d+ ms \(an endless loop\?\)/,
      `${what}: a clear error naming the key`,
    );
    t.equal(sy.runtime().generation, generation, `${what}: the running generation stays`);
    t.equal(await get(), 'c', `${what}: the old version keeps serving`);
  }
  const after = (await statsJson()).userCode.find((m) => m.file === join(dir, 'pin.js'))!;
  t.equal(after.version, v2.version, 'stats still show the version serving');
  writeFileSync(join(dir, 'pin.js'), pin('b'));
  t.equal((await admin('POST', '/api/reload')).status, 200, 'a fixed version loads');
  t.equal(await get(), 'b');
});

t.test('a throwing module falls back to round-robin, counted per module in /api/stats and /metrics', async (t) => {
  const { dir, get, admin, statsJson, metrics } = await setup(t, false);
  writeFileSync(join(dir, 'pin.js'), `export default () => ({ update() {}, pick() { throw new Error('no luck'); } });`);
  t.equal((await admin('POST', '/api/reload')).status, 200, 'a module that throws while serving still loads (its dry run ran)');
  const got: string[] = [];
  for (let i = 0; i < 6; i++) got.push(await get());
  t.same([...got].sort(), ['a', 'a', 'b', 'b', 'c', 'c'], 'every request served, round-robin over a, b, c');
  const json = await statsJson();
  const m = json.userCode.find((r) => r.file === join(dir, 'pin.js'))!;
  t.equal(m.errors, 6, 'six failures counted on the module');
  t.equal(m.lastError, 'no luck');
  t.ok(json.backends.find((b) => b.name === 'api')!.strategyErrors >= 6, 'and on the backend');
  const file = join(dir, 'pin.js').replace(/\\/g, '\\\\');
  t.match(
    await metrics(),
    new RegExp(`switchyard_user_code_errors_total\\{module="${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}",kind="strategy"\\} 6`),
    '/metrics: per module',
  );
});

t.test('user code sees read-only views: its changes never reach the model', async (t) => {
  const { dir, get, admin, sy } = await setup(t, false);
  writeFileSync(
    join(dir, 'pin.js'),
    `export default () => {
    let servers = [];
    return {
      update(eligible) {
        try { eligible.push({ name: 'evil' }); } catch {}
        try { eligible.length = 0; } catch {}
        for (const s of eligible) { try { s.weight = 0; } catch {} try { s.active = 99; } catch {} try { s.name = 'x'; } catch {} }
        servers = [...eligible].reverse();
      },
      pick(ctx) { try { ctx.avoid = null; ctx.clientIp = 'spoofed'; } catch {} return servers[0] ?? null; },
    };
  };`,
  );
  t.equal((await admin('POST', '/api/reload')).status, 200);
  t.equal(await get(), 'c', 'it picks from its own reversed copy');
  const api = sy.runtime().backends.get('api')!;
  t.same(
    api.eligible.map((s) => s.name),
    ['a', 'b', 'c'],
    'the backend eligible list is untouched',
  );
  t.same(
    api.servers.map((s) => [s.name, s.weight, s.active]),
    [
      ['a', 1, 0],
      ['b', 1, 0],
      ['c', 1, 0],
    ],
    'servers untouched',
  );
});

t.test('an admin request loads modules only from the config folder', async (t) => {
  const { dir, admin, get } = await setup(t, false);
  const elsewhere = mkdtempSync(join(tmpdir(), 'sy-elsewhere-'));
  writeFileSync(join(elsewhere, 'package.json'), '{"type":"module"}');
  writeFileSync(join(elsewhere, 'pin.js'), pin('b'));
  for (const path of [join(elsewhere, 'pin.js'), `../${join(elsewhere, 'pin.js').split('/').slice(-2).join('/')}`]) {
    const r = await admin('PUT', '/api/backends/api/strategy', { strategy: path });
    t.equal(r.status, 400, `${path}: refused`);
    t.match(String(r.body.error), /only from the config's folder/);
  }
  symlinkSync(join(elsewhere, 'pin.js'), join(dir, 'link.js'));
  t.equal((await admin('PUT', '/api/backends/api/strategy', { strategy: './link.js' })).status, 400, 'a symlink out of the folder too');
  t.equal(await get(), 'a', 'still the configured strategy');
  writeFileSync(join(dir, 'inside.js'), pin('c'));
  t.equal((await admin('PUT', '/api/backends/api/strategy', { strategy: './inside.js' })).status, 200, 'a module inside the folder loads');
  t.equal(await get(), 'c');
});

t.test('SIGHUP applies an edited module (the CLI, in its own process)', async (t) => {
  const servers = [await httpServer('a'), await httpServer('b'), await httpServer('c')];
  const port = await deadPort();
  const dir = mkdtempSync(join(tmpdir(), 'sy-usercode-hup-'));
  // The module is a symlink to a file in another folder, out of the watch's sight: only
  // SIGHUP can apply an edit of it.
  const realDir = mkdtempSync(join(tmpdir(), 'sy-usercode-real-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(realDir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(realDir, 'pin.js'), pin('a'));
  symlinkSync(join(realDir, 'pin.js'), join(dir, 'pin.js'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(file, yaml(servers, './pin.js', port));
  const child = spawn(process.execPath, [...process.execArgv, new URL('../src/main.ts', import.meta.url).pathname, '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const s of servers) await s.close();
  });
  const get = async () => {
    try {
      const res = await request(`http://127.0.0.1:${port}/`, { reset: true });
      return await res.body.text();
    } catch {
      return '';
    }
  };
  await until('the CLI to serve', async () => (await get()) === 'a', 60_000);
  writeFileSync(join(realDir, 'pin.js'), pin('b'));
  await new Promise((r) => setTimeout(r, 400)); // longer than the watch's debounce: it saw nothing
  t.equal(await get(), 'a', 'an edit the watch cannot see changes nothing by itself');
  child.kill('SIGHUP');
  await until('version 2 to serve', async () => (await get()) === 'b').catch((error: Error) => {
    throw new Error(`${error.message}; the CLI said:\n${output}`);
  });
  t.match(output, /config applied/);
});

// User strategies: loaded from a module path (default or createStrategy export), and every way
// one can fail (throws, returns nothing, returns a server that may not take traffic) contained
// by the Backend: the request goes to the round-robin fallback, the error is counted and emitted.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadStrategyFactory } from '../src/strategies/registry.js';
import { loadConfigFile } from '../src/config/load.js';
import { buildRuntime } from '../src/model/runtime.js';
import { Backend } from '../src/model/backend.js';
import { modelEvents } from '../src/model/events.js';
import type { BalanceContext } from '../src/strategies/sticky.js';
import { backendConfig } from './support/backend-config.js';
import * as harness from './support/proxy-harness.js';
import { startStats } from '../src/stats/listener.js';
import { request } from 'undici';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-strategy-'));
const configFile = join(dir, 'switchyard.yaml');
writeFileSync(join(dir, 'package.json'), '{"type":"module"}'); // .js and .ts modules here are ESM
function module(name: string, source: string): string {
  writeFileSync(join(dir, name), source);
  return `./${name}`;
}
const req = (avoid: BalanceContext['avoid'] = null): BalanceContext => ({ clientIp: '192.0.2.1', avoid, stickyCookie: null, setStickyCookie: null });

t.test('built-in names resolve without touching the file system', async (t) => {
  for (const name of ['round-robin', 'least-connections', 'ip-hash', 'random']) {
    t.type(await loadStrategyFactory(name, null), 'function', name);
  }
  await t.rejects(loadStrategyFactory('fastest', null), /unknown strategy "fastest"/);
});

t.test('a user module is loaded relative to the config file', async (t) => {
  const first = module(
    'first.mjs',
    `
    export default function (options) {
      let servers = [];
      return {
        update(eligible) { servers = eligible.filter((s) => s.weight > 0); },
        pick(ctx) { for (const s of servers) if (s !== ctx.avoid) return s; return servers[0] ?? null; },
      };
    }`,
  );
  const factory = await loadStrategyFactory(first, configFile);
  const b = new Backend(backendConfig([1, 1, 1], { strategy: first }), factory);
  const errors = b.strategyErrors;
  for (let i = 0; i < 5; i++) t.equal(b.pick(req())!.name, 's1');
  t.equal(b.pick(req(b.servers[0]))!.name, 's2', 'its own avoid handling');
  t.equal(b.strategyErrors, errors, 'no errors');

  const named = module('named.js', `export function createStrategy() { let s = []; return { update(e) { s = e; }, pick() { return s.at(-1) ?? null; } }; }`);
  const b2 = new Backend(backendConfig([1, 1, 1], { strategy: named }), await loadStrategyFactory(named, configFile));
  t.equal(b2.pick(req())!.name, 's3', 'createStrategy export, .js under "type": "module"');

  const none = module('none.mjs', 'export const answer = 42;');
  await t.rejects(loadStrategyFactory(none, configFile), {
    code: 'SY_ERR_STRATEGY_LOAD',
    message: /none\.mjs exports no factory \(export default or createStrategy\)/,
  });
  await t.rejects(loadStrategyFactory('./missing.mjs', configFile), { code: 'SY_ERR_STRATEGY_LOAD', message: /cannot load strategy module .*missing\.mjs/ });
  const broken = module('broken.mjs', 'export default function ( {');
  await t.rejects(
    loadStrategyFactory(broken, configFile),
    { code: 'SY_ERR_STRATEGY_LOAD', message: /cannot load strategy module .*broken\.mjs/ },
    'a syntax error',
  );
});

t.test('what a factory makes is checked where it is made', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['throws', `export default () => { throw new Error('needs option x'); };`, /the factory threw: needs option x/],
    ['returns nothing', `export default () => {};`, /the factory returned undefined/],
    ['no pick', `export default () => ({ update() {} });`, /without pick\(\)/],
    ['no update', `export default () => ({ pick() { return null; } });`, /without update\(\)/],
    ['opened not a function', `export default () => ({ update() {}, pick() { return null; }, opened: 1 });`, /opened that is not a function/],
  ];
  for (const [name, source, message] of cases) {
    const factory = await loadStrategyFactory(module(`factory-${name.replace(/ /g, '-')}.mjs`, source), configFile);
    t.throws(() => new Backend(backendConfig([1, 1]), factory), { code: 'SY_ERR_STRATEGY_LOAD', message }, name);
  }
});

t.test('a .ts strategy: loaded where the runtime can import TypeScript, a clear error where it cannot', async (t) => {
  const source = `import type { Strategy, StrategyServer } from '${resolve('src/strategies/strategy.js')}';
    export default function createStrategy(): Strategy {
      let servers: StrategyServer[] = [];
      return { update(e) { servers = [...e].reverse(); }, pick() { return servers[0] ?? null; } };
    }`;
  // Under tap a TypeScript loader is registered (as tsx or Node 22.18+ would provide): it loads.
  const typed = module('typed.ts', source);
  const b = new Backend(backendConfig([1, 1, 1], { strategy: typed }), await loadStrategyFactory(typed, configFile));
  t.equal(b.pick(req())!.name, 's3', 'the .ts strategy picks');
  t.equal(b.strategyErrors, 0);
  // Without a loader Node 20 cannot import .ts. Shown with plain node in a child process (the
  // test process has tap's loader), through the built registry (dist/, made by tsc before tap).
  const script = `import { loadStrategyFactory } from ${JSON.stringify(pathToFileURL(resolve('dist/strategies/registry.js')).href)};
    loadStrategyFactory(${JSON.stringify(typed)}, ${JSON.stringify(configFile)}).then(
      () => console.log(JSON.stringify({ loaded: true })),
      (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  const result = JSON.parse(child.stdout.trim() || '{}') as { loaded?: boolean; code?: string; message?: string };
  if (Number(process.versions.node.split('.')[0]) < 22) {
    t.equal(result.code, 'SY_ERR_STRATEGY_LOAD', `plain ${process.version}: a strategy load error`);
    t.match(result.message, /cannot load .*typed\.ts: Node v\d+\.\d+\.\d+ cannot import TypeScript\. Compile it to \.js/, 'saying why and what to do');
  } else {
    t.ok(result.loaded === true || /cannot import TypeScript/.test(result.message ?? ''), 'newer Node strips types, or says it cannot');
  }
});

t.test('the worked example config loads, with the strategy path relative to it', async (t) => {
  const config = await loadConfigFile(resolve('examples/strategies/switchyard.yaml'));
  const runtime = await buildRuntime(config, null);
  const api = runtime.backends.get('api')!;
  t.equal(api.strategyName, resolve('examples/strategies/weighted-first.js'));
  const got: string[] = [];
  for (let i = 0; i < 61; i++) {
    const s = api.pick(req())!;
    api.opened(s, Date.now());
    got.push(s.name);
  }
  t.same([got.filter((n) => n === 'big').length, got.filter((n) => n === 'small').length], [60, 1], 'big fills to 3 × 20, then small');
  t.equal(api.strategyErrors, 0);
});

t.test('the worked example loads through the registry', async (t) => {
  const example = resolve('examples/strategies/switchyard.yaml');
  const factory = await loadStrategyFactory('./weighted-first.js', example);
  const b = new Backend(backendConfig([1, 3, 1], { strategy: './weighted-first.js', strategyOptions: { perWeight: 1 } }), factory);
  const seq: string[] = [];
  for (let i = 0; i < 6; i++) {
    const s = b.pick(req())!;
    b.opened(s, Date.now());
    seq.push(s.name);
  }
  // s2 (weight 3) holds 3, then s1 and s3 (weight 1, by id) hold 1 each, then least loaded.
  t.same(seq.slice(0, 5), ['s2', 's2', 's2', 's1', 's3']);
  t.equal(b.strategyErrors, 0);
});

t.test('failures are contained: fallback pick, counted, strategy-error emitted', async (t) => {
  const cases: { name: string; source: string }[] = [
    { name: 'throws', source: `export default () => ({ update() {}, pick() { throw new Error('boom'); } });` },
    { name: 'returns null', source: `export default () => ({ update() {}, pick() { return null; } });` },
    { name: 'returns undefined', source: `export default () => ({ update() {}, pick() {} });` },
    {
      name: 'returns a stranger',
      source: `export default () => ({ update() {}, pick() { return { id: 'x', name: 'x', address: '10.0.0.1:1', weight: 1, active: 0 }; } });`,
    },
    // Remembers the first set it saw and keeps answering its first server, even once DOWN.
    {
      name: 'returns a DOWN server',
      source: `export default () => { let first = null; return { update(e) { first ??= e[0]; }, pick() { return first; } }; };`,
    },
  ];
  for (const c of cases) {
    const path = module(`${c.name.replace(/ /g, '-')}.mjs`, c.source);
    const b = new Backend(backendConfig([1, 1, 1], { strategy: path }), await loadStrategyFactory(path, configFile));
    const down = b.servers[0]!;
    down.checkDown = true;
    down.noteChange('test: check failed');
    t.equal(down.state, 'DOWN');
    const events: unknown[] = [];
    const listen = (e: { backend: string; error: unknown }) => {
      if (e.backend === b.name) events.push(e.error);
    };
    modelEvents.on('strategy-error', listen);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(b.pick(req())?.name ?? 'none');
    modelEvents.off('strategy-error', listen);
    t.same(got, ['s2', 's3', 's2', 's3'], `${c.name}: round-robin fallback over the eligible servers`);
    t.equal(b.strategyErrors, 4, `${c.name}: counted`);
    t.equal(events.length, 4, `${c.name}: strategy-error emitted`);
    t.ok(
      events.every((e) => e instanceof Error),
      `${c.name}: the event carries an Error`,
    );
  }
});

t.test('no eligible server: a user strategy answering null is not an error', async (t) => {
  const path = module('empty.mjs', `export default () => ({ update() {}, pick() { return null; } });`);
  const b = new Backend(backendConfig([1]), await loadStrategyFactory(path, configFile));
  b.setStrategy(path, await loadStrategyFactory(path, configFile));
  const s = b.servers[0]!;
  s.admin = 'maint';
  s.noteChange('test');
  t.equal(b.pick(req()), null, '503');
  t.equal(b.strategyErrors, 0);
});

t.test('errors in opened/closed are counted, the counters still move', async (t) => {
  const path = module(
    'bookkeeping.mjs',
    `
    export default () => { let s = []; return {
      update(e) { s = e; }, pick() { return s[0] ?? null; },
      opened() { throw new Error('opened'); }, closed() { throw new Error('closed'); } }; };`,
  );
  const b = new Backend(backendConfig([1, 1], { strategy: path }), await loadStrategyFactory(path, configFile));
  const s = b.pick(req())!;
  b.opened(s, Date.now());
  t.equal(s.active, 1);
  b.closed(s);
  t.equal(s.active, 0);
  t.equal(b.strategyErrors, 2);
});

t.test('strategy errors show in the stats JSON and in /metrics', async (t) => {
  const path = module(
    'flaky.mjs',
    `export default () => { let s = []; let n = 0; return {
    update(e) { s = e; }, pick() { if (++n % 2 === 0) throw new Error('every other pick'); return s[0] ?? null; } }; };`,
  );
  const app = await harness.httpServer('app');
  const cfg = harness.config(
    [harness.frontendConfig('web', 'http', 'api')],
    [harness.backendConfig('api', 'http', [app.address], { strategy: join(dir, 'flaky.mjs') })],
  );
  const sy = await harness.start(cfg);
  const stats = await startStats(sy, cfg.stats, harness.quietLogger);
  t.teardown(async () => {
    await stats.stop();
    await sy.stop(100);
    await app.close();
  });
  for (let i = 0; i < 10; i++) {
    const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`);
    t.equal(res.statusCode, 200, 'served (by the strategy or its fallback)');
    await res.body.text();
  }
  const base = `http://127.0.0.1:${stats.address().port}`;
  const json = (await (await request(`${base}/api/stats`)).body.json()) as { backends: { name: string; strategyErrors: number }[] };
  t.equal(json.backends.find((b) => b.name === 'api')?.strategyErrors, 5, '/api/stats: strategyErrors');
  const metrics = await (await request(`${base}/metrics`)).body.text();
  t.match(metrics, /switchyard_backend_strategy_errors_total\{backend="api"\} 5/, '/metrics: switchyard_backend_strategy_errors_total');
  void path;
});

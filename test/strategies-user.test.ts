// User strategies: loaded from a module path (default or createStrategy export), and every way
// one can fail (throws, returns nothing, returns a server that may not take traffic) contained
// by the Backend: the request goes to the round-robin fallback, the error is counted and emitted.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadStrategyFactory } from '../src/strategies/registry.js';
import { Backend } from '../src/model/backend.js';
import { modelEvents } from '../src/model/events.js';
import type { BalanceContext } from '../src/strategies/sticky.js';
import { backendConfig } from './support/backend-config.js';

const dir = mkdtempSync(join(tmpdir(), 'switchyard-strategy-'));
const configFile = join(dir, 'switchyard.yaml');
function module(name: string, source: string): string {
  writeFileSync(join(dir, name), source);
  return `./${name}`;
}
const req = (avoid: BalanceContext['avoid'] = null): BalanceContext =>
  ({ clientIp: '192.0.2.1', avoid, stickyCookie: null, setStickyCookie: null });

t.test('built-in names resolve without touching the file system', async (t) => {
  for (const name of ['round-robin', 'least-connections', 'ip-hash', 'random']) {
    t.type(await loadStrategyFactory(name, null), 'function', name);
  }
  await t.rejects(loadStrategyFactory('fastest', null), /unknown strategy "fastest"/);
});

t.test('a user module is loaded relative to the config file', async (t) => {
  const first = module('first.mjs', `
    export default function (options) {
      let servers = [];
      return {
        update(eligible) { servers = eligible.filter((s) => s.weight > 0); },
        pick(ctx) { for (const s of servers) if (s !== ctx.avoid) return s; return servers[0] ?? null; },
      };
    }`);
  const factory = await loadStrategyFactory(first, configFile);
  const b = new Backend(backendConfig([1, 1, 1], { strategy: first }), factory);
  const errors = b.strategyErrors;
  for (let i = 0; i < 5; i++) t.equal(b.pick(req())!.name, 's1');
  t.equal(b.pick(req(b.servers[0]!))!.name, 's2', 'its own avoid handling');
  t.equal(b.strategyErrors, errors, 'no errors');

  const named = module('named.js', `export function createStrategy() { let s = []; return { update(e) { s = e; }, pick() { return s.at(-1) ?? null; } }; }`);
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const b2 = new Backend(backendConfig([1, 1, 1], { strategy: named }), await loadStrategyFactory(named, configFile));
  t.equal(b2.pick(req())!.name, 's3', 'createStrategy export, .js under "type": "module"');

  const none = module('none.mjs', 'export const answer = 42;');
  await t.rejects(loadStrategyFactory(none, configFile), /exports no factory/);
  await t.rejects(loadStrategyFactory('./missing.mjs', configFile));
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
    { name: 'returns a stranger', source: `export default () => ({ update() {}, pick() { return { id: 'x', name: 'x', address: '10.0.0.1:1', weight: 1, active: 0 }; } });` },
    // Remembers the first set it saw and keeps answering its first server, even once DOWN.
    { name: 'returns a DOWN server', source: `export default () => { let first = null; return { update(e) { first ??= e[0]; }, pick() { return first; } }; };` },
  ];
  for (const c of cases) {
    const path = module(`${c.name.replace(/ /g, '-')}.mjs`, c.source);
    const b = new Backend(backendConfig([1, 1, 1], { strategy: path }), await loadStrategyFactory(path, configFile));
    const down = b.servers[0]!;
    down.checkDown = true;
    down.noteChange('test: check failed');
    t.equal(down.state, 'DOWN');
    const events: unknown[] = [];
    const listen = (e: { backend: string; error: unknown }) => { if (e.backend === b.name) events.push(e.error); };
    modelEvents.on('strategy-error', listen);
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push(b.pick(req())?.name ?? 'none');
    modelEvents.off('strategy-error', listen);
    t.same(got, ['s2', 's3', 's2', 's3'], `${c.name}: round-robin fallback over the eligible servers`);
    t.equal(b.strategyErrors, 4, `${c.name}: counted`);
    t.equal(events.length, 4, `${c.name}: strategy-error emitted`);
    t.ok(events.every((e) => e instanceof Error), `${c.name}: the event carries an Error`);
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
  const path = module('bookkeeping.mjs', `
    export default () => { let s = []; return {
      update(e) { s = e; }, pick() { return s[0] ?? null; },
      opened() { throw new Error('opened'); }, closed() { throw new Error('closed'); } }; };`);
  const b = new Backend(backendConfig([1, 1], { strategy: path }), await loadStrategyFactory(path, configFile));
  const s = b.pick(req())!;
  b.opened(s, Date.now());
  t.equal(s.active, 1);
  b.closed(s);
  t.equal(s.active, 0);
  t.equal(b.strategyErrors, 2);
});

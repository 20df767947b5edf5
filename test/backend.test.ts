import t from 'tap';
import { Backend } from '../src/model/backend.js';
import { modelEvents } from '../src/model/events.js';
import type { Strategy } from '../src/strategies/strategy.js';
import { backendConfig } from './support/backend-config.js';

const ctx = () => ({ clientIp: '10.0.0.1', avoid: null, stickyCookie: null, setStickyCookie: null });

t.test('a user strategy whose update() throws is contained: counted, and picks fall back', async (t) => {
  let updates = 0;
  const broken = (): Strategy => ({
    update() {
      updates++;
      if (updates > 1) throw new Error('update exploded');
    },
    pick() {
      throw new Error('pick exploded');
    },
  });
  const errors: unknown[] = [];
  const onError = (e: { error: unknown }) => errors.push(e.error);
  modelEvents.on('strategy-error', onError);
  t.teardown(() => {
    modelEvents.off('strategy-error', onError);
  });
  const b = new Backend(backendConfig([1, 1], { strategy: './broken.js' }), broken);
  // A state change re-feeds the strategy: its throw must not escape refresh().
  const s1 = b.servers[0]!;
  s1.admin = 'maint';
  t.doesNotThrow(() => s1.noteChange('admin: maint'));
  t.equal(b.pick(ctx())!.name, 's2', 'fallback picks the one eligible server');
  t.ok(b.strategyErrors >= 2, 'update and pick failures counted');
  t.match(String(errors[0]), /update exploded/);
});

t.test('eligible set: DOWN, MAINT and DRAIN servers leave it; backups serve only when no active one is UP', async (t) => {
  const b = new Backend(
    backendConfig([{ name: 'a' }, { name: 'b' }, { name: 'spare', backup: true }]),
    (await import('../src/strategies/round-robin.js')).roundRobin,
  );
  t.same(
    b.eligible.map((s) => s.name),
    ['a', 'b'],
  );
  const [a, bb] = b.servers;
  a!.checkDown = true;
  a!.noteChange('check');
  t.equal(a!.state, 'DOWN');
  bb!.admin = 'drain';
  bb!.noteChange('admin');
  t.equal(bb!.state, 'DRAIN');
  t.same(
    b.eligible.map((s) => s.name),
    ['spare'],
    'backup takes over',
  );
  bb!.admin = 'ready';
  bb!.noteChange('admin');
  t.same(
    b.eligible.map((s) => s.name),
    ['b'],
  );
});

t.test('panic mode: when passive ejection left nothing UP, ejected servers are still tried', async (t) => {
  const { roundRobin } = await import('../src/strategies/round-robin.js');
  const b = new Backend(backendConfig([{ name: 'only' }]), roundRobin);
  const only = b.servers[0]!;
  only.ejected = true;
  only.noteChange('ejected');
  t.equal(only.state, 'DOWN');
  t.equal(b.state, 'DOWN', 'the backend reports DOWN');
  t.equal(b.pick(ctx())?.name, 'only', 'but a request still tries the server instead of a 503');
  only.admin = 'maint';
  only.noteChange('admin: maint');
  t.equal(b.pick(ctx()), null, 'MAINT is never tried, panic or not');
});

t.test('reload and the strategy: an unchanged one keeps its state, a changed one is swapped, the file wins over the admin API', async (t) => {
  const { roundRobin } = await import('../src/strategies/round-robin.js');
  const { leastConnections } = await import('../src/strategies/least-connections.js');
  const made: string[] = [];
  const counting = (name: string, f: typeof roundRobin) => (options: Readonly<Record<string, unknown>>) => {
    made.push(`${name} ${JSON.stringify(options)}`);
    return f();
  };
  const cfg = backendConfig([1, 1, 1], { strategy: 'round-robin' });
  const b = new Backend(cfg, counting('rr', roundRobin));
  t.same([b.pick(ctx())!.name, b.pick(ctx())!.name], ['s1', 's2']);
  b.apply({ ...cfg, servers: [...cfg.servers] }, counting('rr', roundRobin));
  t.equal(b.pick(ctx())!.name, 's3', 'same strategy: the same instance, its turn kept');
  t.same(made, ['rr {}'], 'not re-made');

  // Admin API: least-connections until the next reload, which puts back what the file says.
  b.setStrategy('least-connections', counting('lc', leastConnections));
  t.equal(b.strategyName, 'least-connections');
  b.apply({ ...cfg, retries: 3 }, counting('rr', roundRobin));
  t.equal(b.strategyName, 'round-robin', 'a reload applies the file');
  t.same(made, ['rr {}', 'lc {}', 'rr {}']);

  // Options: a change re-makes the strategy; the admin API reuses the config's options for the config's strategy.
  b.apply({ ...cfg, strategyOptions: { x: 1 } }, counting('rr', roundRobin));
  b.setStrategy('round-robin', counting('rr', roundRobin));
  t.same(made.slice(3), ['rr {"x":1}', 'rr {"x":1}']);
});

t.test('a user strategy failing in opened/closed is counted and emitted, like a failing pick', async (t) => {
  const errors: unknown[] = [];
  const onError = (e: { error: unknown }) => errors.push(e.error);
  modelEvents.on('strategy-error', onError);
  t.teardown(() => {
    modelEvents.off('strategy-error', onError);
  });
  let servers: readonly { name: string }[] = [];
  const noisy = (): Strategy => ({
    update(e) {
      servers = e;
    },
    pick() {
      return servers[0] as never;
    },
    opened() {
      throw new Error('opened failed');
    },
    closed() {
      throw new Error('closed failed');
    },
  });
  const b = new Backend(backendConfig([1], { strategy: './noisy.js' }), noisy);
  const s = b.pick(ctx())!;
  b.opened(s, Date.now());
  b.closed(s);
  t.equal(b.strategyErrors, 2);
  t.same(errors.map(String), ['Error: opened failed', 'Error: closed failed']);
  t.equal(s.active, 0, "the counters are the backend's and still right");
});

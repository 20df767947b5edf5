import t from 'tap';
import { Backend } from '../src/model/backend.js';
import { modelEvents } from '../src/model/events.js';
import type { Strategy } from '../src/strategies/strategy.js';
import { backendConfig } from './support/backend-config.js';

const ctx = () => ({ clientIp: '10.0.0.1', avoid: null, stickyCookie: null, setStickyCookie: null });

t.test('a user strategy whose update() throws is contained: counted, and picks fall back', async (t) => {
  let updates = 0;
  const broken = (): Strategy => ({
    update() { updates++; if (updates > 1) throw new Error('update exploded'); },
    pick() { throw new Error('pick exploded'); },
  });
  const errors: unknown[] = [];
  const onError = (e: { error: unknown }) => errors.push(e.error);
  modelEvents.on('strategy-error', onError);
  t.teardown(() => { modelEvents.off('strategy-error', onError); });
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
  const b = new Backend(backendConfig([{ name: 'a' }, { name: 'b' }, { name: 'spare', backup: true }]), (await import('../src/strategies/round-robin.js')).roundRobin);
  t.same(b.eligible.map((s) => s.name), ['a', 'b']);
  const [a, bb] = b.servers;
  a!.checkDown = true; a!.noteChange('check');
  t.equal(a!.state, 'DOWN');
  bb!.admin = 'drain'; bb!.noteChange('admin');
  t.equal(bb!.state, 'DRAIN');
  t.same(b.eligible.map((s) => s.name), ['spare'], 'backup takes over');
  bb!.admin = 'ready'; bb!.noteChange('admin');
  t.same(b.eligible.map((s) => s.name), ['b']);
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

import t, { type Test } from 'tap';
import { pino } from 'pino';
import { HealthChecker } from '../src/health/checker.js';
import { PassiveDetector } from '../src/health/passive.js';
import type { Backend, TrafficObserver } from '../src/model/backend.js';
import { healthBackend, runtimeOf, sleep, until } from './support/fake-servers.js';

const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
// Passive tests need no real server: failures are reported the way the proxy core does.
const addrs = (n: number) => Array.from({ length: n }, (_, i) => `127.0.0.1:${20000 + i}`);
const NO_CHECK = { type: 'none' as const };

function setup(
  t: Test,
  n: number,
  passive: Parameters<typeof healthBackend>[3],
  health: Parameters<typeof healthBackend>[2] = NO_CHECK,
): { backend: Backend; observer: TrafficObserver; hc: HealthChecker } {
  const backend = healthBackend('api', addrs(n), health, passive);
  const hc = new HealthChecker({ log: quiet });
  hc.sync(runtimeOf(backend));
  t.teardown(() => hc.stop());
  t.ok(backend.observer instanceof PassiveDetector, 'detector installed as backend.observer');
  return { backend, observer: backend.observer!, hc };
}

t.test('ejected after exactly N consecutive failures, back after the period', async (t) => {
  const { backend, observer } = setup(t, 3, { consecutiveFailures: 3, baseEjectionMs: 150, maxEjectionMs: 1000, maxEjectedPercent: 50 });
  const s = backend.servers[0]!;
  observer.failure(s, '5xx');
  observer.failure(s, 'reset');
  t.notOk(s.ejected, 'not after 2');
  const at = Date.now();
  observer.failure(s, 'timeout');
  t.ok(s.ejected, 'ejected after 3');
  t.equal(s.state, 'DOWN');
  t.match(s.stateReason, /^ejected for 150ms: 3 consecutive failures \(last: timeout\)/);
  t.ok(Math.abs(s.ejectedUntil - at - 150) < 20);
  t.equal(s.ejections, 1);
  t.notOk(backend.eligible.includes(s), 'not eligible while ejected');
  await until(() => !s.ejected, 10_000, 'un-ejected');
  t.ok(Date.now() - at >= 140, 'stayed out for the period');
  t.equal(s.state, 'UP');
  t.equal(s.consecutiveFailures, 0);
  t.ok(backend.eligible.includes(s));
});

t.test('success resets the consecutive count', async (t) => {
  const { backend, observer } = setup(t, 2, { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 1000, maxEjectedPercent: 100 });
  const s = backend.servers[0]!;
  for (let round = 0; round < 5; round++) {
    observer.failure(s, '5xx');
    observer.failure(s, '5xx');
    observer.success(s);
  }
  t.notOk(s.ejected);
  t.equal(s.consecutiveFailures, 0);
});

t.test('the period grows: base x 2^n, capped at max', async (t) => {
  const { backend, observer } = setup(t, 2, { consecutiveFailures: 1, baseEjectionMs: 40, maxEjectionMs: 200, maxEjectedPercent: 50 });
  const s = backend.servers[0]!;
  const periods: number[] = [];
  for (let i = 0; i < 5; i++) {
    const at = Date.now();
    observer.failure(s, 'connect');
    t.ok(s.ejected);
    periods.push(Math.round((s.ejectedUntil - at) / 10) * 10);
    await until(() => !s.ejected, 10_000);
  }
  t.same(periods, [40, 80, 160, 200, 200]);
  t.equal(s.ejections, 5);
});

t.test('max ejected percent respected; at least one may always go', async (t) => {
  const { backend, observer } = setup(t, 4, { consecutiveFailures: 1, baseEjectionMs: 5000, maxEjectionMs: 5000, maxEjectedPercent: 50 });
  for (const s of backend.servers) observer.failure(s, '5xx');
  t.same(
    backend.servers.map((s) => s.ejected),
    [true, true, false, false],
    '50% of 4 = 2',
  );
  t.equal(backend.eligible.length, 2);

  const small = healthBackend('small', addrs(3), NO_CHECK, { consecutiveFailures: 1, baseEjectionMs: 5000, maxEjectionMs: 5000, maxEjectedPercent: 10 });
  const hc = new HealthChecker({ log: quiet });
  t.teardown(() => hc.stop());
  hc.sync(runtimeOf(small));
  for (const s of small.servers) small.observer!.failure(s, '5xx');
  t.equal(small.servers.filter((s) => s.ejected).length, 1, '10% of 3 rounds to 0, but one may go');

  const never = healthBackend('never', addrs(3), NO_CHECK, { consecutiveFailures: 1, baseEjectionMs: 5000, maxEjectionMs: 5000, maxEjectedPercent: 0 });
  hc.sync(runtimeOf(never));
  never.observer!.failure(never.servers[0]!, '5xx');
  t.notOk(never.servers[0]!.ejected, '0% ejects nothing');
});

t.test('health none: a refused connection ejects at once (no threshold, no cap), back after the period', async (t) => {
  const { backend, observer } = setup(t, 2, { consecutiveFailures: 0, baseEjectionMs: 100, maxEjectionMs: 1000, maxEjectedPercent: 10 });
  const [a, b] = backend.servers;
  observer.failure(a!, '5xx');
  observer.failure(a!, 'reset');
  t.notOk(a!.ejected, 'other failures do not count with consecutive_failures 0');
  observer.failure(a!, 'connect');
  observer.failure(b!, 'connect');
  t.ok(a!.ejected && b!.ejected, 'both DOWN: connections to them fail');
  t.equal(backend.state, 'DOWN');
  t.match(a!.stateReason, /connection failed \(no health check\)/);
  await until(() => !a!.ejected && !b!.ejected, 10_000);
  t.equal(backend.state, 'UP', 'back after the ejection period');
});

t.test('active checks + no passive: no observer; reload toggles it', async (t) => {
  const backend = healthBackend('api', addrs(2), { type: 'tcp', intervalMs: 60000 }, { consecutiveFailures: 0 });
  const hc = new HealthChecker({ log: quiet });
  t.teardown(() => hc.stop());
  hc.sync(runtimeOf(backend));
  t.equal(backend.observer, null);
  const { roundRobin } = await import('../src/strategies/round-robin.js');
  backend.apply({ ...backend.config, passive: { ...backend.config.passive, consecutiveFailures: 2, baseEjectionMs: 60000 } }, roundRobin);
  hc.sync(runtimeOf(backend));
  const observer = backend.observer!;
  t.ok(observer);
  observer.failure(backend.servers[0]!, '5xx');
  observer.failure(backend.servers[0]!, '5xx');
  t.ok(backend.servers[0]!.ejected);
  backend.apply({ ...backend.config, passive: { ...backend.config.passive, consecutiveFailures: 0 } }, roundRobin);
  hc.sync(runtimeOf(backend));
  t.equal(backend.observer, null, 'disabled by reload');
  t.notOk(backend.servers[0]!.ejected, 'its ejections end with it');
});

t.test('passive only (cluster worker): no active loops', async (t) => {
  const backend = healthBackend('api', addrs(2), { type: 'http', intervalMs: 10 }, { consecutiveFailures: 1 });
  const hc = new HealthChecker({ log: quiet, active: false });
  t.teardown(() => hc.stop());
  hc.sync(runtimeOf(backend));
  await sleep(50);
  t.equal(hc.loopOf(backend.servers[0]!), undefined);
  t.ok(backend.observer);
});

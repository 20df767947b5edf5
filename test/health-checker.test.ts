import { connect, type Socket } from 'node:net';
import t from 'tap';
import { pino } from 'pino';
import { HealthChecker } from '../src/health/checker.js';
import { setAdminState } from '../src/model/admin-state.js';
import type { AdminState } from '../src/model/server.js';
import { modelEvents, type ServerStateEvent } from '../src/model/events.js';
import type { Server } from '../src/model/server.js';
import { fakeHttp, fakeTcp, healthBackend, runtimeOf, sleep, until } from './support/fake-servers.js';

const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const checker = (random?: () => number) => new HealthChecker({ log: quiet, ...(random ? { random } : {}) });

/** Record server-state events of one server, with how many checks the fake server had seen. */
function watch(server: Server, hits: () => number) {
  const events: (ServerStateEvent & { hits: number; at: number })[] = [];
  const on = (e: ServerStateEvent) => {
    if (e.server === server) events.push({ ...e, hits: hits(), at: performance.now() });
  };
  modelEvents.on('server-state', on);
  return { events, off: () => modelEvents.off('server-state', on) };
}

t.test('fall 3: DOWN after exactly 3 failures; rise 2: UP after exactly 2 successes', async (t) => {
  const s = await fakeHttp({ status: 503 });
  const backend = healthBackend('b', [s.address], { intervalMs: 40, fastIntervalMs: 40, downIntervalMs: 40, rise: 2, fall: 3 });
  const server = backend.servers[0]!;
  const hc = checker();
  const w = watch(server, () => s.hits);
  t.teardown(async () => {
    w.off();
    await hc.stop();
    await s.close();
  });
  t.equal(server.state, 'UP', 'starts UP');
  hc.sync(runtimeOf(backend));

  await until(() => server.checkDown, 10_000, 'DOWN');
  t.equal(w.events.length, 1);
  t.match(w.events[0], { from: 'UP', to: 'DOWN', reason: 'status 503', hits: 3 }, 'DOWN at the 3rd failure, not the 2nd');
  t.equal(server.check.downTransitions, 1);
  t.equal(server.check.failures, 3);
  t.match(server.check, { code: 'L7STS', reason: 'status 503', health: 0 });
  t.notOk(backend.eligible.includes(server), 'DOWN server is not eligible');

  s.status = 200;
  const before = s.hits;
  await until(() => !server.checkDown, 10_000, 'UP');
  t.match(w.events[1], { from: 'DOWN', to: 'UP', reason: 'status 200' });
  t.equal(w.events[1]!.hits - before, 2, 'exactly rise successes');
  t.equal(server.check.health, 4, 'at the top again');
  t.ok(backend.eligible.includes(server));
});

t.test('a success in between restarts the count', async (t) => {
  const s = await fakeHttp({ status: 503 });
  const backend = healthBackend('b', [s.address], { intervalMs: 30, fastIntervalMs: 30, downIntervalMs: 30, fall: 3 });
  const server = backend.servers[0]!;
  const hc = checker();
  t.teardown(async () => {
    await hc.stop();
    await s.close();
  });
  hc.sync(runtimeOf(backend));
  // fail, fail, ok, fail, fail, ok ... never 3 in a row
  s.statusFor = (hit) => (hit % 3 === 2 ? 200 : 503);
  await until(() => s.hits >= 12, 10_000);
  t.equal(server.check.downTransitions, 0, 'never DOWN');
});

t.test('intervals: fastinter while changing, downinter while DOWN, inter when steady', async (t) => {
  const s = await fakeHttp({ status: 503 });
  const backend = healthBackend('b', [s.address], { intervalMs: 1200, fastIntervalMs: 200, downIntervalMs: 500, rise: 2, fall: 3 });
  const server = backend.servers[0]!;
  // No jitter (random 0.5). Each check reports the time it was due; the checker sets that from the
  // previous check's start plus the chosen interval. So due[i+1] - start[i] is the interval it chose,
  // whatever a loaded machine does to timers: no elapsed-time bound in this test.
  const start: number[] = [];
  const due: number[] = [];
  const hc = new HealthChecker({
    log: quiet,
    random: () => 0.5,
    onCheckStart: (_server, dueAt) => {
      start.push(performance.now());
      due.push(dueAt);
    },
  });
  t.teardown(async () => {
    await hc.stop();
    await s.close();
  });
  hc.sync(runtimeOf(backend));
  await until(() => s.hits >= 5, 10_000);
  s.status = 200;
  await until(() => s.hits >= 8, 10_000);
  const chosen = (i: number) => due[i + 1]! - start[i]!;
  const near = (got: number, want: number, what: string) => t.ok(Math.abs(got - want) <= 2, `${what}: ${got.toFixed(0)}ms ~ ${want}ms`);
  near(chosen(0), 200, 'after the 1st failure (changing): fastinter');
  near(chosen(1), 200, 'after the 2nd failure: fastinter');
  near(chosen(2), 500, 'DOWN: downinter');
  near(chosen(3), 500, 'DOWN: downinter');
  // hit 5 (index 5) is the first success (h=1, changing) -> fastinter; then UP at the top -> inter
  near(chosen(5), 200, 'rising: fastinter');
  near(chosen(6), 1200, 'UP: inter');
  t.equal(server.state, 'UP');
});

t.test('a killed server is DOWN within fall x interval + timeout, back UP after rise', async (t) => {
  const s = await fakeHttp();
  const health = { intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100, timeoutMs: 200, rise: 2, fall: 3 };
  const backend = healthBackend('b', [s.address], health);
  const server = backend.servers[0]!;
  const hc = checker();
  const w = watch(server, () => s.hits);
  t.teardown(async () => {
    w.off();
    await hc.stop();
    await s.close();
  });
  hc.sync(runtimeOf(backend));
  await until(() => s.hits >= 2, 10_000);
  const killed = performance.now();
  await s.refuse();
  await until(() => server.checkDown, 10_000, 'DOWN');
  const took = performance.now() - killed;
  // Not on the first failure: fall checks, so at least fall - 1 intervals (less 10% jitter) after
  // the kill. Only a lower bound: a loaded machine may fire timers late, never early.
  const atLeast = (health.fall - 1) * health.intervalMs * 0.9;
  t.ok(took >= atLeast, `DOWN after ${took.toFixed(0)}ms >= ${atLeast}ms`);
  t.equal(server.check.reason, 'connection refused');
  t.equal(server.check.code, 'L4CON');
  t.match(w.events.at(-1), { to: 'DOWN', reason: 'connection refused' });

  const before = s.hits;
  await s.restore();
  await until(() => !server.checkDown, 10_000, 'UP');
  t.equal(w.events.at(-1)!.hits - before, 2, 'UP after exactly rise checks answered');
  t.equal(server.state, 'UP');
});

t.test('tcp check and timeouts feed the same counter', async (t) => {
  const s = await fakeTcp();
  const backend = healthBackend('b', [s.address], { type: 'tcp', intervalMs: 30, fastIntervalMs: 30, downIntervalMs: 30, fall: 2 });
  const server = backend.servers[0]!;
  const hc = checker();
  t.teardown(async () => {
    await hc.stop();
    await s.close();
  });
  hc.sync(runtimeOf(backend));
  await until(() => server.check.code === 'L4OK', 10_000);
  t.equal(server.check.reason, 'connected');
  await s.refuse();
  await until(() => server.checkDown, 10_000);
  t.equal(server.check.reason, 'connection refused');
  t.equal(server.check.downTransitions, 1);
});

t.test('MAINT: not checked, in-flight check dropped; ready: checked at once', async (t) => {
  const s = await fakeHttp({ status: 503 });
  const backend = healthBackend('b', [s.address], { intervalMs: 500, fastIntervalMs: 500, downIntervalMs: 500, rise: 2, fall: 1 });
  const server = backend.servers[0]!;
  const due: number[] = [];
  const hc = new HealthChecker({ log: quiet, onCheckStart: (_server, dueAt) => due.push(dueAt) });
  t.teardown(async () => {
    await hc.stop();
    await s.close();
  });
  hc.sync(runtimeOf(backend));
  await until(() => server.checkDown, 10_000);

  setAdminState(server, 'maint');
  t.equal(server.state, 'MAINT');
  t.equal(server.stateReason, 'admin: maint');
  await sleep(20);
  const hits = s.hits;
  await sleep(1200);
  t.equal(s.hits, hits, 'no check while MAINT');

  s.status = 200;
  const left = performance.now();
  setAdminState(server, 'ready');
  // HAProxy: leaving MAINT the server starts UP at health=rise and is checked immediately.
  await until(() => s.hits > hits, 10_000);
  // The checker's own due time for that check: set when leaving MAINT, not an interval later
  // (a check left to the next 500 ms tick is due >= 500 ms after; timers firing late do not move it).
  const dueAfter = due.at(-1)! - left;
  t.ok(dueAfter < 100, `checked at once on leaving MAINT (due ${dueAfter.toFixed(0)}ms after, interval 500ms)`);
  await until(() => server.state === 'UP', 10_000);
  t.equal(server.check.health, 2, 'the success took it to the top (rise 2 + fall 1 - 1)');

  // Leaving MAINT while the server is dead: one failed check is enough to mark it DOWN.
  setAdminState(server, 'maint');
  s.status = 500;
  setAdminState(server, 'ready');
  await until(() => server.checkDown, 10_000);
  t.equal(server.check.reason, 'status 500');
  // Bad input on purpose: a word from outside the types (the runtime API, a plain-JS caller),
  // the display name in upper case, is refused at run time.
  const displayName: string = 'MAINT';
  t.throws(() => setAdminState(server, displayName as AdminState), /expected one of ready, drain, maint/);
  setAdminState(server, 'drain');
  t.equal(server.admin, 'drain');
});

t.test("on_marked_down: shutdown_sessions closes the server's connections", async (t) => {
  const s = await fakeHttp();
  const backend = healthBackend('b', [s.address], { intervalMs: 30, fastIntervalMs: 30, downIntervalMs: 30, fall: 1, onMarkedDown: 'shutdown_sessions' });
  const other = healthBackend('c', [s.address], { intervalMs: 30, fastIntervalMs: 30, downIntervalMs: 30, fall: 1, path: '/other' });
  const server = backend.servers[0]!;
  const kept = other.servers[0]!;
  const open = async (): Promise<Socket> => {
    const sock = connect({ host: '127.0.0.1', port: s.port });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    return sock;
  };
  const a = await open(),
    b = await open();
  server.sessions.add(a);
  kept.sessions.add(b);
  const hc = checker();
  t.teardown(async () => {
    await hc.stop();
    await s.close();
    a.destroy();
    b.destroy();
  });
  hc.sync(runtimeOf(backend, other));
  await until(() => server.check.at > 0 && kept.check.at > 0, 10_000);
  s.status = 503;
  await until(() => server.checkDown && kept.checkDown, 10_000);
  t.ok(a.destroyed, 'session of the shutdown_sessions backend closed');
  t.equal(server.sessions.size, 0);
  t.notOk(b.destroyed, 'default: sessions kept');
});

t.test('reload: kept servers keep their loop, changed settings restart it, removed ones stop', async (t) => {
  const s = await fakeHttp();
  const backend = healthBackend('b', [s.address, s.address], { intervalMs: 50 });
  const [s1, s2] = backend.servers;
  const hc = checker();
  t.teardown(async () => {
    await hc.stop();
    await s.close();
  });
  hc.sync(runtimeOf(backend));
  const l1 = hc.loopOf(s1!),
    l2 = hc.loopOf(s2!);
  t.ok(l1 && l2);
  hc.sync(runtimeOf(backend));
  t.equal(hc.loopOf(s1!), l1, 'same settings: same loop');

  const { roundRobin } = await import('../src/strategies/round-robin.js');
  const cfg = backend.config;
  backend.apply({ ...cfg, servers: [cfg.servers[0]!] }, roundRobin);
  hc.sync(runtimeOf(backend));
  t.equal(hc.loopOf(s1!), l1, 'kept server keeps its loop');
  t.equal(hc.loopOf(s2!), undefined, 'removed server: loop stopped');

  backend.apply({ ...backend.config, health: { ...cfg.health, intervalMs: 60 } }, roundRobin);
  hc.sync(runtimeOf(backend));
  t.not(hc.loopOf(s1!), l1, 'health settings changed: loop restarted');
  t.equal(hc.loopOf(s1!)!.health.intervalMs, 60);

  // Discovery-like change without a runtime swap: followed through backend-refresh.
  backend.apply({ ...backend.config, servers: [...cfg.servers] }, roundRobin);
  await sleep(0);
  t.ok(hc.loopOf(backend.servers[1]!), 'a server added in place gets a loop');

  backend.apply({ ...backend.config, health: { ...backend.config.health, type: 'none' } }, roundRobin);
  hc.sync(runtimeOf(backend));
  t.equal(hc.loopOf(s1!), undefined, 'type none: no loop');

  hc.sync(runtimeOf());
  t.equal(hc.loopOf(backend.servers[1]!), undefined);
});

t.test('200 servers at 1s: checks are spread, never all at once', async (t) => {
  const s = await fakeTcp();
  const addresses = Array.from({ length: 200 }, () => s.address);
  const backend = healthBackend('many', addresses, { type: 'tcp', intervalMs: 1000, fastIntervalMs: 1000, downIntervalMs: 1000, timeoutMs: 500 });
  const due: number[] = [];
  const started: number[] = [];
  // The first round is each server's first check, not the first 200 started: on a loaded machine
  // a server's second check (due ~1 s in) can start before another server's late first one.
  const firstDue = new Map<Server, number>();
  const firstStart = new Map<Server, number>();
  const hc = new HealthChecker({
    log: quiet,
    onCheckStart: (server, dueAt) => {
      const now = performance.now();
      due.push(dueAt);
      started.push(now);
      if (!firstDue.has(server)) {
        firstDue.set(server, dueAt);
        firstStart.set(server, now);
      }
    },
  });
  t.teardown(async () => {
    await hc.stop();
    await s.close();
  });
  hc.sync(runtimeOf(backend));
  // Polled with a generous deadline rather than a fixed 2.3 s sleep a loaded machine can miss.
  await until(() => due.length >= 300 && backend.servers.every((x) => x.check.code === 'L4OK'), 10_000, 'two rounds');
  t.ok(
    backend.servers.every((x) => x.check.code === 'L4OK'),
    'every server checked',
  );
  t.ok(due.length >= 300, `~2 rounds of checks (${due.length})`);
  const busiest = (times: number[]) => {
    const sorted = [...times].sort((a, b) => a - b);
    let worst = 0;
    for (let i = 0, j = 0; i < sorted.length; i++) {
      while (sorted[j]! < sorted[i]! - 100) j++;
      worst = Math.max(worst, i - j + 1);
    }
    return worst;
  };
  // When checks were due is what the scheduler decides; when they started also depends on how
  // much CPU this process got (2 shared cores under parallel test runs), hence two bounds.
  const dueWorst = busiest(due);
  t.ok(dueWorst <= 40, `busiest 100 ms window of due times holds ${dueWorst} checks (<= 20% of 200)`);
  const startWorst = busiest(started);
  t.ok(startWorst <= 80, `busiest 100 ms window of start times holds ${startWorst} checks`);
  const firstRound = [...firstDue.values()];
  t.equal(firstRound.length, 200, 'every server checked once at least');
  t.ok(Math.max(...firstRound) - Math.min(...firstRound) > 900, 'the first round spans the interval');
  // The first round, in ten 100 ms slices of the interval: about 20 checks due in each (one slot
  // per server), and checks really starting in nearly every slice.
  const buckets = (times: number[]) => {
    const from = Math.min(...times);
    const counts = new Array<number>(10).fill(0);
    for (const x of times) counts[Math.min(9, Math.floor((x - from) / 100))]!++;
    return counts;
  };
  const dueBuckets = buckets(firstRound);
  t.ok(
    dueBuckets.every((n) => n >= 15 && n <= 25),
    `due per 100 ms of the first round: ${dueBuckets.join(' ')}`,
  );
  const startBuckets = buckets([...firstStart.values()]);
  t.ok(startBuckets.filter((n) => n >= 5).length >= 8, `started per 100 ms of the first round: ${startBuckets.join(' ')}`);
});

t.test('stop(): no timer left, in-flight checks cancelled', async (t) => {
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const s = await fakeHttp({ stall: true });
  const backend = healthBackend(
    'b',
    [s.address, s.address, s.address],
    { intervalMs: 20, timeoutMs: 60_000 },
    { consecutiveFailures: 1, baseEjectionMs: 60000 },
  );
  const hc = checker();
  hc.sync(runtimeOf(backend));
  await until(() => s.hits >= 3, 10_000, 'checks in flight');
  backend.observer!.failure(backend.servers[0]!, '5xx');
  t.ok(backend.servers[0]!.ejected, 'an ejection timer runs');
  const stopping = performance.now();
  await hc.stop();
  // The check timeout is a minute: a stop that waited for in-flight checks to time out fails this
  // generous 10 s deadline (far from the limit it tests; a loaded machine does not take 10 s).
  t.ok(performance.now() - stopping < 10_000, 'stop does not wait for the 60 s check timeout');
  t.equal(backend.observer, null, 'observer removed');
  t.notOk(backend.servers[0]!.ejected, 'no server left ejected');
  await sleep(20);
  const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  t.ok(after <= before, `timers: ${before} before, ${after} after`);
  hc.sync(runtimeOf(backend));
  t.equal(hc.loopOf(backend.servers[0]!), undefined, 'a stopped checker stays stopped');
  await s.close();
});

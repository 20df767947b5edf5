// What a transition leaves behind (issue: "each transition logged with its reason, counted, and
// timestamped for the stats page"), and the ±10% jitter on every interval after the first.
import t from 'tap';
import { HealthChecker } from '../src/health/checker.js';
import { modelEvents, type ServerStateEvent } from '../src/model/events.js';
import { captureLogger } from './support/consul-fixtures.js';
import { fakeHttp, fakeTcp, healthBackend, runtimeOf, until } from './support/fake-servers.js';

type Line = Record<string, unknown>;
const transitions = (lines: Line[]) => lines.filter((l) => typeof l.to === 'string' && l.component === 'health');

t.test('each transition: one log line with from, to and the reason; counted; timestamped', async (t) => {
  const http = await fakeHttp({ stall: true });
  const tcp = await fakeTcp();
  const { logger, lines } = captureLogger();
  const log = logger.child({ component: 'health' });
  const fast = { intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100, rise: 1, fall: 1 };
  const web = healthBackend('web', [http.address], { ...fast, timeoutMs: 2000 });
  // fall 2 for db: a check already connected when the server dies sees a reset, not a refusal;
  // the second failure is a check begun after the listener closed, so the DOWN names the refusal.
  const db = healthBackend('db', [tcp.address], { ...fast, fall: 2, type: 'tcp', timeoutMs: 500 });
  const events: (ServerStateEvent & { at: number })[] = [];
  const onState = (e: ServerStateEvent) => events.push({ ...e, at: Date.now() });
  modelEvents.on('server-state', onState);
  const hc = new HealthChecker({ log });
  t.teardown(async () => {
    modelEvents.off('server-state', onState);
    await hc.stop();
    await http.close();
    await tcp.close();
  });
  const w = web.servers[0]!;
  const d = db.servers[0]!;
  const startedAt = Date.now();
  hc.sync(runtimeOf(web, db));

  // 1. No answer within the 2 s timeout.
  await until(() => w.checkDown, 5000, 'web DOWN by timeout');
  t.ok(w.stateSince >= startedAt + 1900 && w.stateSince <= Date.now(), 'stateSince: when it went DOWN');
  let line = transitions(lines).at(-1)!;
  t.match(line, {
    backend: 'web',
    server: 's1',
    address: http.address,
    from: 'UP',
    to: 'DOWN',
    reason: 'timeout after 2s',
    code: 'L7TOUT',
    msg: 'server s1 DOWN: timeout after 2s',
  });
  t.equal(w.stateReason, 'timeout after 2s', 'the stats page shows the reason');
  t.equal(w.check.downTransitions, 1, 'counted (chkdown)');
  t.ok(w.check.at >= w.stateSince - 5, 'last check time recorded');

  // 2. Answers again: UP, reason = what the check saw.
  http.stall = false;
  await until(() => !w.checkDown, 10_000, 'web UP');
  line = transitions(lines).at(-1)!;
  t.match(line, { backend: 'web', from: 'DOWN', to: 'UP', reason: 'status 200', code: 'L7OK' });

  // 3. A wrong status.
  http.status = 503;
  await until(() => w.checkDown, 10_000, 'web DOWN by status');
  t.match(transitions(lines).at(-1), { from: 'UP', to: 'DOWN', reason: 'status 503', code: 'L7STS' });
  t.equal(w.check.downTransitions, 2, 'counted again');

  // 4. Connections refused (tcp check).
  await until(() => d.check.code === 'L4OK', 10_000);
  await tcp.refuse();
  await until(() => d.checkDown, 10_000, 'db DOWN');
  t.match(transitions(lines).at(-1), { backend: 'db', from: 'UP', to: 'DOWN', reason: 'connection refused', code: 'L4CON' });
  t.equal(d.check.downTransitions, 1);

  // One line and one event per transition, no more (checks that change nothing log nothing).
  t.same(
    transitions(lines).map((l) => `${String(l.backend)} ${String(l.to)} ${String(l.reason)}`),
    ['web DOWN timeout after 2s', 'web UP status 200', 'web DOWN status 503', 'db DOWN connection refused'],
  );
  t.same(
    events.map((e) => `${e.server.backendName} ${e.from}->${e.to} ${e.reason}`),
    ['web UP->DOWN timeout after 2s', 'web DOWN->UP status 200', 'web UP->DOWN status 503', 'db UP->DOWN connection refused'],
    'the model event feed (stats history and event log) carries the same reasons',
  );
});

t.test('every interval after the first gets ±10% jitter', async (t) => {
  const s = await fakeTcp();
  t.teardown(() => s.close());
  const inter = 200;
  for (const [r, factor] of [
    [0, 0.9],
    [0.999999, 1.1],
  ] as const) {
    const backend = healthBackend(`j${r}`, [s.address], { type: 'tcp', intervalMs: inter, fastIntervalMs: inter, downIntervalMs: inter });
    const due: number[] = [];
    const started: number[] = [];
    const hc = new HealthChecker({
      random: () => r,
      onCheckStart: (_s, dueAt) => {
        due.push(dueAt);
        started.push(performance.now());
      },
    });
    hc.sync(runtimeOf(backend));
    await until(() => due.length >= 5, 5000);
    await hc.stop();
    // When the next check was due, measured from the start of the one before: the interval the
    // scheduler chose (timer lag does not enter it).
    const chosen = due.slice(1).map((d, i) => d - started[i]!);
    for (const c of chosen)
      t.ok(Math.abs(c - inter * factor) <= 3, `random ${r}: next check due ${c.toFixed(1)}ms after the last started (${inter} x ${factor})`);
  }
});

// Health checks and passive detection wired to the proxy core, end to end through a frontend:
// real sockets, real traffic, the real HealthChecker component.
import t from 'tap';
import { createServer, type Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { startSwitchyard } from '../src/switchyard.js';
import { HealthChecker } from '../src/health/checker.js';
import type { HealthConfig, PassiveHealthConfig } from '../src/config/types.js';
import { modelEvents, type ServerStateEvent } from '../src/model/events.js';
import type { Server } from '../src/model/server.js';
import { healthConfig } from './support/backend-config.js';
import { backendConfig, config, deadPort, frontendConfig, httpServer, quietLogger, tcpServer } from './support/proxy-harness.js';

const HEALTH = healthConfig({
  type: 'http',
  path: '/health',
  intervalMs: 200,
  fastIntervalMs: 100,
  downIntervalMs: 200,
  timeoutMs: 150,
  rise: 2,
  fall: 2,
});
const NO_PASSIVE: PassiveHealthConfig = { consecutiveFailures: 0, baseEjectionMs: 30000, maxEjectionMs: 300000, maxEjectedPercent: 50 };
const withChecker = async () => [new HealthChecker({ log: quietLogger })];

/** Transitions of one server, timestamped as they happen (no polling in the measurement). */
function transitionsOf(server: () => Server | undefined) {
  const seen: (ServerStateEvent & { at: number })[] = [];
  const on = (e: ServerStateEvent) => {
    if (e.server === server()) seen.push({ ...e, at: Date.now() });
  };
  modelEvents.on('server-state', on);
  return { seen, off: () => modelEvents.off('server-state', on) };
}

async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An HTTP server on a given port counting health checks (path /health) apart from traffic. */
async function countingServer(name: string, port: number): Promise<{ srv: HttpServer; checks: number; close(): Promise<void> }> {
  const out = {
    srv: null as unknown as HttpServer,
    checks: 0,
    close: () =>
      new Promise<void>((r) => {
        out.srv.closeAllConnections();
        out.srv.close(() => r());
      }),
  };
  out.srv = createServer((req, res) => {
    if (req.url === '/health') out.checks++;
    res.end(name);
  });
  await new Promise<void>((r) => out.srv.listen(port, '127.0.0.1', r));
  return out;
}

t.test('a killed server is DOWN within fall x interval (+ timeout); requests meanwhile succeed by retry; UP after rise', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const cfg = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address, b.address], { health: HEALTH })]);
  const sy = await startSwitchyard({ config: cfg, logger: quietLogger, watch: false, components: withChecker });
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
    await b.close();
  });
  const port = sy.frontendAddress('web').port;
  const backend = sy.runtime().backends.get('api')!;
  const s2 = backend.serverByName('s2')!;
  const events = transitionsOf(() => s2);
  t.teardown(events.off);
  // Let the checks settle and the pool hold a connection to b.
  await waitUntil(() => s2.check.code === 'L7OK', 15_000, 'b checked');
  for (let i = 0; i < 4; i++) await (await request(`http://127.0.0.1:${port}/`)).body.text();

  await b.close();
  const killedAt = Date.now();
  const retriesBefore = backend.counters.wretr;
  const bodies: string[] = [];
  let firstRetryAt = 0;
  for (let i = 0; i < 10; i++) {
    const res = await request(`http://127.0.0.1:${port}/`);
    t.equal(res.statusCode, 200, `request ${i} after the kill`);
    bodies.push(await res.body.text());
    if (firstRetryAt === 0 && backend.counters.wretr > retriesBefore) firstRetryAt = Date.now();
  }
  t.same([...new Set(bodies)], ['a'], 'answered by a');
  t.ok(backend.counters.wretr > retriesBefore, `refused connects to b were retried on a (${backend.counters.wretr - retriesBefore} retries)`);

  // Polled with a generous deadline: how fast DOWN comes is fall x interval on an idle machine,
  // and no upper bound on elapsed time is asserted (a loaded CI machine fires timers late).
  await waitUntil(() => s2.state === 'DOWN', 30_000, 'b DOWN');
  const down = events.seen.find((e) => e.to === 'DOWN')!;
  t.ok(down.at >= killedAt, `DOWN ${down.at - killedAt} ms after the kill, never before it`);
  t.ok(firstRetryAt > 0 && firstRetryAt < down.at, `a request answered through a retry ${firstRetryAt - killedAt} ms after the kill, before b was DOWN`);
  t.match(down.reason, /connection refused|connection reset|connection closed/);

  // b comes back on the same port: UP after exactly `rise` successful checks.
  const back = await countingServer('b', b.port);
  t.teardown(() => back.close());
  const checksAtUp = await new Promise<number>((resolve) => {
    const on = (e: ServerStateEvent) => {
      if (e.server === s2 && e.to === 'UP') {
        modelEvents.off('server-state', on);
        resolve(back.checks);
      }
    };
    modelEvents.on('server-state', on);
  });
  t.equal(checksAtUp, HEALTH.rise, `UP after ${checksAtUp} successful checks (rise ${HEALTH.rise})`);
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(await (await request(`http://127.0.0.1:${port}/`)).body.text());
  t.same([...seen].sort(), ['a', 'b'], 'traffic spreads over both again');
});

t.test('passive: consecutive 5xx on real traffic eject for a growing period; connect failures too', async (t) => {
  const bad = await httpServer('bad', (_q, res) => {
    res.statusCode = 500;
    res.end('bad');
  });
  const good = await httpServer('good');
  const dead = await deadPort();
  const passive = { consecutiveFailures: 2, baseEjectionMs: 400, maxEjectionMs: 3000, maxEjectedPercent: 50 };
  const cfg = config(
    [frontendConfig('web', 'http', 'api'), frontendConfig('conn', 'http', 'conn')],
    [
      backendConfig('api', 'http', [bad.address, good.address], { passive }),
      // An active check too (60 s interval: it does not get to see the dead server), so connect
      // failures follow the consecutive rule rather than the no-check rule.
      backendConfig('conn', 'http', [`127.0.0.1:${dead}`, good.address], {
        passive,
        health: { ...HEALTH, type: 'tcp', intervalMs: 60_000, fastIntervalMs: 60_000, downIntervalMs: 60_000, fall: 3 },
      }),
    ],
  );
  const sy = await startSwitchyard({ config: cfg, logger: quietLogger, watch: false, components: withChecker });
  t.teardown(async () => {
    await sy.stop(100);
    await bad.close();
    await good.close();
  });
  const web = sy.frontendAddress('web').port;
  const api = sy.runtime().backends.get('api')!;
  const s1 = api.serverByName('s1')!;

  const periods: number[] = [];
  for (let round = 0; round < 2; round++) {
    const statuses: number[] = [];
    while (!s1.ejected && statuses.length < 20) {
      const res = await request(`http://127.0.0.1:${web}/`);
      await res.body.text();
      statuses.push(res.statusCode);
    }
    t.ok(s1.ejected, `round ${round + 1}: ejected after its failures`);
    t.equal(statuses.filter((s) => s === 500).length, 2, 'after exactly consecutive_failures 5xx answers');
    periods.push(Number(/ejected for (\d+)ms/.exec(s1.stateReason)![1]));
    t.match(s1.stateReason, /2 consecutive failures \(last: 5xx\)/);
    for (let i = 0; i < 6; i++) t.equal(await (await request(`http://127.0.0.1:${web}/`)).body.text(), 'good', 'while ejected: no traffic to it');
    await waitUntil(() => !s1.ejected, 3000, 'ejection over');
  }
  t.same(periods, [400, 800], 'the period doubles for a server ejected again soon after');
  t.equal(s1.ejections, 2);

  const connPort = sy.frontendAddress('conn').port;
  const dead1 = sy.runtime().backends.get('conn')!.serverByName('s1')!;
  for (let i = 0; i < 6; i++) {
    const res = await request(`http://127.0.0.1:${connPort}/`);
    t.equal(res.statusCode, 200, 'refused connects are retried on the good server');
    await res.body.text();
  }
  t.ok(dead1.ejected, 'consecutive connect failures eject');
  t.match(dead1.stateReason, /consecutive failures \(last: connect\)/);
  t.equal(dead1.check.downTransitions, 0, 'by passive detection, not by the active check');
});

t.test('passive: never more than max_ejected_percent of a backend is ejected', async (t) => {
  const failing = await Promise.all(
    [0, 1, 2].map((i) =>
      httpServer(`bad${i}`, (_q, res) => {
        res.statusCode = 503;
        res.end();
      }),
    ),
  );
  const ok = await httpServer('ok');
  const passive = { consecutiveFailures: 1, baseEjectionMs: 60_000, maxEjectionMs: 60_000, maxEjectedPercent: 50 };
  const cfg = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [...failing.map((f) => f.address), ok.address], { passive })]);
  const sy = await startSwitchyard({ config: cfg, logger: quietLogger, watch: false, components: withChecker });
  t.teardown(async () => {
    await sy.stop(100);
    for (const f of failing) await f.close();
    await ok.close();
  });
  const port = sy.frontendAddress('web').port;
  const backend = sy.runtime().backends.get('api')!;
  for (let i = 0; i < 40; i++) await (await request(`http://127.0.0.1:${port}/`)).body.text();
  const ejected = backend.servers.filter((s) => s.ejected).map((s) => s.name);
  t.equal(ejected.length, 2, `50% of 4 servers: 2 ejected (${ejected.join()}), though 3 keep failing`);
  const third = backend.servers.find((s) => !s.ejected && s.name !== 's4')!;
  t.ok(third.consecutiveFailures >= 2, 'the third failing server stays in, its failures counted');
  t.equal(backend.eligible.length, 2);
});

t.test("on_marked_down: shutdown_sessions closes a DOWN server's connections; the default keeps them", async (t) => {
  const kill = await tcpServer();
  const keep = await tcpServer();
  const tcpHealth: HealthConfig = { ...HEALTH, type: 'tcp', intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100, fall: 1 };
  const cfg = config(
    [frontendConfig('k', 'tcp', 'kill'), frontendConfig('p', 'tcp', 'keep')],
    [
      backendConfig('kill', 'tcp', [kill.address], { health: { ...tcpHealth, onMarkedDown: 'shutdown_sessions' }, passive: NO_PASSIVE }),
      backendConfig('keep', 'tcp', [keep.address], { health: tcpHealth, passive: NO_PASSIVE }),
    ],
  );
  const sy = await startSwitchyard({ config: cfg, logger: quietLogger, watch: false, components: withChecker });
  t.teardown(async () => {
    await sy.stop(100);
    await kill.close();
    await keep.close();
  });
  const open = async (port: number): Promise<{ sock: Socket; closed: Promise<void>; echo(s: string): Promise<string> }> => {
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    const echo = (s: string) =>
      new Promise<string>((resolve) => {
        sock.once('data', (d) => resolve(d.toString()));
        sock.write(s);
      });
    return { sock, closed, echo };
  };
  const k = await open(sy.frontendAddress('k').port);
  const p = await open(sy.frontendAddress('p').port);
  t.equal(await k.echo('hi'), 'hi');
  t.equal(await p.echo('hi'), 'hi');
  const ks = sy.runtime().backends.get('kill')!.servers[0]!;
  const ps = sy.runtime().backends.get('keep')!.servers[0]!;

  // Both servers stop accepting (health checks refused) but keep the connections they have.
  // (close() without a callback: the callback would wait for those connections to end.)
  kill.server.close();
  keep.server.close();
  await waitUntil(() => ks.checkDown && ps.checkDown, 3000, 'both DOWN');
  await Promise.race([k.closed, new Promise((_r, reject) => setTimeout(() => reject(new Error('shutdown_sessions did not close the session')), 2000))]);
  t.ok(k.sock.destroyed || k.sock.readableEnded, 'shutdown_sessions: the client connection to the DOWN server was closed');
  t.equal(ks.sessions.size, 0);
  t.equal(await p.echo('still'), 'still', 'default: the open connection keeps working');
  t.notOk(p.sock.destroyed);
  p.sock.destroy();
});

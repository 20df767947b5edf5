// Recovery from passive ejection by active checks: a server killed under traffic is ejected
// (30 s base ejection), restarted, and back in service as soon as its checks pass `rise`
// times, not when the ejection ends; the log and the stats say why. A server whose checks
// keep failing stays out; a worker's ejection ends when its primary's checks bring the server
// back UP.
import t from 'tap';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';
import { startSwitchyard } from '../src/switchyard.js';
import { HealthChecker } from '../src/health/checker.js';
import { PassiveDetector } from '../src/health/passive.js';
import { applyFlags } from '../src/cluster/worker.js';
import { healthConfig } from './support/backend-config.js';
import { backendConfig, config, frontendConfig } from './support/proxy-harness.js';
import { captureLogger, until } from './support/hostile.js';

/** An HTTP server we can kill (every connection reset, nothing listening) and restart on its port. */
class Killable {
  server: HttpServer | null = null;
  readonly sockets = new Set<Socket>();
  port = 0;
  constructor(readonly name: string) {}
  async start(): Promise<this> {
    const server = createServer((_req, res) => res.end(this.name));
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }
  kill(): void {
    this.server?.close();
    this.server = null;
    for (const s of this.sockets) s.resetAndDestroy();
  }
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
}

const health = healthConfig({ type: 'http', intervalMs: 500, fastIntervalMs: 500, downIntervalMs: 500, timeoutMs: 300, rise: 1, fall: 3 });
const passive = { consecutiveFailures: 1, baseEjectionMs: 30000, maxEjectionMs: 300000, maxEjectedPercent: 100 };

t.test('a passively ejected server is back as soon as its active checks pass rise times', async (t) => {
  const a = await new Killable('a').start();
  const b = await new Killable('b').start();
  const { logger, lines } = captureLogger();
  const sy = await startSwitchyard({
    config: config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address, b.address], { health, passive, retries: 2 })]),
    logger,
    watch: false,
    components: async () => [new HealthChecker({ log: logger })],
  });
  t.teardown(async () => {
    await sy.stop(200);
    a.kill();
    b.kill();
  });
  const port = sy.frontendAddress('web').port;
  const sa = sy
    .runtime()
    .backends.get('api')!
    .servers.find((s) => s.address === a.address)!;
  for (let round = 1; round <= 2; round++) {
    a.kill();
    // Traffic finds the dead server: a refused connect ejects it (consecutive_failures 1).
    for (let i = 0; i < 4 && !sa.ejected; i++) {
      const res = await request(`http://127.0.0.1:${port}/`);
      t.equal(res.statusCode, 200, `round ${round}: served (retried on b)`);
      await res.body.text();
    }
    t.ok(sa.ejected, `round ${round}: a is ejected`);
    t.ok(sa.ejectedUntil - Date.now() > 20000, `round ${round}: for the ejection period (${sa.ejectedUntil - Date.now()} ms left)`);
    await a.start();
    t.ok(await until(() => sa.state === 'UP', 15000), `round ${round}: a is UP again long before its ejection ends`);
    t.equal(sa.ejected, false, `round ${round}: no longer ejected`);
    t.match(sa.stateReason, /active checks passed 1 time \(rise 1\)/, `round ${round}: the stats say why it returned`);
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) bodies.add(await (await request(`http://127.0.0.1:${port}/`)).body.text());
    t.ok(bodies.has('a'), `round ${round}: a takes traffic again`);
  }
  const back = lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('back from ejection: active checks passed'));
  t.equal(back.length, 2, 'each return is logged with its reason');
});

t.test('an ejected server needs rise passing checks in a row: a failed check restarts the count', async (t) => {
  const server = {
    ejected: false,
    ejectedUntil: 0,
    ejections: 0,
    consecutiveFailures: 0,
    noteChange: () => true,
    name: 's',
    retired: false,
  } as never as import('../src/model/server.js').Server;
  const backend = { name: 'b', servers: [server] } as never as import('../src/model/backend.js').Backend;
  const { logger } = captureLogger();
  const detector = new PassiveDetector(backend, passive, { ...health, rise: 3 }, logger);
  t.teardown(() => detector.stop());
  detector.failure(server, 'connect');
  t.ok(server.ejected, 'ejected');
  detector.checked(server, true, 3);
  detector.checked(server, true, 3);
  detector.checked(server, false, 3);
  detector.checked(server, true, 3);
  detector.checked(server, true, 3);
  t.ok(server.ejected, 'a failed check restarts the count');
  detector.checked(server, true, 3);
  t.notOk(server.ejected, 'three passes in a row bring it back');
});

t.test("a worker: the primary's checks bringing the server back UP end the worker's ejection", async (t) => {
  const a = await new Killable('a').start();
  const { logger } = captureLogger();
  // A worker: passive detection only, no active checks (the primary runs those).
  const sy = await startSwitchyard({
    config: config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address], { health, passive })]),
    logger,
    watch: false,
    components: async () => [new HealthChecker({ log: logger, active: false })],
  });
  t.teardown(async () => {
    await sy.stop(200);
    a.kill();
  });
  const runtime = sy.runtime();
  const sa = runtime.backends.get('api')!.servers[0]!;
  runtime.backends.get('api')!.observer!.failure(sa, 'connect');
  t.ok(sa.ejected, 'ejected in the worker');
  applyFlags(runtime, [{ backend: 'api', id: sa.id, admin: 'ready', checkDown: true, consulCritical: false }]);
  applyFlags(runtime, [{ backend: 'api', id: sa.id, admin: 'ready', checkDown: false, consulCritical: false }]);
  t.equal(sa.ejected, false, 'back when the primary says its checks pass again');
  t.equal(sa.state, 'UP');
});

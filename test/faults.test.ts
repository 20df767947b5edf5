// Faults under load: a server killed (reset, listener gone) while requests run, then brought
// back; config reloads while requests run; Consul flapping a server in and out (and going away)
// while requests run; and what may and may not be replayed on another connection (RFC 9110
// §9.2.2: only idempotent requests are retried automatically); and the CLI's uncaughtException
// policy (log, count, keep serving), with the built CLI in a child process.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, request } from 'undici';
import { startSwitchyard } from '../src/switchyard.js';
import { ConsulDiscovery } from '../src/discovery/consul.js';
import { HealthChecker } from '../src/health/checker.js';
import { healthConfig } from './support/backend-config.js';
import { ConsulTestServer } from './support/consul-server.js';
import { backendConfig, config, deadPort, frontendConfig, httpServer, quietLogger, start, tcpServer } from './support/proxy-harness.js';
import { exchange, sleep, until } from './support/hostile.js';

/** A backend we can kill (reset every connection, stop listening) and restart on its port. */
class Killable {
  server: HttpServer | null = null;
  readonly sockets = new Set<Socket>();
  served = 0;
  port = 0;
  constructor(
    readonly name: string,
    readonly delayMs: number,
  ) {}
  async start(): Promise<this> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () =>
        setTimeout(() => {
          this.served++;
          res.end(this.name);
        }, this.delayMs),
      );
    });
    server.keepAliveTimeout = 60000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }
  /** Like kill -9: every connection reset, nothing listening. */
  kill(): void {
    this.server?.close();
    this.server = null;
    for (const s of this.sockets) s.resetAndDestroy();
  }
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }
}

interface LoadResult {
  ok: number;
  failures: string[];
  bodies: Map<string, number>;
}

/** `concurrency` loops of GET requests until `stop()`; every non-200 or error is a failure. */
function load(port: number, concurrency: number) {
  const agent = new Agent({ connections: concurrency, keepAliveTimeout: 10000, pipelining: 1 });
  const result: LoadResult = { ok: 0, failures: [], bodies: new Map() };
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      try {
        const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent });
        const body = await res.body.text();
        if (res.statusCode === 200) {
          result.ok++;
          result.bodies.set(body, (result.bodies.get(body) ?? 0) + 1);
        } else result.failures.push(`${res.statusCode} ${body.trim()}`);
      } catch (error) {
        result.failures.push(`error ${(error as Error).message}`);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    result,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      await agent.close();
      return result;
    },
  };
}

t.test('a server killed under load and restarted: GET requests do not fail (retries); health checks take it out and back', async (t) => {
  const a = await new Killable('a', 2).start();
  const b = await new Killable('b', 2).start();
  // Active HTTP checks every 100 ms (a generous 1 s timeout: a loaded CI machine must not turn a
  // slow answer of the live server into a DOWN): a killed server, refused at once, goes DOWN after 2 failures, comes back UP
  // after 2 successes once it listens again. Requests meanwhile rely on retries alone: the
  // requests a killed server had in hand are re-sent elsewhere only with `empty-response`.
  const retryOn = { connFailure: true, emptyResponse: true, junkResponse: false, responseTimeout: false, statuses: [] };
  const health = healthConfig({ type: 'http', intervalMs: 100, fastIntervalMs: 50, downIntervalMs: 100, timeoutMs: 1000, rise: 2, fall: 2 });
  const sy = await startSwitchyard({
    config: config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address, b.address], { retries: 2, retryOn, health })]),
    logger: quietLogger,
    watch: false,
    components: async () => [new HealthChecker({ log: quietLogger })],
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
  const run = load(port, 16);
  const kills = 3;
  for (let i = 0; i < kills; i++) {
    await sleep(400);
    const inFlight = a.sockets.size;
    a.kill();
    t.ok(await until(() => sa.state === 'DOWN', 10_000), `kill ${i + 1}: a is DOWN (it reset ${inFlight} connections)`);
    await sleep(200);
    await a.start();
    t.ok(await until(() => sa.state === 'UP', 10_000), `kill ${i + 1}: a is UP again once it listens`);
  }
  await sleep(400);
  const r = await run.stop();
  t.comment(`${r.ok} requests ok, ${r.failures.length} failed; served by a: ${r.bodies.get('a') ?? 0}, b: ${r.bodies.get('b') ?? 0}`);
  if (r.failures.length > 0) t.comment(`failures: ${JSON.stringify([...new Set(r.failures)])}`);
  t.equal(r.failures.length, 0, 'zero failed GET requests while a server was killed and restarted 3 times');
  t.ok(r.ok > 200, 'load actually ran');
  t.ok((r.bodies.get('a') ?? 0) > 0 && (r.bodies.get('b') ?? 0) > 0, 'both servers served');
  const backend = sy.runtime().backends.get('api')!;
  t.comment(
    `retries ${backend.counters.wretr}, redispatches ${backend.counters.wredis}, connect errors ${backend.counters.econ}, response errors ${backend.counters.eresp}`,
  );
});

t.test('config reloads under load: zero failed requests', async (t) => {
  const a = await new Killable('a', 1).start();
  const b = await new Killable('b', 1).start();
  const c = await new Killable('c', 1).start();
  const fe = frontendConfig('web', 'http', 'api');
  const configs = [
    config([fe], [backendConfig('api', 'http', [a.address, b.address])]),
    config([{ ...fe, timeouts: { ...fe.timeouts, keepAliveMs: 30000 } }], [backendConfig('api', 'http', [b.address, c.address], { strategy: 'round-robin' })]),
    config([fe], [backendConfig('api', 'http', [c.address], { retries: 1 })]),
    config([{ ...fe, limits: { ...fe.limits, maxHeaders: 50 } }], [backendConfig('api', 'http', [a.address, b.address, c.address])]),
  ];
  const sy = await start(configs[0]!);
  t.teardown(async () => {
    await sy.stop(200);
    a.kill();
    b.kill();
    c.kill();
  });
  const run = load(sy.frontendAddress('web').port, 16);
  let applied = 0;
  for (let i = 1; i <= 12; i++) {
    await sleep(150);
    const r = await sy.apply(configs[i % configs.length]!);
    if (r.ok) applied++;
    else t.comment(`reload ${i} rejected: ${r.errors.join('; ')}`);
  }
  await sleep(200);
  const r = await run.stop();
  t.comment(
    `${applied} reloads applied under load; ${r.ok} requests ok, ${r.failures.length} failed; a ${r.bodies.get('a') ?? 0}, b ${r.bodies.get('b') ?? 0}, c ${r.bodies.get('c') ?? 0}`,
  );
  if (r.failures.length > 0) t.comment(`failures: ${JSON.stringify([...new Set(r.failures)])}`);
  t.equal(applied, 12, 'every reload applied');
  t.equal(r.failures.length, 0, 'zero failed requests');
  t.ok((r.bodies.get('c') ?? 0) > 0, 'the new server list took effect');
});

t.test('Consul flapping under load: a server check flips every 25 ms and Consul restarts; zero failed requests', async (t) => {
  const consul = await ConsulTestServer.start();
  const a = await new Killable('a', 1).start();
  const b = await new Killable('b', 1).start();
  const c = await new Killable('c', 1).start();
  consul.addService({ id: 'api-b', name: 'api', address: '127.0.0.1', port: b.port, status: 'passing' });
  consul.addService({ id: 'api-c', name: 'api', address: '127.0.0.1', port: c.port, status: 'passing' });
  const cfg = config(
    [frontendConfig('web', 'http', 'api')],
    [
      backendConfig('api', 'http', [a.address], {
        discovery: { consul: { service: 'api', tag: null, passing: true, dc: null } },
      }),
    ],
    { consul: { address: consul.address, token: null, register: null, waitMs: 2000 } },
  );
  // No rate limit on the watch: every flip Consul reports becomes a server-list change.
  const sy = await startSwitchyard({
    config: cfg,
    logger: quietLogger,
    watch: false,
    components: async () => [new ConsulDiscovery(cfg.consul, quietLogger, { backoffBaseMs: 20, backoffCapMs: 100, rateLimitMs: 0 })],
  });
  t.teardown(async () => {
    await sy.stop(200);
    a.kill();
    b.kill();
    c.kill();
    await consul.close();
  });
  const backend = () => sy.runtime().backends.get('api')!;
  const live = () =>
    backend()
      .servers.filter((s) => !s.retired)
      .map((s) => s.port)
      .sort();
  t.ok(await until(() => live().length === 3, 10_000), 'a (static), b and c (Consul) in the list');
  const run = load(sy.frontendAddress('web').port, 16);
  let flips = 0;
  const flipUntil = Date.now() + 2500;
  let outage = false;
  while (Date.now() < flipUntil) {
    consul.setStatus('api-c', flips % 2 === 0 ? 'critical' : 'passing');
    flips++;
    if (!outage && Date.now() > flipUntil - 1500) {
      // Consul goes away for 300 ms mid-flapping: the last list is kept meanwhile.
      outage = true;
      await consul.stop();
      await sleep(300);
      await consul.restart();
    }
    await sleep(25);
  }
  consul.setStatus('api-c', 'critical');
  // Waited for by Consul's index, not by c's absence alone: an answer from mid-flapping can drop
  // c for a moment and the next one (its last flip to passing) bring it back.
  const finalIndex = BigInt(consul.indexOf('api'));
  const watchCaughtUp = () => BigInt(backend().discovery?.index ?? '0') >= finalIndex;
  t.ok(await until(() => watchCaughtUp() && !live().includes(c.port), 10_000), 'c leaves the list once it stays critical');
  // Requests already on c finish there (a list change drops nothing in flight): polled until the
  // balancer has none open on c, rather than a fixed 100 ms a loaded machine can overrun.
  const cOpen = () =>
    backend()
      .servers.filter((s) => s.port === c.port)
      .reduce((n, s) => n + s.active, 0);
  t.ok(await until(() => cOpen() === 0, 10_000), 'the requests open on c finished');
  const servedByC = c.served;
  await sleep(300);
  const r = await run.stop();
  t.comment(
    `${flips} flips and one Consul restart under load; ${r.ok} requests ok, ${r.failures.length} failed; a ${r.bodies.get('a') ?? 0}, b ${r.bodies.get('b') ?? 0}, c ${r.bodies.get('c') ?? 0}`,
  );
  if (r.failures.length > 0) t.comment(`failures: ${JSON.stringify([...new Set(r.failures)])}`);
  t.equal(r.failures.length, 0, 'zero failed requests while c flapped in and out of the list');
  t.ok(r.ok > 200, 'load actually ran');
  t.ok((r.bodies.get('c') ?? 0) > 0, 'c served while it was in the list');
  t.equal(c.served, servedByC, 'c got no new request after it left the list for good');
  t.same(live(), [a.port, b.port].sort(), 'the list ends as Consul says: a and b');
  t.ok(backend().servers.length <= 3, `no server objects pile up from the flapping (${backend().servers.length})`);
});

t.test('a request the server received and then dropped: GET is retried (counted in retries), POST is not replayed', async (t) => {
  // The server answers the first request on each connection, then reads the next one and
  // closes without answering (it crashed while handling it, or closed an idle keep-alive
  // connection just as the request arrived: the proxy cannot tell which).
  const got: string[] = [];
  const srv = await tcpServer((s) => {
    let buf = '';
    let n = 0;
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i;
      while ((i = buf.indexOf('\r\n\r\n')) !== -1) {
        const line = buf.slice(0, buf.indexOf('\r\n'));
        buf = buf.slice(i + 4);
        got.push(line);
        if (n++ === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        else {
          s.destroy();
          return;
        }
      }
    });
  });
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address], { retries: 1 })]));
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  // Warm one pooled connection, then send the request that gets dropped over it.
  let received = 0;
  for (const [method, expect] of [
    ['GET', 2],
    ['POST', 1],
    ['DELETE', 2],
    ['PATCH', 1],
  ] as const) {
    received += got.length;
    got.length = 0;
    t.match((await exchange(port, 'GET /warm HTTP/1.1\r\nHost: x\r\n\r\n', { end: true })).data, /^HTTP\/1\.1 200 /, 'warm-up');
    const ex = await exchange(port, `${method} /op HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`, { end: true });
    const sent = got.filter((l) => l.startsWith(`${method} /op`)).length;
    t.equal(
      sent,
      expect,
      `${method}: the server received it ${sent} time(s) (${expect === 2 ? 'idempotent: retried on a fresh connection' : 'not idempotent: never replayed'})`,
    );
    if (expect === 1) t.match(ex.data, /^HTTP\/1\.1 502 /, `${method}: 502 instead of a replay`);
    else t.match(ex.data, /^HTTP\/1\.1 200 /, `${method}: answered by the retry`);
  }
  received += got.length;
  // 8 client requests (4 warm-ups, 4 operations); every extra one the server got was a re-send.
  t.equal(sy.runtime().backends.get('api')!.counters.wretr, received - 8, `each re-send after the keep-alive race counts as a retry (${received - 8})`);
  // The re-send counts against `retries`: with none left, even a GET gets the 502.
  const sy0 = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address], { retries: 0 })]));
  t.teardown(() => sy0.stop(200));
  const port0 = sy0.frontendAddress('web').port;
  got.length = 0;
  t.match((await exchange(port0, 'GET /warm HTTP/1.1\r\nHost: x\r\n\r\n', { end: true })).data, /^HTTP\/1\.1 200 /, 'warm-up');
  const ex0 = await exchange(port0, 'GET /op HTTP/1.1\r\nHost: x\r\n\r\n', { end: true });
  t.match(ex0.data, /^HTTP\/1\.1 502 /, 'retries: 0: the keep-alive race is not re-sent');
  t.equal(got.filter((l) => l.startsWith('GET /op')).length, 1, 'sent once');
});

t.test('a server that dies with a request on a fresh connection: re-sent elsewhere only with retry_on empty-response', async (t) => {
  // `dropper` reads each request and resets the connection without a byte of answer (the
  // process crashed while handling it); `good` answers. Each method gets its own proxy so
  // that round-robin sends its first request to `dropper`, over a fresh connection (nothing
  // pooled yet).
  const got: string[] = [];
  const dropper = await tcpServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        got.push(buf.slice(0, buf.indexOf('\r\n')));
        s.resetAndDestroy();
      }
    });
    s.on('error', () => {});
  });
  const good = await tcpServer((s) => {
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood'));
    s.on('error', () => {});
  });
  t.teardown(async () => {
    await dropper.close();
    await good.close();
  });
  // Default `retry_on: [conn-failure]`: the request left, so nothing is sent again, whatever
  // the method. `empty-response` opts in (HAProxy's keyword): any method, body included.
  const emptyResponse = { connFailure: true, emptyResponse: true, junkResponse: false, responseTimeout: false, statuses: [] };
  for (const optIn of [false, true]) {
    for (const method of ['GET', 'HEAD', 'PUT', 'POST', 'PATCH']) {
      got.length = 0;
      const sy = await start(
        config(
          [frontendConfig('web', 'http', 'api')],
          [backendConfig('api', 'http', [dropper.address, good.address], { retries: 2, ...(optIn ? { retryOn: emptyResponse } : {}) })],
        ),
      );
      const ex = await exchange(sy.frontendAddress('web').port, `${method} /op HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi`, { end: true });
      const wretr = sy.runtime().backends.get('api')!.counters.wretr;
      await sy.stop(200);
      t.equal(got.length, 1, `${method}: the dying server received it once`);
      if (optIn) {
        t.match(ex.data, /^HTTP\/1\.1 200 /, `${method} with empty-response: answered by the other server`);
        t.equal(wretr, 1, `${method}: one retry counted`);
      } else t.match(ex.data, /^HTTP\/1\.1 502 /, `${method} by default: 502, never sent a second time`);
    }
  }
});

t.test('uncaughtException policy: the CLI logs and counts each one, keeps serving, and still stops cleanly', async (t) => {
  // A user strategy with a bug that surfaces outside any call the balancer guards: every third
  // pick schedules a throw on the next turn of the event loop. Without a policy the first one
  // would end the process, and every connection with it.
  const a = await httpServer('a');
  const dir = mkdtempSync(join(tmpdir(), 'sy-uncaught-'));
  writeFileSync(
    join(dir, 'strategy.js'),
    `
let picks = 0;
export default function createStrategy() {
  let servers = [];
  return {
    update(eligible) { servers = eligible; },
    pick() {
      picks++;
      if (picks % 3 === 0) { const n = picks / 3; setImmediate(() => { throw new Error('strategy timer bug #' + n); }); }
      return servers[0] ?? null;
    },
  };
}
`,
  );
  const httpPort = await deadPort();
  const statsPort = await deadPort();
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:${statsPort} }
logging: { level: info }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api: { mode: http, strategy: ./strategy.js, health: { type: none }, servers: [ { address: ${a.address} } ] }
`,
  );
  // The built CLI, as users run it (`npm test` builds dist/ first, like test/workers.test.ts).
  const bin = new URL('../bin/switchyard.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWITCHYARD_LOG_LEVEL: 'info' } });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await a.close();
  });
  t.ok(await until(() => lines.some((l) => String(l.msg).includes('running')), 20000), `the CLI started ${stderr}`);

  const statuses: number[] = [];
  for (let i = 0; i < 9; i++) {
    const ex = await exchange(httpPort, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { end: true });
    statuses.push(Number(/^HTTP\/1\.1 (\d{3})/.exec(ex.data)?.[1] ?? 0));
    await sleep(10);
  }
  t.same(statuses, Array(9).fill(200), 'every request answered 200 while the exceptions were thrown');
  const policy = () => lines.filter((l) => l.msg === 'uncaught exception (process kept running)');
  t.ok(await until(() => policy().length === 3, 10_000), `three uncaught exceptions logged (${policy().length})`);
  t.same(
    policy().map((l) => l.uncaught),
    [1, 2, 3],
    'each log line carries the running count',
  );
  t.same(
    policy().map((l) => (l.err as { message?: string } | undefined)?.message),
    ['strategy timer bug #1', 'strategy timer bug #2', 'strategy timer bug #3'],
    'and the error itself',
  );
  t.equal(policy()[0]?.level, 50, 'at error level');
  const metrics = await (await fetch(`http://127.0.0.1:${statsPort}/metrics`)).text();
  t.match(metrics, /^switchyard_uncaught_exceptions_total 3$/m, 'and counted in /metrics');
  t.equal(child.exitCode, null, 'the process is still running');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM still stops it cleanly (exit 0)');
});

// Faults under load: a server killed (reset, listener gone) while requests run, then brought
// back; config reloads while requests run; and what may and may not be replayed on another
// connection (RFC 9110 §9.2.2: only idempotent requests are retried automatically).
import t from 'tap';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, request } from 'undici';
import { backendConfig, config, frontendConfig, start, tcpServer } from './support/proxy-harness.js';
import { exchange, sleep } from './support/hostile.js';

/** A backend we can kill (reset every connection, stop listening) and restart on its port. */
class Killable {
  server: HttpServer | null = null;
  readonly sockets = new Set<Socket>();
  served = 0;
  port = 0;
  constructor(readonly name: string, readonly delayMs: number) {}
  async start(): Promise<this> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => { this.served++; res.end(this.name); }, this.delayMs));
    });
    server.keepAliveTimeout = 60000;
    server.on('connection', (s: Socket) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
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
  get address(): string { return `127.0.0.1:${this.port}`; }
}

interface LoadResult { ok: number; failures: string[]; bodies: Map<string, number> }

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
    stop: async () => { stopped = true; await Promise.all(workers); await agent.close(); return result; },
  };
}

t.test('a server killed under load and restarted: GET requests do not fail (retries)', async (t) => {
  const a = await new Killable('a', 2).start();
  const b = await new Killable('b', 2).start();
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address, b.address], { retries: 2 })]));
  t.teardown(async () => { await sy.stop(200); a.kill(); b.kill(); });
  const port = sy.frontendAddress('web').port;
  const run = load(port, 16);
  const kills = 3;
  for (let i = 0; i < kills; i++) {
    await sleep(500);
    const inFlight = a.sockets.size;
    a.kill();
    t.comment(`kill ${i + 1}: server a reset ${inFlight} connections`);
    await sleep(500);
    await a.start();
    // With no health check in this in-process harness, do what a passing check does: a
    // server marked DOWN by its refused connections is UP again once it listens.
    const sa = sy.runtime().backends.get('api')!.servers.find((s) => s.address === a.address)!;
    if (sa.connectFailed) { sa.connectFailed = false; sa.noteChange('test: listening again'); }
  }
  await sleep(500);
  const r = await run.stop();
  t.comment(`${r.ok} requests ok, ${r.failures.length} failed; served by a: ${r.bodies.get('a') ?? 0}, b: ${r.bodies.get('b') ?? 0}`);
  if (r.failures.length > 0) t.comment(`failures: ${JSON.stringify([...new Set(r.failures)])}`);
  t.equal(r.failures.length, 0, 'zero failed GET requests while a server was killed and restarted 3 times');
  t.ok(r.ok > 200, 'load actually ran');
  t.ok((r.bodies.get('a') ?? 0) > 0 && (r.bodies.get('b') ?? 0) > 0, 'both servers served');
  const backend = sy.runtime().backends.get('api')!;
  t.comment(`retries ${backend.counters.wretr}, redispatches ${backend.counters.wredis}, connect errors ${backend.counters.econ}, response errors ${backend.counters.eresp}`);
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
  t.teardown(async () => { await sy.stop(200); a.kill(); b.kill(); c.kill(); });
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
  t.comment(`${applied} reloads applied under load; ${r.ok} requests ok, ${r.failures.length} failed; a ${r.bodies.get('a') ?? 0}, b ${r.bodies.get('b') ?? 0}, c ${r.bodies.get('c') ?? 0}`);
  if (r.failures.length > 0) t.comment(`failures: ${JSON.stringify([...new Set(r.failures)])}`);
  t.equal(applied, 12, 'every reload applied');
  t.equal(r.failures.length, 0, 'zero failed requests');
  t.ok((r.bodies.get('c') ?? 0) > 0, 'the new server list took effect');
});

t.test('a request the server received and then dropped: GET is retried, POST is not replayed', async (t) => {
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
        else { s.destroy(); return; }
      }
    });
  });
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address], { retries: 0 })]));
  t.teardown(async () => { await sy.stop(200); await srv.close(); });
  const port = sy.frontendAddress('web').port;
  // Warm one pooled connection, then send the request that gets dropped over it.
  for (const [method, expect] of [['GET', 2], ['POST', 1], ['DELETE', 2], ['PATCH', 1]] as const) {
    got.length = 0;
    t.match((await exchange(port, 'GET /warm HTTP/1.1\r\nHost: x\r\n\r\n', { end: true })).data, /^HTTP\/1\.1 200 /, 'warm-up');
    const ex = await exchange(port, `${method} /op HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`, { end: true });
    const sent = got.filter((l) => l.startsWith(`${method} /op`)).length;
    t.equal(sent, expect, `${method}: the server received it ${sent} time(s) (${expect === 2 ? 'idempotent: retried on a fresh connection' : 'not idempotent: never replayed'})`);
    if (expect === 1) t.match(ex.data, /^HTTP\/1\.1 502 /, `${method}: 502 instead of a replay`);
    else t.match(ex.data, /^HTTP\/1\.1 200 /, `${method}: answered by the retry`);
  }
});

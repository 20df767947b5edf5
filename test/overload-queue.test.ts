// The queue (max_queue, timeouts.queue) and the circuit breaker (circuit_breaker.*), with real
// traffic through the proxy: servers that hold their answers until the test lets them go, so
// "full" is a state the test controls rather than a race it hopes to win.
import t, { type Test } from 'tap';
import { connect, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { backendConfig, config, deadPort, frontendConfig, httpServer, start, tcpServer } from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';
import { startStats } from '../src/stats/listener.js';
import { quietLogger } from './support/proxy-harness.js';
import type { BackendConfig } from '../src/config/types.js';
import type { Switchyard } from '../src/switchyard.js';

/** An HTTP server that answers only when told: `held` are the requests it has not answered. */
async function holdingServer(name: string) {
  const held: { url: string; res: ServerResponse }[] = [];
  const order: string[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  const srv = await httpServer(name, (req: IncomingMessage, res: ServerResponse) => {
    order.push(req.url!);
    concurrent++;
    if (concurrent > maxConcurrent) maxConcurrent = concurrent;
    res.on('close', () => {
      concurrent--;
    });
    held.push({ url: req.url!, res });
  });
  return {
    srv,
    held,
    order,
    get maxConcurrent() {
      return maxConcurrent;
    },
    /** Answer the oldest held request. */
    releaseOne(): void {
      const h = held.shift();
      if (h) h.res.end(`${name}${h.url}`);
    },
    releaseAll(): void {
      while (held.length > 0) this.releaseOne();
    },
  };
}

type Holding = Awaited<ReturnType<typeof holdingServer>>;

async function proxy(t: Test, servers: Holding[], over: Partial<BackendConfig>, maxconn = 1): Promise<{ sy: Switchyard; port: number }> {
  const be = backendConfig(
    'api',
    'http',
    servers.map((s) => s.srv.address),
    over,
  );
  const withMaxconn = { ...be, servers: be.servers.map((s) => ({ ...s, maxconn })) };
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [withMaxconn]));
  t.teardown(async () => {
    for (const s of servers) s.releaseAll();
    await sy.stop(200);
    for (const s of servers) await s.srv.close();
  });
  return { sy, port: sy.frontendAddress('web').port };
}

/** One request on its own connection (no keep-alive sharing), resolved with status, header and body. */
function get(port: number, path: string, headers: Record<string, string> = {}) {
  return request(`http://127.0.0.1:${port}${path}`, { headers: { connection: 'close', ...headers }, reset: true }).then(async (res) => ({
    status: res.statusCode,
    limit: res.headers['x-switchyard-limit'],
    body: await res.body.text(),
  }));
}

t.test('requests wait in order for a slot and are dispatched as slots free; qcur/qmax/qtime counted', async (t) => {
  const a = await holdingServer('a');
  const { sy, port } = await proxy(t, [a], { maxQueue: 10, queueTimeoutMs: 30_000 });
  const be = sy.runtime().backends.get('api')!;
  const answers: Promise<{ status: number; body: string }>[] = [];
  answers.push(get(port, '/0'));
  await waitFor('the first request at the server', () => (a.held.length === 1 ? true : undefined));
  for (let i = 1; i <= 4; i++) {
    answers.push(get(port, `/${i}`));
    await waitFor(`request ${i} queued`, () => (be.counters.qcur === i ? true : undefined));
  }
  t.equal(be.counters.qmax, 4, 'qmax');
  t.equal(a.held.length, 1, 'the server never gets more than its maxconn');
  for (let i = 0; i < 5; i++) {
    a.releaseOne();
    if (i < 4) await waitFor(`request ${i + 1} dispatched`, () => (a.held.length === 1 && be.counters.qcur === 3 - i ? true : undefined));
  }
  const results = await Promise.all(answers);
  t.same(
    results.map((r) => r.status),
    [200, 200, 200, 200, 200],
  );
  t.same(a.order, ['/0', '/1', '/2', '/3', '/4'], 'first in, first out');
  t.equal(a.maxConcurrent, 1, 'maxconn held throughout');
  t.equal(be.counters.qcur, 0);
  t.equal(be.counters.queueCount, 4, 'four waited');
  t.ok(be.counters.qtimeMax > 0, 'qtime_max measured');

  // The CSV carries them (qcur, qmax, qtime, qtime_max), and /metrics the queue gauges and histogram.
  const stats = await startStats(sy, sy.runtime().config.stats, quietLogger);
  t.teardown(() => stats.stop());
  const base = `http://127.0.0.1:${stats.address().port}`;
  const csv = await (await request(`${base}/stats;csv`)).body.text();
  const header = csv.split('\n')[0]!.slice(2).split(',');
  const row = csv
    .split('\n')
    .find((l) => l.startsWith('api,BACKEND,'))!
    .split(',');
  const cellOf = (name: string) => row[header.indexOf(name)];
  t.equal(cellOf('qcur'), '0');
  t.equal(cellOf('qmax'), '4');
  t.ok(Number(cellOf('qtime_max')) >= Number(cellOf('qtime')), 'qtime and qtime_max');
  const metrics = await (await request(`${base}/metrics`)).body.text();
  t.match(metrics, /switchyard_backend_max_queue\{backend="api"\} 4/);
  t.match(metrics, /switchyard_backend_queue_wait_seconds_count\{backend="api"\} 4/);
  t.match(metrics, /switchyard_backend_queue_limit\{backend="api"\} 10/);
});

t.test('past timeouts.queue a waiting request gets 503 naming the limit', async (t) => {
  const a = await holdingServer('a');
  const { sy, port } = await proxy(t, [a], { maxQueue: 10, queueTimeoutMs: 300 });
  const first = get(port, '/held');
  await waitFor('first at the server', () => (a.held.length === 1 ? true : undefined));
  const r = await get(port, '/late');
  t.equal(r.status, 503);
  t.equal(r.limit, 'timeout_queue');
  t.match(r.body, /limit timeout_queue reached \(backend api\)/);
  const be = sy.runtime().backends.get('api')!;
  t.equal(be.counters.overQueueTimeout, 1, 'counted');
  t.equal(be.counters.qcur, 0);
  t.same(a.order, ['/held'], 'the late request never reached the server');
  a.releaseOne();
  t.equal((await first).status, 200);
});

t.test('a full queue answers 503 at once (max_queue); circuit_breaker.max_pending, when smaller, names itself', async (t) => {
  const a = await holdingServer('a');
  const { sy, port } = await proxy(t, [a], {
    maxQueue: 5,
    queueTimeoutMs: 30_000,
    circuitBreaker: { maxConnections: 0, maxPending: 1, maxRequests: 0, maxRetries: -1, retryBudget: null },
  });
  const be = sy.runtime().backends.get('api')!;
  const first = get(port, '/1');
  await waitFor('first at the server', () => (a.held.length === 1 ? true : undefined));
  const second = get(port, '/2');
  await waitFor('second queued', () => (be.counters.qcur === 1 ? true : undefined));
  const third = await get(port, '/3');
  t.equal(third.status, 503);
  t.equal(third.limit, 'max_pending');
  t.equal(be.counters.overQueue, 1);
  a.releaseAll();
  await waitFor('second at the server', () => (a.held.length === 1 ? true : undefined));
  a.releaseAll();
  t.same([(await first).status, (await second).status], [200, 200]);
});

t.test('a slot freed by a client that closed its connection (reset) dispatches the next waiter', async (t) => {
  const a = await holdingServer('a');
  const { sy, port } = await proxy(t, [a], { maxQueue: 10, queueTimeoutMs: 30_000 });
  const be = sy.runtime().backends.get('api')!;
  const quitter: Socket = connect(port, '127.0.0.1');
  quitter.on('error', () => {});
  quitter.write('GET /quitter HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('quitter at the server', () => (a.held.length === 1 ? true : undefined));
  const next = get(port, '/next');
  await waitFor('next queued', () => (be.counters.qcur === 1 ? true : undefined));
  // A waiter that gives up leaves the queue too.
  const gaveUp: Socket = connect(port, '127.0.0.1');
  gaveUp.on('error', () => {});
  gaveUp.write('GET /gave-up HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('second waiter queued', () => (be.counters.qcur === 2 ? true : undefined));
  gaveUp.resetAndDestroy();
  await waitFor('the one that gave up left the queue', () => (be.counters.qcur === 1 ? true : undefined));
  quitter.resetAndDestroy();
  await waitFor('next dispatched to the freed slot', () => (a.order.includes('/next') ? true : undefined));
  a.releaseAll();
  t.equal((await next).status, 200);
  t.notOk(a.order.includes('/gave-up'), 'a waiter that left is never sent');
  t.equal(be.counters.qcur, 0);
});

t.test('the queue serves any server the strategy may use; servers never exceed maxconn under a burst', async (t) => {
  const a = await holdingServer('a');
  const b = await holdingServer('b');
  const { sy, port } = await proxy(t, [a, b], { maxQueue: 100, queueTimeoutMs: 30_000 }, 2);
  const be = sy.runtime().backends.get('api')!;
  const all = Array.from({ length: 20 }, (_, i) => get(port, `/${i}`));
  await waitFor('4 at servers, 16 queued', () => (a.held.length + b.held.length === 4 && be.counters.qcur === 16 ? true : undefined));
  // Answer whatever is held, repeatedly, until all 20 are done.
  const timer = setInterval(() => {
    a.releaseOne();
    b.releaseOne();
  }, 5);
  t.teardown(() => clearInterval(timer));
  const results = await Promise.all(all);
  clearInterval(timer);
  t.ok(
    results.every((r) => r.status === 200),
    'all 200',
  );
  t.ok(a.maxConcurrent <= 2 && b.maxConcurrent <= 2, `maxconn 2 each (saw ${a.maxConcurrent}, ${b.maxConcurrent})`);
  t.ok(a.order.length > 0 && b.order.length > 0, 'both servers served');
});

t.test('a sticky request waits for its own server, then is redispatched when that server goes to MAINT', async (t) => {
  const a = await holdingServer('a');
  const b = await holdingServer('b');
  const { sy, port } = await proxy(t, [a, b], { maxQueue: 10, queueTimeoutMs: 30_000, sticky: { type: 'cookie', name: 'SY' } });
  const be = sy.runtime().backends.get('api')!;
  const s1 = be.servers[0]!;
  const cookie = { cookie: `SY=${s1.stickyId}` };
  const first = get(port, '/first', cookie);
  await waitFor('first at a', () => (a.held.length === 1 ? true : undefined));
  const second = get(port, '/second', cookie);
  await waitFor("second waits in a's own queue", () => (s1.counters.qcur === 1 ? true : undefined));
  t.equal(b.held.length, 0, 'not sent to the free server b');
  t.equal(be.counters.qcur, 0, 'not in the backend queue');
  s1.admin = 'maint';
  s1.noteChange('test');
  await waitFor('second redispatched to b', () => (b.order.includes('/second') ? true : undefined));
  a.releaseAll();
  b.releaseAll();
  t.equal((await first).status, 200);
  const r = await second;
  t.equal(r.status, 200);
  t.equal(r.body, 'b/second');
});

t.test('circuit_breaker.max_requests answers 503 at once, with the limit in a header, counted', async (t) => {
  const a = await holdingServer('a');
  const { sy, port } = await proxy(
    t,
    [a],
    { maxQueue: 10, queueTimeoutMs: 30_000, circuitBreaker: { maxConnections: 0, maxPending: 0, maxRequests: 2, maxRetries: -1, retryBudget: null } },
    0,
  );
  const be = sy.runtime().backends.get('api')!;
  const held = [get(port, '/1'), get(port, '/2')];
  await waitFor('two at the server', () => (a.held.length === 2 ? true : undefined));
  const r = await get(port, '/3');
  t.equal(r.status, 503);
  t.equal(r.limit, 'max_requests');
  t.equal(be.counters.overMaxRequests, 1);
  t.equal(be.counters.qcur, 0, 'max_requests does not queue (Envoy)');
  a.releaseAll();
  t.same(
    (await Promise.all(held)).map((x) => x.status),
    [200, 200],
  );
});

t.test('circuit_breaker.max_connections: busy connections count, a full backend waits in the queue or gets 503', async (t) => {
  const a = await holdingServer('a');
  const { sy, port } = await proxy(t, [a], { circuitBreaker: { maxConnections: 1, maxPending: 0, maxRequests: 0, maxRetries: -1, retryBudget: null } }, 0);
  const be = sy.runtime().backends.get('api')!;
  const first = get(port, '/1');
  await waitFor('first at the server', () => (a.held.length === 1 ? true : undefined));
  const r = await get(port, '/2');
  t.equal(r.status, 503);
  t.equal(r.limit, 'max_connections');
  t.equal(be.counters.overMaxConnections, 1);
  a.releaseAll();
  t.equal((await first).status, 200);
  // The idle pooled connection gives way: the next request gets through.
  const again = get(port, '/3');
  await waitFor('third at the server', () => (a.held.length === 1 ? true : undefined));
  a.releaseAll();
  t.equal((await again).status, 200);
  t.ok(be.overload.connections <= 1, 'never more than one connection open');
});

t.test('circuit_breaker.max_retries and retry_budget: a retry beyond them gets 503 naming the limit', async (t) => {
  const dead = await deadPort();
  const slow = await holdingServer('slow');
  // A health block (not run here: no checker) keeps the refusing server UP, so round-robin
  // keeps sending to it and each request needs a retry.
  const base = backendConfig('api', 'http', [`127.0.0.1:${dead}`, slow.srv.address], {
    health: { ...backendConfig('x', 'http', []).health, type: 'tcp' },
    circuitBreaker: { maxConnections: 0, maxPending: 0, maxRequests: 0, maxRetries: -1, retryBudget: { percent: 0, minRetryConcurrency: 1 } },
  });
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [base]));
  t.teardown(async () => {
    slow.releaseAll();
    await sy.stop(200);
    await slow.srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const be = sy.runtime().backends.get('api')!;
  // Round-robin: /1 goes to the refusing server and is retried on `slow`, which holds it: one
  // retry open. /2 goes to the refusing server too: its retry finds the budget (at least 1,
  // 0 % of the rest) used up.
  const one = get(port, '/1');
  await waitFor('/1 retried onto slow', () => (slow.order.includes('/1') ? true : undefined));
  t.equal(be.overload.retries, 1, 'one open retry');
  const two = await get(port, '/2');
  t.equal(two.status, 503);
  t.equal(two.limit, 'retry_budget');
  t.equal(be.counters.overRetryBudget, 1);
  slow.releaseAll();
  t.equal((await one).status, 200);
  await waitFor('the open retry closed', () => (be.overload.retries === 0 ? true : undefined));

  // max_retries: 0 refuses every retry.
  await sy.apply(
    config(
      [frontendConfig('web', 'http', 'api')],
      [{ ...base, circuitBreaker: { maxConnections: 0, maxPending: 0, maxRequests: 0, maxRetries: 0, retryBudget: null } }],
    ),
  );
  const statuses: number[] = [];
  for (let i = 0; i < 2; i++) {
    const r = get(port, `/m${i}`);
    await waitFor('answered or held', () => (slow.held.length > 0 ? true : undefined), 300).catch(() => {});
    slow.releaseAll();
    const x = await r;
    statuses.push(x.status);
    if (x.status === 503) t.equal(x.limit, 'max_retries');
  }
  t.ok(statuses.includes(503), 'the request sent to the refusing server was not retried');
  t.equal(be.counters.overMaxRetries, 1);
});

t.test('TCP connections wait in the queue with the client paused, and time out with a close', async (t) => {
  const sockets: Socket[] = [];
  const echo = await tcpServer((s) => {
    sockets.push(s);
    s.pipe(s);
  });
  const be = backendConfig('db', 'tcp', [echo.address], { maxQueue: 4, queueTimeoutMs: 30_000 });
  const sy = await start(config([frontendConfig('pg', 'tcp', 'db')], [{ ...be, servers: be.servers.map((s) => ({ ...s, maxconn: 1 })) }]));
  t.teardown(async () => {
    await sy.stop(200);
    await echo.close();
  });
  const port = sy.frontendAddress('pg').port;
  const backend = sy.runtime().backends.get('db')!;
  const first = connect(port, '127.0.0.1');
  first.write('one');
  await waitFor('first at the server', () => (echo.received.length === 1 ? true : undefined));
  const second = connect(port, '127.0.0.1');
  let got = '';
  second.on('data', (d) => {
    got += d.toString();
  });
  second.write('two');
  await waitFor('second queued', () => (backend.counters.qcur === 1 ? true : undefined));
  t.equal(sockets.length, 1, 'the server sees one connection');
  first.destroy();
  await waitFor('second echoed once the first closed', () => (got === 'two' ? true : undefined));
  t.equal(backend.counters.qcur, 0);
  second.destroy();

  // Timeout: a short queue timeout closes the waiting client.
  await sy.apply(config([frontendConfig('pg', 'tcp', 'db')], [{ ...be, queueTimeoutMs: 200, servers: be.servers.map((s) => ({ ...s, maxconn: 1 })) }]));
  const holder = connect(port, '127.0.0.1');
  holder.write('x');
  await waitFor('holder at the server', () => (sockets.length === 3 ? true : undefined));
  const late = connect(port, '127.0.0.1');
  late.on('error', () => {});
  late.write('late');
  await new Promise<void>((resolve) => late.on('close', () => resolve()));
  t.equal(backend.counters.overQueueTimeout, 1, 'timed out in the queue');
  t.equal(sockets.length, 3, 'the late one never reached the server');
  holder.destroy();
});

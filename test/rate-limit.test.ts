// Frontend rate limits per client address (rate_limit): a token bucket per address for the
// request rate (429 + Retry-After in HTTP, refusal at accept in TCP) and a count of concurrent
// connections. Clients come from several loopback addresses (127.0.0.x: the client socket
// binds its localAddress), so each has its own bucket.
import t, { type Test } from 'tap';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { backendConfig, config, frontendConfig, httpServer, start, tcpServer, quietLogger } from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';
import { startStats } from '../src/stats/listener.js';
import type { RateLimitConfig } from '../src/config/types.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  closed: boolean;
}

/** Parse the HTTP/1.1 responses in `raw` (content-length framed, as ours and node:http's are). */
function parse(raw: string): Answer[] {
  const out: Answer[] = [];
  let rest = raw;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    const lines = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const len = Number(headers['content-length'] ?? 0);
    out.push({ status: Number(lines[0]!.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + len), closed: false });
    rest = rest.slice(end + 4 + len);
  }
  return out;
}

/** Open a connection from `from` (127.0.0.x), send `requests` pipelined, collect until close or `expect` answers. */
function exchange(port: number, from: string, requests: string[], expect = requests.length): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from });
    let raw = '';
    const done = (closed: boolean) => {
      const answers = parse(raw);
      if (answers.length > 0) answers[answers.length - 1]!.closed = closed;
      resolve(answers);
    };
    s.on('data', (d) => {
      raw += d.toString('latin1');
      if (parse(raw).length >= expect) {
        s.destroy();
        done(false);
      }
    });
    s.on('close', () => done(true));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? done(true) : reject(e)));
    s.write(requests.join(''));
  });
}

const GET = (path: string, close = false) => `GET ${path} HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
const one = async (port: number, from: string) => (await exchange(port, from, [GET('/', true)]))[0]!;

function limit(r: Partial<RateLimitConfig>): RateLimitConfig {
  return { requestsPerSecond: 0, burst: 1, connections: 0, tableSize: 1000, ...r };
}

async function proxy(t: Test, rateLimit: RateLimitConfig) {
  const app = await httpServer('app');
  const sy = await start(config([frontendConfig('web', 'http', 'api', { rateLimit })], [backendConfig('api', 'http', [app.address])]));
  t.teardown(async () => {
    await sy.stop(200);
    await app.close();
  });
  return { sy, app, port: sy.frontendAddress('web').port };
}

t.test('requests per second with a burst, per client address: 429 with Retry-After, never forwarded', async (t) => {
  // 0.1/s: a token takes 10 s to come back, so a slow CI machine cannot refill the bucket
  // between the burst and the fourth request.
  const { sy, app, port } = await proxy(t, limit({ requestsPerSecond: 0.1, burst: 3 }));
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await one(port, '127.0.0.2')).status);
  t.same(statuses, [200, 200, 200], 'the burst goes through');
  const refused = await one(port, '127.0.0.2');
  t.equal(refused.status, 429);
  const retryAfter = Number(refused.headers['retry-after']);
  t.ok(retryAfter >= 1 && retryAfter <= 10, `Retry-After: whole seconds until the next token (${retryAfter})`);
  t.equal(refused.headers['x-switchyard-limit'], 'rate_limit.requests_per_second');
  t.equal(app.seen.length, 3, 'the refused request never reached the server');
  t.equal((await one(port, '127.0.0.3')).status, 200, 'another address has its own bucket');
  const fe = sy.runtime().frontends.get('web')!;
  t.equal(fe.counters.rateLimited, 1);
  t.equal(fe.counters.hrsp4xx, 1);
  // The bucket refills at 0.1/s.
  await waitFor('a token back for 127.0.0.2', async () => ((await one(port, '127.0.0.2')).status === 200 ? true : undefined), 40_000);

  // Counted in the stats: dreq in the CSV, the frontend counter in /metrics.
  const stats = await startStats(sy, sy.runtime().config.stats, quietLogger);
  t.teardown(() => stats.stop());
  const base = `http://127.0.0.1:${stats.address().port}`;
  const metrics = await (await request(`${base}/metrics`)).body.text();
  t.match(metrics, /switchyard_frontend_rate_limited_total\{frontend="web"\} [1-9]/);
  const json = (await (await request(`${base}/api/stats`)).body.json()) as { frontends: { name: string; overload: { rateLimited: number } }[] };
  t.ok(json.frontends[0]!.overload.rateLimited >= 1, '/api/stats: rateLimited');
});

t.test('a refused pipelined request keeps the connection; the next one waits its turn', async (t) => {
  const { port, app } = await proxy(t, limit({ requestsPerSecond: 0.5, burst: 1 }));
  const answers = await exchange(port, '127.0.0.4', [GET('/a'), GET('/b')]);
  t.same(
    answers.map((a) => a.status),
    [200, 429],
  );
  t.equal(answers[1]!.headers['retry-after'], '2', 'at 0.5/s the next token is 2 s away');
  t.notOk(answers[1]!.closed, 'keep-alive goes on after a 429');
  t.equal(app.seen.length, 1);
});

t.test('concurrent connections per address: the connection over the count gets 429 and is closed', async (t) => {
  const { sy, port } = await proxy(t, limit({ connections: 2 }));
  const open: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.5' });
    s.on('error', () => {});
    open.push(s);
  }
  t.teardown(() => {
    for (const s of open) s.destroy();
  });
  const fe = sy.runtime().frontends.get('web')!;
  await waitFor('two connections counted', () => (fe.perSource.get('127.0.0.5') === 2 ? true : undefined));
  const third = (await exchange(port, '127.0.0.5', [GET('/')]))[0]!;
  t.equal(third.status, 429);
  t.equal(third.headers['x-switchyard-limit'], 'rate_limit.connections');
  t.equal(third.headers.connection, 'close');
  t.equal(fe.counters.connLimited, 1);
  t.equal((await one(port, '127.0.0.6')).status, 200, 'another address is not affected');
  open.pop()!.destroy();
  await waitFor('one connection free again', async () => ((await one(port, '127.0.0.5')).status === 200 ? true : undefined));
});

t.test('TCP: over-limit connections are refused at accept, per address', async (t) => {
  const echo = await tcpServer();
  const sy = await start(
    config(
      [frontendConfig('pg', 'tcp', 'db', { rateLimit: limit({ connections: 1, requestsPerSecond: 100, burst: 100 }) })],
      [backendConfig('db', 'tcp', [echo.address])],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await echo.close();
  });
  const port = sy.frontendAddress('pg').port;
  const talk = (from: string) =>
    new Promise<string>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', localAddress: from });
      let got = '';
      s.on('data', (d) => {
        got += d.toString();
        if (got === 'ping') s.end();
      });
      s.on('error', () => {});
      s.on('close', () => resolve(got));
      s.write('ping');
    });
  const holder = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.7' });
  holder.on('error', () => {});
  holder.write('hold');
  await waitFor('holder echoed', () => (echo.received.length === 1 ? true : undefined));
  t.equal(await talk('127.0.0.7'), '', 'a second connection from the same address is refused');
  t.equal(await talk('127.0.0.8'), 'ping', 'another address gets through');
  t.equal(sy.runtime().frontends.get('pg')!.counters.connLimited, 1);
  holder.destroy();

  // The connection rate: burst 1 at 0.1/s, the second connection is refused at accept.
  await sy.apply(
    config([frontendConfig('pg', 'tcp', 'db', { rateLimit: limit({ requestsPerSecond: 0.1, burst: 1 }) })], [backendConfig('db', 'tcp', [echo.address])]),
  );
  t.equal(await talk('127.0.0.9'), 'ping');
  t.equal(await talk('127.0.0.9'), '', 'over the connection rate');
  t.equal(sy.runtime().frontends.get('pg')!.counters.rateLimited, 1);
});

t.test('a route has its own rate_limit; bad route limits are named by key', async (t) => {
  const app = await httpServer('app');
  const yaml = `
stats: { bind: 127.0.0.1:0 }
frontends:
  web:
    bind: 127.0.0.1:0
    default_backend: api
    routes:
      - name: login
        match: { path_prefix: /login }
        backend: api
        rate_limit: { requests_per_second: 0.1, burst: 2 }
backends:
  api: { servers: [ { address: ${app.address} } ] }
`;
  const sy = await start(parseConfig(yaml, null));
  t.teardown(async () => {
    await sy.stop(200);
    await app.close();
  });
  const port = sy.frontendAddress('web').port;
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await exchange(port, '127.0.0.10', [GET('/login', true)]))[0]!.status);
  t.same(statuses, [200, 200, 429], 'the login route allows a burst of 2');
  t.equal((await exchange(port, '127.0.0.10', [GET('/other', true)]))[0]!.status, 200, 'other paths are not limited');
  t.equal((await exchange(port, '127.0.0.11', [GET('/login', true)]))[0]!.status, 200, 'per client address');
  const route = sy.runtime().frontends.get('web')!.routing.routes[0]!;
  t.equal(route.stats.rateLimited, 1);

  const bad = (extra: string) => {
    try {
      parseConfig(yaml.replace('rate_limit: { requests_per_second: 0.1, burst: 2 }', extra), null);
    } catch (error) {
      return (error as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
    }
    return [];
  };
  t.match(bad('rate_limit: { connections: 5 }'), [/^frontends\.web\.routes\[0\]\.rate_limit\.connections: connections are limited per frontend/]);
  t.match(bad('rate_limit: { requests_per_second: fast }'), [/^frontends\.web\.routes\[0\]\.rate_limit\.requests_per_second: expected a number/]);
});

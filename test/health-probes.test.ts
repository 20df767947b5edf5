import t from 'tap';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { formatDuration, startProbe } from '../src/health/probes.js';
import { intervalFor, nextHealth, topOf } from '../src/health/rise-fall.js';
import { baseHealth, fakeHttp, fakeTcp, refusedPort, stalledTcp } from './support/fake-servers.js';
import type { HealthConfig } from '../src/config/types.js';

const target = (address: string) => {
  const [host, port] = address.split(':');
  return { host: host!, port: Number(port), address };
};
const tcp = (over: Partial<HealthConfig> = {}): HealthConfig => ({ ...baseHealth, type: 'tcp', ...over });
const http = (over: Partial<HealthConfig> = {}): HealthConfig => ({ ...baseHealth, type: 'http', ...over });

t.test('tcp: connected, refused, timeout', async (t) => {
  const up = await fakeTcp();
  t.teardown(() => up.close());
  let r = await startProbe(target(up.address), tcp()).done;
  t.match(r, { ok: true, code: 'L4OK', reason: 'connected' });
  t.ok(r.durationMs >= 0);

  r = await startProbe(target(`127.0.0.1:${await refusedPort()}`), tcp()).done;
  t.match(r, { ok: false, code: 'L4CON', reason: 'connection refused' });

  const stalled = await stalledTcp();
  t.teardown(() => stalled.close());
  const started = Date.now();
  r = await startProbe(target(stalled.address), tcp({ timeoutMs: 250 })).done;
  t.match(r, { ok: false, code: 'L4TOUT', reason: 'timeout after 250ms' });
  t.ok(Date.now() - started >= 240, 'waited the timeout');
});

t.test('http: ok, method/path/Host sent, custom Host', async (t) => {
  const s = await fakeHttp();
  t.teardown(() => s.close());
  const r = await startProbe(target(s.address), http({ method: 'HEAD', path: '/healthz?x=1' })).done;
  t.match(r, { ok: true, code: 'L7OK', reason: 'status 200' });
  t.equal(s.paths[0], 'HEAD /healthz?x=1');
  t.equal(s.hosts[0], s.address, 'Host defaults to the server address');
  await startProbe(target(s.address), http({ host: 'api.internal' })).done;
  t.equal(s.hosts[1], 'api.internal');
});

t.test('http: each failure shape', async (t) => {
  const s = await fakeHttp({ status: 503 });
  t.teardown(() => s.close());
  t.match(await startProbe(target(s.address), http()).done, { ok: false, code: 'L7STS', reason: 'status 503' });

  s.status = 302;
  t.match(await startProbe(target(s.address), http({ expect: [[200, 200]] })).done, { ok: false, code: 'L7STS', reason: 'status 302' });
  t.match(
    await startProbe(
      target(s.address),
      http({
        expect: [
          [200, 200],
          [300, 399],
        ],
      }),
    ).done,
    { ok: true, code: 'L7OK' },
    'a list of ranges',
  );

  s.status = 200;
  s.body = 'status: degraded';
  t.match(await startProbe(target(s.address), http({ body: '"ok"' })).done, { ok: false, code: 'L7RSP', reason: 'body mismatch' });
  s.body = '{"status":"ok"}';
  t.match(await startProbe(target(s.address), http({ body: '"ok"' })).done, { ok: true, code: 'L7OK' });

  s.stall = true;
  t.match(await startProbe(target(s.address), http({ timeoutMs: 200 })).done, { ok: false, code: 'L7TOUT', reason: 'timeout after 200ms' });
  s.stall = false;
  s.delayMs = 400;
  t.match(await startProbe(target(s.address), http({ timeoutMs: 2000 })).done, { ok: true }, 'slow but within the timeout');
  t.match(await startProbe(target(s.address), http({ timeoutMs: 1000 + 0 })).done, { ok: true });
  s.delayMs = 1500;
  t.match(await startProbe(target(s.address), http({ timeoutMs: 1000 })).done, { ok: false, code: 'L7TOUT', reason: 'timeout after 1s' });
  s.delayMs = 0;

  await s.refuse();
  t.match(await startProbe(target(s.address), http()).done, { ok: false, code: 'L4CON', reason: 'connection refused' });

  const stalled = await stalledTcp();
  t.teardown(() => stalled.close());
  t.match(await startProbe(target(stalled.address), http({ timeoutMs: 200 })).done, { ok: false, code: 'L4TOUT', reason: 'timeout after 200ms' });
});

t.test('cancel resolves at once', async (t) => {
  const s = await fakeHttp({ stall: true });
  t.teardown(() => s.close());
  // Timeout a minute, deadline 10 s: resolved by the cancel, not left to the timeout (which would
  // also say 'timeout after ...' rather than 'cancelled').
  const p = startProbe(target(s.address), http({ timeoutMs: 60_000 }));
  setTimeout(() => p.cancel(), 50);
  const r = await p.done;
  t.equal(r.ok, false);
  t.equal(r.reason, 'cancelled');
  t.ok(r.durationMs < 10_000, `resolved after ${r.durationMs}ms`);
});

t.test('rise/fall: one counter, exact counts', async (t) => {
  const rise = 2,
    fall = 3;
  let h = topOf(rise, fall);
  t.equal(h, 4);
  const seq: number[] = [];
  for (let i = 0; i < 3; i++) seq.push((h = nextHealth(h, false, rise, fall)));
  t.same(seq, [3, 2, 0], 'UP -> DOWN after exactly fall failures');
  t.equal(nextHealth(0, false, rise, fall), 0);
  h = nextHealth(0, true, rise, fall);
  t.equal(h, 1, 'one success: still DOWN');
  t.equal(nextHealth(h, false, rise, fall), 0, 'a failure restarts the rise count');
  t.equal(nextHealth(h, true, rise, fall), 4, 'rise successes: UP at the top');
  t.equal(nextHealth(3, true, rise, fall), 4, 'a success while UP resets the fall count');
  t.equal(nextHealth(1, false, 1, 1), 0);
  t.equal(nextHealth(0, true, 1, 1), 1);

  t.equal(intervalFor(4, rise, fall, 1000, 100, 500), 1000, 'steady: inter');
  t.equal(intervalFor(3, rise, fall, 1000, 100, 500), 100, 'changing: fastinter');
  t.equal(intervalFor(1, rise, fall, 1000, 100, 500), 100);
  t.equal(intervalFor(0, rise, fall, 1000, 100, 500), 500, 'DOWN: downinter');
});

t.test('formatDuration', async (t) => {
  t.equal(formatDuration(2000), '2s');
  t.equal(formatDuration(1500), '1.5s');
  t.equal(formatDuration(250), '250ms');
});

// Whether this machine has an IPv6 loopback (containers may not): the test says so when it skips.
const ipv6 = await new Promise<boolean>((resolve) => {
  const probe = createNetServer()
    .once('error', () => resolve(false))
    .listen(0, '::1', () => probe.close(() => resolve(true)));
});

t.test('http over IPv6: the URL and the default Host header bracket the address', { skip: ipv6 ? false : 'no IPv6 loopback here' }, async (t) => {
  const hosts: string[] = [];
  const srv = createHttpServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    res.end('ok');
  });
  await new Promise<void>((resolve) => srv.listen(0, '::1', resolve));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const port = (srv.address() as AddressInfo).port;
  const r = await startProbe({ host: '::1', port, address: `::1:${port}` }, http()).done;
  t.match(r, { ok: true, code: 'L7OK', reason: 'status 200' });
  t.same(hosts, [`[::1]:${port}`]);
});

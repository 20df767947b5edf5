// Overload protection on the stats page, in Debian's chromium (as test/stats-page.test.ts, but
// on ephemeral ports): the queue of a backend, a server's slow-start ramp, the limits tripped
// and a frontend's 429s, each appearing live as it happens.
import t from 'tap';
import { connect } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { Browser } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { startStats } from '../src/stats/listener.js';
import { backendConfig, config, frontendConfig, httpServer, quietLogger, start } from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';

const WAIT = { timeout: 15_000 };

t.test('queue, slow start, limits and 429s on the page', async (t) => {
  const held: ServerResponse[] = [];
  // Both servers answer at once, except /hold, which they keep until the end.
  const holding = (name: string) =>
    httpServer(name, (req, res) => {
      if (req.url === '/hold') held.push(res);
      else res.end(name);
    });
  const a = await holding('a');
  const b = await holding('b');
  const be = backendConfig('api', 'http', [a.address, b.address], {
    maxQueue: 5,
    queueTimeoutMs: 60_000,
    slowStart: { durationMs: 120_000, minWeightPercent: 10 },
    circuitBreaker: { maxConnections: 0, maxPending: 0, maxRequests: 50, maxRetries: -1, retryBudget: null },
  });
  const cfg = config(
    [frontendConfig('web', 'http', 'api', { rateLimit: { requestsPerSecond: 0.01, burst: 3, connections: 0, tableSize: 100 } })],
    [{ ...be, servers: be.servers.map((s) => ({ ...s, maxconn: 1 })) }],
  );
  const sy = await start(cfg);
  const stats = await startStats(sy, cfg.stats, quietLogger);
  let browser: Browser | null = null;
  t.teardown(async () => {
    for (const r of held) r.end('held');
    await browser?.close();
    await stats.stop();
    await sy.stop(200);
    await a.close();
    await b.close();
  });
  const port = sy.frontendAddress('web').port;
  const backend = sy.runtime().backends.get('api')!;
  const s2 = backend.servers[1]!;

  // The frontend's rate limit: a burst of 3 per address, then 429.
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.4' });
    s.on('error', () => {});
    const raw = await new Promise<string>((resolve) => {
      let got = '';
      s.on('data', (d: Buffer) => {
        got += d.toString('latin1');
      });
      s.on('close', () => resolve(got));
      s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
    statuses.push(Number(raw.split(' ')[1]));
  }
  t.same(statuses, [200, 200, 200, 429]);

  // s2 leaves MAINT: its weight ramps over two minutes.
  s2.admin = 'maint';
  s2.noteChange('test');
  s2.admin = 'ready';
  s2.noteChange('test');
  // Both servers at their maxconn 1, a third request waits.
  const sockets = ['127.0.0.2', '127.0.0.3', '127.0.0.5'].map((from) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from });
    s.on('error', () => {});
    s.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n');
    return s;
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  await waitFor('two held, one queued', () => (held.length === 2 && backend.counters.qcur === 1 ? true : undefined));

  browser = await launchChromium();
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${stats.address().port}/`);
  const queueText = await page.waitForSelector('[data-backend="api"] [data-k="queue"]', WAIT).then((e) => e.textContent());
  t.match(queueText, /queue 1 \/ 5/, "the backend's queue: waiting / limit");
  const ramp = await page.waitForSelector(`tr.srv[data-server="${s2.name}"] [data-k="ramp"]`, WAIT).then((e) => e.textContent());
  t.ok(Number(ramp) < s2.weight, `the ramping server shows its effective weight (${ramp})`);
  const limited = await page.waitForSelector('[data-frontend="web"] [data-k="limited"]', WAIT).then((e) => e.textContent());
  t.match(limited, /429 × [1-9]/);
  if (process.env.SY_SHOT) await page.screenshot({ path: process.env.SY_SHOT, fullPage: true });
  t.same(errors, [], 'no page errors');
});

import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { Agent, request } from 'undici';
import { HealthChecker } from '../src/health/checker.js';
import { startStats, type StatsListener } from '../src/stats/listener.js';
import type { StatsJson } from '../src/stats/snapshot.js';
import { startSwitchyard } from '../src/switchyard.js';
import { ADMIN, backend, config, freePort, frontend, health, quiet, startOrigin, statsConfig, type Origin } from './support/stats-fixtures.js';

// The stats page in Debian's chromium, driven by playwright-core, against a real switchyard
// (composition root in-process: frontend listeners, health checker, stats listener) and three
// real HTTP servers behind an HTTP backend `api` (200 ms HTTP health check) and a TCP backend
// `raw` (TCP check). Playwright gives each launch a fresh --user-data-dir of its own. It never downloads a browser: without
// /usr/bin/chromium it fails (scripts/ensure-system-deps.sh installs it). Every wait is on a
// condition in the page or the model, with a timeout; nothing sleeps and hopes.

const IMAGES = fileURLToPath(new URL('../docs/images/', import.meta.url));
const WAIT = { timeout: 10_000 };

interface Collected {
  errors: string[];
}

/** pageerror and console errors of a page, gathered to be asserted empty at the end. */
function watch(page: Page, label: string): Collected {
  const c: Collected = { errors: [] };
  page.on('pageerror', (e) => c.errors.push(`${label} pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') c.errors.push(`${label} console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => {
    // The event stream is cut when the page closes; anything else failing is a bug.
    if (!r.url().endsWith('/api/events')) c.errors.push(`${label} request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
  return c;
}

/** Wait until the state word (data-state) of a server's badge in the page is `state`. */
function stateIs(page: Page, server: string, state: string, backendName = 'api'): Promise<unknown> {
  return page.waitForFunction(
    ([b, s, want]) => document.querySelector(`tr.srv[data-backend="${b}"][data-server="${s}"] td.state .badge`)?.getAttribute('data-state') === want,
    [backendName, server, state] as const,
    WAIT,
  );
}

const row = (server: string, backendName = 'api'): string => `tr.srv[data-backend="${backendName}"][data-server="${server}"]`;

t.test('the stats page: live states, admin, charts, timelines, 1280 and 390 px', async (t) => {
  const origins: Origin[] = [await startOrigin('s1', 2), await startOrigin('s2', 6), await startOrigin('s3', 14)];
  // A generous timeout: a refused connection (the killed server) fails at once anyway, and a
  // check must not time out because chromium and the traffic keep both cores busy.
  const check = health({ type: 'http', path: '/health', intervalMs: 200, fastIntervalMs: 100, downIntervalMs: 200, timeoutMs: 2000, rise: 2, fall: 2 });
  const servers = origins.map((o) => `${o.name}@${o.address}`);
  // Real ports in the config (not 0), so the page shows the addresses a user would see.
  const cfg = config(
    [
      frontend('web', 'api', 'http', { bind: { host: '127.0.0.1', port: await freePort() } }),
      frontend('raw', 'raw', 'tcp', { bind: { host: '127.0.0.1', port: await freePort() } }),
    ],
    [backend('api', servers, 'http', { health: check }), backend('raw', servers, 'tcp', { health: { ...check, type: 'tcp' } })],
    { stats: statsConfig() },
  );
  let stats: StatsListener | null = null;
  const sy = await startSwitchyard({
    config: cfg,
    logger: quiet,
    watch: false,
    components: async (host) => {
      stats = await startStats(host, cfg.stats, quiet, { history: { intervalMs: 1000 }, eventsIntervalMs: 1000 });
      return [new HealthChecker({ log: quiet }), stats];
    },
  });
  const listener = stats as unknown as StatsListener;
  const base = `http://127.0.0.1:${listener.address().port}`;
  const web = `http://127.0.0.1:${sy.frontendAddress('web').port}`;
  const raw = `http://127.0.0.1:${sy.frontendAddress('raw').port}`;
  const agent = new Agent({ connections: 8 });
  let browser: Browser | null = null;
  let traffic = true;
  let stream: Promise<void> = Promise.resolve();
  t.teardown(async () => {
    traffic = false;
    await stream;
    await browser?.close();
    await sy.stop(200);
    await agent.close();
    for (const o of origins) await o.kill();
  });
  const api = sy.runtime().backends.get('api')!;
  const rawBackend = sy.runtime().backends.get('raw')!;
  const apiStats = async (): Promise<StatsJson> => (await (await request(`${base}/api/stats`)).body.json()) as StatsJson;
  const serverState = async (name: string, backendName = 'api'): Promise<string | undefined> =>
    (await apiStats()).backends.find((b) => b.name === backendName)?.servers.find((s) => s.name === name)?.state;

  // All three UP by their checks before the page opens.
  const all = [...api.servers, ...rawBackend.servers];
  for (let i = 0; i < 200 && all.some((s) => s.check.at === 0); i++) await new Promise((r) => setTimeout(r, 20));
  t.same(
    all.map((s) => s.state),
    ['UP', 'UP', 'UP', 'UP', 'UP', 'UP'],
  );

  // Some real traffic, so the counters, charts and screenshot show real numbers: 2xx mostly,
  // some 404s and a few 500s. Then a light steady stream (bounded) for the request-rate chart.
  // One request in four goes through the TCP frontend.
  const send = async (path: string, i: number): Promise<number> => {
    const res = await request(`${i % 4 === 3 ? raw : web}${path}`, { dispatcher: agent });
    await res.body.text();
    return res.statusCode;
  };
  const paths = (i: number): string => (i % 23 === 0 ? '/boom' : i % 7 === 0 ? '/missing' : '/');
  for (let i = 0; i < 300; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => send(paths(i + k), i + k)));
  let sent = 300;
  stream = (async () => {
    while (traffic && sent < 20_000) {
      await Promise.all(Array.from({ length: 4 }, (_, k) => send(paths(sent + k), sent + k).catch(() => 0)));
      sent += 4;
      await new Promise((r) => setTimeout(r, 40));
    }
  })();

  browser = await launchChromium();
  const desktop: BrowserContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await desktop.newPage();
  const seen = watch(page, '1280');
  await page.goto(`${base}/`);

  await t.test('every server is shown with its state', async (t) => {
    for (const o of origins) {
      await stateIs(page, o.name, 'UP');
      await stateIs(page, o.name, 'UP', 'raw');
    }
    const rows = await page.locator('tr.srv').evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-backend')}/${tr.getAttribute('data-server')}`));
    t.same(rows, ['api/s1', 'api/s2', 'api/s3', 'raw/s1', 'raw/s2', 'raw/s3']);
    t.match(await page.locator(row('s2')).locator('td.state').innerText(), /UP/);
    t.match(await page.locator(row('s1')).innerText(), new RegExp(`127\\.0\\.0\\.1:${origins[0]!.port}`), 'address shown');
    t.match(await page.locator('tr[data-frontend="web"]').innerText(), new RegExp(`127\\.0\\.0\\.1:${sy.frontendAddress('web').port}`), 'frontend bind shown');
    t.match(await page.locator('.backend[data-backend="api"] .head').innerText(), /round-robin/, 'active strategy shown');
    t.equal(await page.locator('#login').isVisible(), true, 'a login button, no admin buttons yet');
    t.equal(await page.locator('button[data-act="state"]').count(), 0);
    // Same page object across the live updates below: a reload would lose this marker.
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 42;
    });
  });

  await t.test('a killed server turns DOWN live, and UP again when it is back', async (t) => {
    const s2 = origins[1]!;
    await s2.kill();
    await stateIs(page, 's2', 'DOWN');
    await stateIs(page, 's2', 'DOWN', 'raw');
    t.equal(await serverState('s2'), 'DOWN');
    t.match(await page.locator(row('s2')).locator('td.state').innerText(), /refused|reset|timeout/i, 'the reason is shown');
    t.equal(await page.locator(row('s2')).getAttribute('data-state'), 'DOWN', 'the whole row is marked (tinted) DOWN');
    t.match(await page.locator('#summary').innerText(), /2 DOWN/);
    await s2.restart();
    await stateIs(page, 's2', 'UP');
    await stateIs(page, 's2', 'UP', 'raw');
    t.equal(await serverState('s2'), 'UP');
    t.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42, 'no reload happened');
    // The transition list and the server's timeline show the DOWN period.
    await page.waitForFunction(
      () => document.querySelectorAll('tr.srv[data-backend="api"][data-server="s2"] td.tl rect[data-state="DOWN"]').length > 0,
      undefined,
      WAIT,
    );
    t.match(await page.locator('#events').innerText(), /api\/s2[\s\S]*DOWN/);
    await page.waitForFunction(
      () => /1× down/.test(document.querySelector('tr.srv[data-backend="api"][data-server="s2"] td.tl')?.textContent ?? ''),
      undefined,
      WAIT,
    );
    t.match(await page.locator(row('s1')).locator('td.tl').innerText(), /never down/);
  });

  await t.test('login: wrong password refused, then admin controls; MAINT with a click', async (t) => {
    await page.click('#login');
    await page.fill('#u', ADMIN.username);
    await page.fill('#p', 'not the password');
    await page.click('#submit');
    await page.locator('#msg').filter({ hasText: 'Wrong username or password' }).waitFor(WAIT);
    t.equal(await page.locator('button[data-act="state"]').count(), 0, 'still no admin buttons');
    // Chromium logs a fetch answered 401 as a console error: that one we caused on purpose.
    const refused = seen.errors.filter((e) => /status of 401/.test(e));
    t.ok(refused.length <= 1, 'at most the one refused login was logged');
    seen.errors.splice(0, seen.errors.length, ...seen.errors.filter((e) => !/status of 401/.test(e)));

    await page.fill('#p', ADMIN.password);
    await page.click('#submit');
    await page.locator('button[data-act="state"]').first().waitFor(WAIT);
    t.match(await page.locator('#who').innerText(), new RegExp(ADMIN.username));
    t.equal(await page.locator(row('s3')).locator('button[data-act="state"]').count(), 3, 'ready, drain, maint');

    await page.click(`${row('s3')} button[data-state="maint"]`);
    await stateIs(page, 's3', 'MAINT');
    t.equal(await serverState('s3'), 'MAINT', '/api/stats agrees');
    t.equal(api.serverByName('s3')!.admin, 'maint');

    await page.click(`${row('s3')} button[data-state="drain"]`);
    await stateIs(page, 's3', 'DRAIN');
    t.equal(await serverState('s3'), 'DRAIN');

    await page.selectOption('select[data-act="strategy"][data-backend="api"]', 'least-connections');
    await page.waitForFunction(
      () => document.querySelector<HTMLSelectElement>('select[data-act="strategy"][data-backend="api"]')?.value === 'least-connections',
      undefined,
      WAIT,
    );
    const strategyOf = async (): Promise<string | undefined> => (await apiStats()).backends.find((b) => b.name === 'api')?.strategy;
    for (let i = 0; i < 100 && (await strategyOf()) !== 'least-connections'; i++) await new Promise((r) => setTimeout(r, 20));
    t.equal(await strategyOf(), 'least-connections', 'strategy changed from the page');
  });

  await t.test('request-rate chart, response-time chart and per-server health timelines render', async (t) => {
    // The history endpoint samples every second here; wait for a rate line with real points.
    await page.waitForFunction(
      () => {
        const d = document.querySelector('.backend[data-backend="api"] .chart[data-chart="rate"] path')?.getAttribute('d') ?? '';
        return (d.match(/L/g) ?? []).length >= 2;
      },
      undefined,
      { timeout: 20_000 },
    );
    const rt = await page.locator('.backend[data-backend="api"] .chart[data-chart="time"] path').first().getAttribute('d');
    t.match(rt, /^M[\d.]+ [\d.]+(L[\d.]+ [\d.]+)+/, 'response-time line drawn');
    for (const o of origins) {
      const n = await page.locator(`${row(o.name)} td.tl rect`).count();
      t.ok(n >= 1, `${o.name} has a health timeline`);
    }
    const history = (await (await request(`${base}/api/history?backend=api&minutes=5`)).body.json()) as { servers: { name: string; samples: unknown[] }[] };
    t.ok(
      history.servers.every((s) => s.samples.length >= 2),
      'the page draws what /api/history holds',
    );
  });

  await t.test('1280 px: no overflow, screenshot with real numbers', async (t) => {
    // The picture for the README: traffic flowing, a chart with ~20 s of history (1 s samples),
    // no toast over it.
    await page.waitForFunction(
      () => {
        const d = document.querySelector('.backend[data-backend="api"] .chart[data-chart="rate"] path:last-of-type')?.getAttribute('d') ?? '';
        return (
          (d.match(/L/g) ?? []).length >= 20 &&
          Number(document.querySelector('#summary [data-k="rate"]')?.textContent ?? '0') > 0 &&
          getComputedStyle(document.getElementById('toast')!).opacity === '0'
        );
      },
      undefined,
      { timeout: 40_000 },
    );
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scroll at 1280 px');
    const clipped = await page.locator('.scroll').evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1).length);
    t.equal(clipped, 0, 'every table fits its card at 1280 px, admin column included');
    mkdirSync(IMAGES, { recursive: true });
    await page.screenshot({ path: `${IMAGES}stats-page.png`, fullPage: true });
    t.ok(existsSync(`${IMAGES}stats-page.png`));
  });

  await t.test('390 px: no horizontal overflow, key elements visible', async (t) => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const small = await phone.newPage();
    const smallSeen = watch(small, '390');
    await small.goto(`${base}/`);
    await stateIs(small, 's1', 'UP');
    await stateIs(small, 's3', 'DRAIN');
    await stateIs(small, 's3', 'UP', 'raw');
    t.ok(
      await small.evaluate(() => document.documentElement.scrollWidth <= 390),
      `document fits 390 px (scrollWidth ${await small.evaluate(() => document.documentElement.scrollWidth)})`,
    );
    for (const sel of [
      'header h1',
      '#login',
      '#summary',
      '.backend[data-backend="api"] h2',
      `${row('s1')} td.state .badge`,
      `${row('s3')} td.state .badge`,
      `${row('s3', 'raw')} td.state .badge`,
      '.chart[data-chart="rate"] svg',
    ]) {
      t.ok(await small.locator(sel).first().isVisible(), `${sel} visible`);
      const box = await small.locator(sel).first().boundingBox({ timeout: 5000 });
      t.ok(box !== null && box.x >= 0 && box.x + box.width <= 390 + 0.5, `${sel} inside the viewport`);
    }
    // The login dialog and the admin buttons fit the phone too.
    await small.click('#login');
    const dialog = await small.locator('#dlg').boundingBox({ timeout: 5000 });
    t.ok(dialog !== null && dialog.x >= 0 && dialog.x + dialog.width <= 390, 'login dialog inside the viewport');
    await small.fill('#u', ADMIN.username);
    await small.fill('#p', ADMIN.password);
    await small.click('#submit');
    await small.locator(`${row('s1')} button[data-state="maint"]`).waitFor(WAIT);
    const seg = await small.locator(`${row('s1')} .seg`).boundingBox({ timeout: 5000 });
    t.ok(seg !== null && seg.x >= 0 && seg.x + seg.width <= 390, 'admin buttons inside the viewport');
    t.ok(await small.evaluate(() => document.documentElement.scrollWidth <= 390), 'still fits with the admin controls');
    // One phone screen, from the api backend down: its state, charts and first servers.
    await small.locator('.backend[data-backend="api"]').evaluate((el) => el.scrollIntoView({ block: 'start' }));
    await small.waitForFunction(() => getComputedStyle(document.getElementById('toast')!).opacity === '0', undefined, WAIT);
    await small.screenshot({ path: `${IMAGES}stats-page-mobile.png` });
    t.same(smallSeen.errors, [], 'no JavaScript errors at 390 px');
    await phone.close();
  });

  t.same(seen.errors, [], 'no JavaScript errors at 1280 px');
});

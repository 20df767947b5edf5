// User code on the stats page, in Debian's chromium (ephemeral ports, as overload-page): a
// router module that throws shows its error count and last error in the "User code" card.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { Browser } from 'playwright-core';
import { launchChromium } from './support/chromium.js';
import { loadConfigFile } from '../src/config/load.js';
import { startStats } from '../src/stats/listener.js';
import { startSwitchyard } from '../src/switchyard.js';
import { httpServer, quietLogger } from './support/proxy-harness.js';

const WAIT = { timeout: 15_000 };

t.test('a throwing router: its errors and last error on the page', async (t) => {
  const app = await httpServer('app');
  const dir = mkdtempSync(join(tmpdir(), 'sy-code-page-'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(dir, 'router.js'), `export function route(req) { if (req.path === '/boom') throw new Error('router bug on purpose'); }`);
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:0 }
frontends:
  web: { mode: http, bind: 127.0.0.1:0, router: ./router.js, default_backend: app }
backends:
  app: { mode: http, health: { type: none }, servers: [ { name: a1, address: ${app.address} } ] }
`,
  );
  const config = await loadConfigFile(file);
  const sy = await startSwitchyard({ config, loadConfig: loadConfigFile, logger: quietLogger, watch: false });
  const stats = await startStats(sy, config.stats, quietLogger);
  let browser: Browser | null = null;
  t.teardown(async () => {
    await browser?.close();
    await stats.stop();
    await sy.stop(100);
    await app.close();
  });
  const port = sy.frontendAddress('web').port;
  for (let i = 0; i < 3; i++) {
    const res = await request(`http://127.0.0.1:${port}/boom`);
    t.equal(res.statusCode, 200, 'a throwing router falls back to the default backend');
    await res.body.text();
  }

  browser = await launchChromium();
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${stats.address().port}/`);
  const row = await page.waitForSelector(`#code-card tr[data-code="${join(dir, 'router.js')}"]`, WAIT);
  const text = (await row.textContent()) ?? '';
  t.match(text, /router\.js/, 'the module by its file');
  t.match(text, /router/, 'its kind');
  t.match(text, /router bug on purpose/, 'its last error');
  const count = await row.$eval('td[data-label="Errors"]', (e) => e.textContent);
  t.equal(count, '3', 'three errors counted on the module');
  t.same(errors, [], 'no page errors');
});

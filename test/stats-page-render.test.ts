// The stats page's renderers (src/stats/page/*.ts, pure functions of the JSON) run here in
// Node on what a real stats listener answers: every section renders, the admin controls
// appear only for an admin, the strategy drop-down lists the server's own registry, and
// names from the config are escaped. test/stats-page.test.ts drives the same code in chromium.
import t from 'tap';
import { request } from 'undici';
import { builtinStrategyNames } from '../src/strategies/registry.js';
import { renderBackend } from '../src/stats/page/backends.js';
import { bytes, dur, esc, ms, num, span } from '../src/stats/page/format.js';
import { renderFrontends, renderTls, renderUserCode } from '../src/stats/page/frontends.js';
import { renderEvents, renderReload, renderSummary } from '../src/stats/page/summary.js';
import type { HistoryJson, StatsJson } from '../src/stats/page/types.js';
import { backend, config, frontend, startFixture } from './support/stats-fixtures.js';

async function json<T>(url: string): Promise<T> {
  return (await (await request(url)).body.json()) as T;
}

t.test('every section renders from a live listener; admin controls only for an admin', async (t) => {
  const cfg = config(
    [frontend('web', 'api', 'http'), frontend('raw', 'pg', 'tcp')],
    [backend('api', ['s1', 's<b>2'], 'http', { strategy: 'least-connections' }), backend('pg', ['p1'], 'tcp')],
  );
  const f = await startFixture(cfg, { history: { intervalMs: 1000 } });
  t.teardown(() => f.close());
  const s = await json<StatsJson>(`${f.base}/api/stats`);
  t.same(s.strategies, builtinStrategyNames(), '/api/stats lists the registry\'s strategies');

  const api = s.backends.find((b) => b.name === 'api')!;
  const history = await json<{ backends: HistoryJson[] }>(`${f.base}/api/history?minutes=60`);
  const h = history.backends.find((b) => b.backend === 'api');
  const now = Date.now();

  const reader = renderBackend(api, h, { now, admin: false, strategies: s.strategies });
  t.match(reader, /strategy <b>least-connections<\/b>/, 'a reader sees the strategy as text');
  t.notMatch(reader, /data-act=/, 'no admin control for a reader');
  t.match(reader, /data-key="be\/api\/srv\/s1"/, 'server rows are keyed by backend and server');
  t.match(reader, /s&lt;b&gt;2/, 'a server name is escaped');
  t.notMatch(reader, /s<b>2/);
  t.match(reader, /<div class="chart" data-chart="rate">/);
  t.match(reader, /<div class="chart" data-chart="time">/);

  const admin = renderBackend(api, h, { now, admin: true, strategies: s.strategies });
  const options = [...admin.matchAll(/<option( selected)?>([^<]+)<\/option>/g)].map((m) => `${m[2]}${m[1] ? '*' : ''}`);
  t.same(options, builtinStrategyNames().map((n) => (n === 'least-connections' ? `${n}*` : n)), 'the drop-down: the server\'s strategies, the one in use selected');
  t.equal([...admin.matchAll(/data-act="state"/g)].length, 6, 'ready, drain, maint per server');

  const userModule = renderBackend({ ...api, strategy: './weighted.js' }, h, { now, admin: true, strategies: s.strategies });
  t.match(userModule, /<option selected>\.\/weighted\.js<\/option><\/select>/, 'a user strategy in use is listed after the built-ins');

  const tcp = renderBackend(s.backends.find((b) => b.name === 'pg')!, undefined, { now, admin: false, strategies: s.strategies });
  t.match(tcp, /no response times in TCP mode/);
  t.match(tcp, /Connections\/s/);

  t.match(renderFrontends(s), /data-frontend="web"[^]*data-frontend="raw"/);
  t.equal(renderTls(s, now), '', 'no TLS card without TLS');
  t.equal(renderUserCode(s, now), '', 'no user code card without user code');
  t.match(renderSummary(s), /<div class="v">3 <small>in 2 backends<\/small>/);
  t.equal(renderReload(s), '', 'no banner without a rejected reload');
  t.match(renderEvents([]), /No state change in the last hour/);
});

t.test('a rejected reload, state changes and user code, escaped', async (t) => {
  const at = Date.UTC(2026, 0, 1, 12, 0, 0);
  const s = { lastReload: { ok: false, at, errors: ['backends.api: <bad>'], generation: 3 } } as unknown as StatsJson;
  t.match(renderReload(s), /generation 3\) stays\.<ul><li>backends\.api: &lt;bad&gt;<\/li><\/ul>/);
  const events = renderEvents([{ t: at, backend: 'api', server: 's1', from: 'UP', to: 'DOWN', reason: 'connection refused' }]);
  t.match(events, /<b>api\/s1<\/b> <span class="badge s-UP" data-state="UP">UP<\/span> → <span class="badge s-DOWN"/);
  const code = renderUserCode({ userCode: [{ file: '/etc/sy/router.js', kind: 'router', version: 'abcdef0123456789', loadedAt: at, loads: 2, errors: 3, lastError: 'boom <x>', lastErrorAt: at }] } as unknown as StatsJson, at + 90_000);
  t.match(code, /<b>router\.js<\/b>/);
  t.match(code, /version abcdef012345 · 1m 30s ago/);
  t.match(code, /boom &lt;x&gt;/);
  t.match(code, /<b class="bad">3<\/b>/);
});

t.test('formatting', async (t) => {
  t.equal(esc(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  t.equal(esc(null), '');
  t.equal(num(1234567), '1,234,567');
  t.equal(num(''), '–');
  t.equal(bytes(512), '512 B');
  t.equal(bytes(1536), '1.5 KiB');
  t.equal(bytes(20 * 1024 * 1024), '20 MiB');
  t.equal(dur(3 * 86400 + 4 * 3600), '3d 4h');
  t.equal(dur(3700), '1h 1m');
  t.equal(dur(-5), '0s');
  t.equal(ms(4.25), '4.3 ms');
  t.equal(ms(12.6), '13 ms');
  t.equal(ms(null), '–');
  t.equal(span(90), '2 h');
  t.equal(span(15), '15 min');
  t.equal(span(0.5), '30 s');
});

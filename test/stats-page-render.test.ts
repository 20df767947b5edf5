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
import type { BackendJson, HistoryJson, JsonServer, StatsJson } from '../src/stats/page/types.js';
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
  t.same(s.strategies, builtinStrategyNames(), "/api/stats lists the registry's strategies");

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
  t.same(
    options,
    builtinStrategyNames().map((n) => (n === 'least-connections' ? `${n}*` : n)),
    "the drop-down: the server's strategies, the one in use selected",
  );
  t.equal([...admin.matchAll(/data-act="state"/g)].length, 6, 'ready, drain, maint per server');

  const userModule = renderBackend({ ...api, strategy: './weighted.js' }, h, { now, admin: true, strategies: s.strategies });
  t.match(userModule, /<option selected>\.\/weighted\.js<\/option><\/select>/, 'a user strategy in use is listed after the built-ins');

  const tcp = renderBackend(
    s.backends.find((b) => b.name === 'pg')!,
    undefined,
    { now, admin: false, strategies: s.strategies },
  );
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
  const code = renderUserCode(
    {
      userCode: [
        { file: '/etc/sy/router.js', kind: 'router', version: 'abcdef0123456789', loadedAt: at, loads: 2, errors: 3, lastError: 'boom <x>', lastErrorAt: at },
      ],
    } as unknown as StatsJson,
    at + 90_000,
  );
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

t.test('what each state of a backend and server looks like', async (t) => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const server = (name: string, over: Partial<JsonServer>): JsonServer => ({
    name,
    address: '10.0.0.1:80',
    state: 'UP',
    status: 'UP',
    admin: 'ready',
    backup: false,
    weight: 10,
    source: 'config',
    stateSince: now - 5000,
    stateReason: '',
    check: { enabled: true, code: 'L7OK', reason: 'status 200', durationMs: 3, at: now - 1000, health: 2, rise: 2, fall: 3 },
    latency: { bucketsMs: [null], counts: [0], sumMs: 0, count: 0 },
    stats: {},
    effectiveWeight: 10,
    rampUntil: null,
    ...over,
  });
  const servers = [
    server('ramping', {
      effectiveWeight: 2.5,
      rampUntil: now + 20_000,
      backup: true,
      stats: { hrsp_1xx: 1, hrsp_2xx: 5, hrsp_3xx: 1, hrsp_4xx: 2, hrsp_5xx: 1, hrsp_other: 0, downtime: 90, chkdown: 2, qcur: 4, wredis: 3 },
    }),
    server('down', {
      state: 'DOWN',
      status: 'DOWN 1/2',
      stateReason: 'connection refused',
      check: { ...server('x', {}).check, enabled: false },
      stats: { downtime: 0, chkdown: 1 },
    }),
    server('flapped', { stats: { downtime: 12, chkdown: 0 } }),
  ];
  const b: BackendJson = {
    name: 'api',
    mode: 'http',
    status: 'DOWN',
    strategy: 'random',
    strategyErrors: 2,
    sticky: 'cookie SY',
    health: 'http GET /health',
    eligible: 1,
    stateSince: now - 60_000,
    latency: servers[0]!.latency,
    stats: { econ: 1, eresp: 0 },
    servers,
    overload: {
      queue: { current: 1, max: 9, limit: 100, timeoutMs: 5000, avgWaitMs: 12, maxWaitMs: 40, waiting: 4 },
      breaker: { maxConnections: 10, maxPending: 10, maxRequests: 10, maxRetries: 1, retryBudget: null },
      connections: 3,
      retries: 1,
      slowStartMs: 30_000,
      refusals: { max_connections: 2, max_pending: 0 },
    },
    discovery: null,
  };
  const h: HistoryJson = {
    backend: 'api',
    minutes: 60,
    intervalSeconds: 10,
    now,
    samples: [
      { t: now - 50_000, state: 'UP', active: 0, rate: 4, avgMs: 12, checkMs: 3 },
      { t: now - 40_000, state: 'UP', active: 0, rate: 2, avgMs: null, checkMs: 3 },
    ],
    servers: [
      { name: 'down', address: '10.0.0.1:80', state: 'DOWN', samples: [{ t: now - 50_000, state: 'UP', active: 0, rate: 0, avgMs: null, checkMs: null }] },
    ],
    events: [{ t: now - 30_000, backend: 'api', server: 'down', from: 'UP', to: 'DOWN', reason: 'connection refused' }],
  };
  const html = renderBackend(b, h, { now, admin: false, strategies: [] });
  t.match(html, /<b data-k="ramp">2\.5<\/b> → 10<span class="sub">slow start, 20s left<\/span>/, 'a ramping server: its weight now, then its configured one');
  t.match(html, /<span class="tag">backup<\/span>/);
  t.match(html, /2× down · 1m 30s/);
  t.match(html, /1× down · &lt;1s/, 'DOWN for less than a second');
  t.match(html, /down 12s/, 'DOWN time without a counted transition');
  t.match(html, /<b data-k="squeue">4<\/b> queued/);
  t.match(html, /3 redisp\./);
  t.match(html, /<span class="">1xx 1<\/span>/);
  t.match(html, /<span class="t4">4xx 2<\/span> · <span class="t5">5xx 1<\/span>/);
  t.match(html, /data-state="DOWN" title="connection refused">DOWN 1\/2<\/span>/, 'the status as HAProxy words it, the reason on hover');
  t.match(html, /class="badge s-GU"/, 'a server on its way UP has its own colour');
  t.match(html, /for 5s · connection refused/, 'the reason a server is not UP');
  t.match(html, /<span class="kv">no check<\/span>/);
  t.match(
    html,
    /<rect data-state="UP"[^>]*fill="#2da44e"><title>UP [^<]+<\/title><\/rect><rect data-state="DOWN"/,
    'the timeline: UP, then DOWN from the transition',
  );
  t.match(html, /<span data-k="queue">queue <b>4<\/b> \/ 100 · max 9 · wait avg 12 ms, max 40 ms<\/span>/);
  t.match(html, /limits <b class="bad">max_connections 2<\/b> · 1 retrying/);
  t.match(html, /slow start <b>30s<\/b>/);
  t.match(html, /<span class="bad">2 errors<\/span>/, 'strategy errors');
  t.match(html, /sticky <b>cookie SY<\/b>/);
  t.match(html, /<b class="bad">1 \/ 0<\/b>/, 'backend connection errors stand out');
  t.match(html, /<path d="M[^"]+L[^"]+Z" fill="#0969da"/, 'the rate chart has its area');
  const calm = renderBackend(
    { ...b, overload: { ...b.overload, refusals: {}, retries: 0, slowStartMs: 0, queue: { ...b.overload.queue, limit: 0, max: 0 } } },
    undefined,
    { now, admin: false, strategies: [] },
  );
  t.match(calm, /limits <b class="">none tripped<\/b><\/span>/);
  t.notMatch(calm, /data-k="queue"|slow start <b>/);
  t.match(calm, /no data yet/, 'an empty chart says so');
});

t.test('frontends, TLS and the summary in their less common states', async (t) => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const overload = { rateLimit: null, rateLimited: 7, connLimited: 2, routes: [] };
  const s = {
    uptimeSeconds: 5,
    frontends: [
      {
        name: 'tcp',
        mode: 'tcp',
        bind: '0.0.0.0:5432',
        backend: 'pg',
        status: 'OPEN',
        stats: { scur: 1, smax: 2, slim: 100, rate: 3, rate_max: 4, ereq: 0, dreq: 1 },
        overload,
        tls: null,
        routes: [{ name: 'a', match: 'sni a', action: 'backend pg', backend: 'pg', hits: 0 }],
      },
      {
        name: 'sni',
        mode: 'tcp',
        bind: '0.0.0.0:443',
        backend: 'pg',
        status: 'OPEN',
        stats: {},
        overload: { ...overload, rateLimited: 0, connLimited: 0 },
        routes: [],
        tls: { kind: 'sni-route', handshakes: 4, versions: { 'TLSv1.2': 0, 'TLSv1.3': 0 }, resumed: 0, failures: { no_sni: 0 }, certificates: [] },
      },
      {
        name: 'https',
        mode: 'http',
        bind: '0.0.0.0:8443',
        backend: 'pg',
        status: 'OPEN',
        stats: { req_rate: 1 },
        overload,
        routes: [],
        tls: {
          kind: 'terminate',
          handshakes: 9,
          versions: { 'TLSv1.2': 3, 'TLSv1.3': 6 },
          resumed: 1,
          failures: { bad_certificate: 2 },
          certificates: [
            { file: 'old.pem', names: [], notAfter: now - 86_400_000, daysLeft: -1 },
            { file: 'b.pem', names: ['b.test'], notAfter: now + 20 * 86_400_000, daysLeft: 20 },
            { file: 'c.pem', names: ['c.test', 'www.c.test'], notAfter: now + 90 * 86_400_000, daysLeft: 90 },
          ],
        },
      },
    ],
    backends: [
      { name: 'pg', status: 'DOWN', servers: [{ state: 'DOWN' }, { state: 'NOLB' }] },
      { name: 'web', status: 'UP', servers: [{ state: 'UP' }] },
    ],
  } as unknown as StatsJson;
  const fe = renderFrontends(s);
  t.match(fe, /data-label="Sessions\/s">3<span class="sub">max 4<\/span>/, 'a TCP frontend counts sessions per second');
  t.match(fe, /limit 100/);
  t.match(fe, /429 × 7 · 2 conn\./, 'refused by rate_limit');
  t.match(fe, /<span class="sub">0%<\/span>/, 'a route without hits yet');
  const tls = renderTls(s, now);
  t.match(tls, /2 frontends/);
  t.match(tls, /passthrough by SNI/);
  t.match(tls, /ClientHellos routed/);
  t.match(tls, /TLS 1\.3 6 · 1\.2 3 · resumed 1/);
  t.match(tls, /bad certificate 2/);
  t.match(tls, /<span class="bad">old\.pem · expired<\/span>/, 'an expired certificate by its file when it names nothing');
  t.match(tls, /<span class="t4">b\.test · 20 days left<\/span>/, 'under 30 days: amber');
  t.match(tls, /<span class="">c\.test, www\.c\.test · 90 days left<\/span>/);
  const summary = renderSummary(s);
  t.match(summary, /<span class="bad">1 DOWN<\/span>/, 'a DOWN backend in the servers tile');
  t.match(summary, /data-k="down">1 DOWN<\/span>/);
  t.match(summary, /data-k="rate">4<\/div>/, 'requests per second of the HTTP frontend plus sessions per second of the TCP ones');
  t.match(
    renderUserCode(
      {
        userCode: [{ file: 'w.js', kind: 'strategy', version: 'v1', loadedAt: now, loads: 1, errors: 0, lastError: null, lastErrorAt: 0 }],
      } as unknown as StatsJson,
      now,
    ),
    /data-label="Last error" class="l">–<\/td>/,
  );
});

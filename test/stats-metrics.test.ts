import t from 'tap';
import { Gauge } from 'prom-client';
import { request } from 'undici';
import { LATENCY_BUCKETS_MS } from '../src/model/counters.js';
import { families } from '../src/stats/metrics.js';
import { proxiedOrigin, startFixture } from './support/stats-fixtures.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Parsed {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/** A strict-enough parser of the Prometheus text format (0.0.4). */
function parse(text: string, t: { fail(message: string): unknown }): Parsed {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) {
      t.fail(`bad line: ${line}`);
      continue;
    }
    const labels: Record<string, string> = {};
    if (m[2]) for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { help, type, samples };
}

function familyOf(name: string, type: Map<string, string>): string | undefined {
  if (type.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && type.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return undefined;
}

t.test('/metrics: valid exposition format, HELP and TYPE for every family, model values', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const web = f.runtime.frontends.get('web')!;
  const api = f.runtime.backends.get('api')!;
  const [s1, s2] = api.servers;
  const now = Date.now();
  for (let i = 0; i < 10; i++) {
    web.counters.sessionOpened(now);
    web.counters.reqTot++;
    api.opened(s1!, now);
    s1!.counters.reqTot++;
    api.counters.reqTot++;
    const ms = [0.5, 3, 3, 40, 40, 40, 700, 700, 20000, 7][i]!;
    for (const c of [web.counters, api.counters, s1!.counters]) c.response(i === 9 ? 502 : 200, ms);
  }
  web.counters.bin = 4096;
  s1!.check.durationMs = 12;
  s1!.check.code = 'L7OK';
  s1!.check.at = now;
  s2!.checkDown = true;
  s2!.noteChange('test');

  const res = await request(`${f.base}/metrics`);
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const { help, type, samples } = parse(await res.body.text(), t);

  for (const s of samples) {
    const fam = familyOf(s.name, type);
    t.ok(fam !== undefined && help.has(fam), `${s.name} has HELP and TYPE`);
  }
  const one = (name: string, labels: Record<string, string>): number | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

  t.equal(type.get('switchyard_frontend_requests_total'), 'counter');
  t.equal(one('switchyard_frontend_requests_total', { frontend: 'web' }), 10);
  t.equal(one('switchyard_frontend_bytes_in_total', { frontend: 'web' }), 4096);
  t.equal(one('switchyard_frontend_responses_total', { frontend: 'web', code: '2xx' }), 9);
  t.equal(one('switchyard_frontend_responses_total', { frontend: 'web', code: '5xx' }), 1);
  t.equal(one('switchyard_frontend_responses_total', { frontend: 'db', code: '2xx' }), undefined, 'no HTTP series for a TCP frontend');
  t.equal(one('switchyard_server_up', { backend: 'api', server: 's1' }), 1);
  t.equal(one('switchyard_server_up', { backend: 'api', server: 's2' }), 0);
  t.equal(one('switchyard_server_state', { backend: 'api', server: 's2', state: 'DOWN' }), 1);
  t.equal(one('switchyard_server_state', { backend: 'api', server: 's2', state: 'UP' }), 0);
  t.equal(one('switchyard_server_active', { backend: 'api', server: 's1' }), 10);
  t.equal(one('switchyard_server_check_duration_seconds', { backend: 'api', server: 's1' }), 0.012);
  t.equal(one('switchyard_backend_up', { backend: 'api' }), 1);
  t.equal(one('switchyard_backend_loadbalanced_total', { backend: 'api' }), 10);
  t.equal(one('switchyard_backend_strategy_info', { backend: 'api', strategy: 'round-robin' }), 1);
  t.equal(one('switchyard_backend_eligible_servers', { backend: 'api' }), 2);
  t.ok(one('switchyard_uptime_seconds', {})! >= 65);
  t.equal(one('switchyard_config_generation', {}), 1);
  t.ok(
    samples.some((s) => s.name === 'process_cpu_user_seconds_total'),
    'default process metrics',
  );
  t.ok(
    samples.some((s) => s.name === 'nodejs_heap_size_total_bytes'),
    'default nodejs metrics',
  );

  // Histograms: cumulative buckets in seconds, +Inf == _count, _sum in seconds.
  for (const kind of ['frontend', 'backend', 'server']) {
    const name = `switchyard_${kind}_response_time_seconds`;
    t.equal(type.get(name), 'histogram', name);
    const groups = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${name}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    t.ok(groups.size > 0);
    for (const [key, buckets] of groups) {
      t.same(
        buckets.map((b) => b.labels.le),
        [...LATENCY_BUCKETS_MS.map((ms) => String(ms / 1000)), '+Inf'],
        `${name} bucket bounds`,
      );
      for (let i = 1; i < buckets.length; i++) t.ok(buckets[i]!.value >= buckets[i - 1]!.value, 'cumulative');
      const labels = JSON.parse(key) as Record<string, string>;
      t.equal(one(`${name}_count`, labels), buckets.at(-1)!.value, `${name}_count equals the +Inf bucket`);
    }
  }
  const h = 'switchyard_server_response_time_seconds';
  const sv = { backend: 'api', server: 's1' };
  t.equal(one(`${h}_count`, sv), 10);
  t.equal(one(`${h}_bucket`, { ...sv, le: '0.001' }), 1);
  t.equal(one(`${h}_bucket`, { ...sv, le: '0.005' }), 3);
  t.equal(one(`${h}_bucket`, { ...sv, le: '0.01' }), 4);
  t.equal(one(`${h}_bucket`, { ...sv, le: '0.05' }), 7);
  t.equal(one(`${h}_bucket`, { ...sv, le: '1' }), 9);
  t.equal(one(`${h}_bucket`, { ...sv, le: '10' }), 9);
  t.equal(one(`${h}_bucket`, { ...sv, le: '+Inf' }), 10);
  t.ok(Math.abs(one(`${h}_sum`, sv)! - 21.5335) < 1e-9, '_sum in seconds');
});

t.test('a removed server disappears from the next scrape; families come from the column table', async (t) => {
  const names = families().map((f) => f.name);
  t.ok(names.includes('switchyard_server_up'));
  t.ok(names.includes('switchyard_frontend_requests_total'));
  t.equal(new Set(names).size, names.length, 'no duplicate family');
  for (const family of families()) {
    const labelSets = family.sources.map((s) => JSON.stringify(s.spec.labels ?? {}));
    t.equal(new Set(labelSets).size, labelSets.length, `${family.name}: each source has its own labels (no duplicate sample)`);
  }
  const f = await startFixture();
  t.teardown(f.close);
  const api = f.runtime.backends.get('api')!;
  const before = await (await request(`${f.base}/metrics`)).body.text();
  t.match(before, /switchyard_server_up\{backend="api",server="s3"\} 1/);
  api.apply({ ...api.config, servers: api.config.servers.slice(0, 2) }, () => ({ update() {}, pick: () => null }));
  const after = await (await request(`${f.base}/metrics`)).body.text();
  t.notMatch(after, /server="s3"/);
});

t.test('/metrics counts the traffic sent through a real switchyard', async (t) => {
  const { fePort, statsPort } = await proxiedOrigin(t);
  // 30 requests: 20 × 200, 7 × 404, 3 × 503.
  for (let i = 0; i < 30; i++) {
    const path = i < 20 ? '/' : i < 27 ? '/missing' : '/boom';
    const res = await request(`http://127.0.0.1:${fePort}${path}`);
    await res.body.text();
  }
  // The last response's counters are written as it completes; read until they are all in.
  let text = '';
  for (let i = 0; i < 50; i++) {
    text = await (await request(`http://127.0.0.1:${statsPort}/metrics`)).body.text();
    if (/switchyard_server_response_time_seconds_count\{backend="api",server="s1"\} 30/.test(text)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const { samples } = parse(text, t);
  const one = (name: string, labels: Record<string, string>): number | undefined =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  t.equal(one('switchyard_frontend_requests_total', { frontend: 'web' }), 30);
  t.equal(one('switchyard_frontend_responses_total', { frontend: 'web', code: '2xx' }), 20);
  t.equal(one('switchyard_frontend_responses_total', { frontend: 'web', code: '4xx' }), 7);
  t.equal(one('switchyard_frontend_responses_total', { frontend: 'web', code: '5xx' }), 3);
  t.equal(one('switchyard_server_responses_total', { backend: 'api', server: 's1', code: '2xx' }), 20);
  t.equal(one('switchyard_backend_loadbalanced_total', { backend: 'api' }), 30);
  t.equal(one('switchyard_server_response_time_seconds_count', { backend: 'api', server: 's1' }), 30);
  t.ok(one('switchyard_frontend_bytes_in_total', { frontend: 'web' })! > 30 * 16, 'request bytes');
  t.ok(one('switchyard_frontend_bytes_out_total', { frontend: 'web' })! >= 30 * 5, 'response bytes');
  t.equal(one('switchyard_server_active', { backend: 'api', server: 's1' }), 0, 'nothing in flight');
});

t.test('process metrics from prom-client: NaN is written `NaN` (its own writer says `Nan`, which strict parsers refuse)', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  // The event-loop lag gauges are NaN until their first sample; a gauge set to NaN stands in.
  new Gauge({ name: 'test_not_a_number', help: 'a NaN sample', registers: [f.stats.metrics.processRegistry] }).set(Number.NaN);
  const text = await (await request(`${f.base}/metrics`)).body.text();
  t.match(text, /^test_not_a_number NaN$/m);
  t.notMatch(text, / Nan$/m);
  parse(text, t);
});

t.test('switchyard_last_reload_success: absent before any reload, then 1 or 0', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const scrape = async () => (await (await fetch(`${f.base}/metrics`)).text()).split('\n').filter((l) => l.startsWith('switchyard_last_reload_success '));
  t.same(await scrape(), [], 'no sample before a reload');
  await f.host.reload();
  t.same(await scrape(), ['switchyard_last_reload_success 1']);
  f.host.nextReload = (rt) => ({ ok: false, at: Date.now(), errors: ['bad'], generation: rt.generation });
  await f.host.reload();
  t.same(await scrape(), ['switchyard_last_reload_success 0']);
});

t.test("switchyard_uncaught_exceptions_total reports the host's count", async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const scrape = async () => (await (await fetch(`${f.base}/metrics`)).text()).split('\n').find((l) => l.startsWith('switchyard_uncaught_exceptions_total'));
  t.equal(await scrape(), 'switchyard_uncaught_exceptions_total 0');
  (f.host as unknown as { uncaught: number }).uncaught = 3;
  t.equal(await scrape(), 'switchyard_uncaught_exceptions_total 3', 'follows the count');
});

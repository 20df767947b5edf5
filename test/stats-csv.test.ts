import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { CSV_HEADER, COLUMNS } from '../src/stats/columns.js';
import { parseCsv, proxiedOrigin, startFixture } from './support/stats-fixtures.js';

const FIXTURE = readFileSync(new URL('./fixtures/haproxy-2.6-stat-header.csv', import.meta.url), 'utf8');

t.test('the header is HAProxy 2.6 show stat header, byte for byte', async (t) => {
  t.equal(CSV_HEADER, FIXTURE);
  t.equal(COLUMNS.length, 128);
  const f = await startFixture();
  t.teardown(f.close);
  for (const path of ['/stats;csv', '/stats;csv;norefresh', '/stats?format=csv', '/;csv']) {
    const res = await request(`${f.base}${path}`);
    t.equal(res.statusCode, 200, path);
    t.match(res.headers['content-type'], /^text\/csv/, path);
    const body = await res.body.text();
    t.ok(body.startsWith(FIXTURE), `${path} starts with the fixture header`);
  }
});

t.test('rows: HAProxy order, types, statuses and every cell present', async (t) => {
  const f = await startFixture();
  t.teardown(f.close);
  const api = f.runtime.backends.get('api')!;
  const [s1, s2, s3] = api.servers;
  // s1: checked and fully UP; s2: UP but one check failed (UP 2/3); s3: DOWN, one success seen (DOWN 1/2).
  for (const s of api.servers) {
    s.check.code = 'L7OK';
    s.check.reason = 'status 200';
    s.check.durationMs = 3.4;
    s.check.at = Date.now();
    s.check.health = 4;
  }
  s2!.check.health = 3;
  s3!.checkDown = true;
  s3!.check.health = 1;
  s3!.check.code = 'L7STS';
  s3!.check.reason = 'status 503';
  s3!.check.failures = 3;
  s3!.check.downTransitions = 1;
  s3!.noteChange('health check: status 503');
  const pg = f.runtime.backends.get('pg')!;
  pg.servers[0]!.admin = 'maint';
  pg.servers[0]!.noteChange('admin: maint');
  pg.servers[1]!.admin = 'drain';
  pg.servers[1]!.noteChange('admin: drain');

  const body = await (await request(`${f.base}/stats;csv`)).body.text();
  const { header, rows } = parseCsv(body);
  t.equal(header.length, 128);
  for (const line of body.trim().split('\n').slice(1)) t.equal(line.split(',').length, 129, 'every row has 128 cells and a trailing comma');
  t.same(
    rows.map((r) => `${r.pxname}/${r.svname}/${r.type}`),
    ['web/FRONTEND/0', 'db/FRONTEND/0', 'api/s1/2', 'api/s2/2', 'api/s3/2', 'api/BACKEND/1', 'pg/p1/2', 'pg/p2/2', 'pg/BACKEND/1'],
  );
  const by = (px: string, sv: string) => rows.find((r) => r.pxname === px && r.svname === sv)!;
  t.equal(by('web', 'FRONTEND').status, 'OPEN');
  t.equal(by('web', 'FRONTEND').slim, '500');
  t.equal(by('web', 'FRONTEND').mode, 'http');
  t.equal(by('db', 'FRONTEND').hrsp_2xx, '', 'HTTP columns empty in TCP mode');
  t.equal(by('api', 's1').status, 'UP');
  t.equal(by('api', 's2').status, 'UP 2/3');
  t.equal(by('api', 's3').status, 'DOWN 1/2');
  t.equal(by('api', 's3').check_status, 'L7STS');
  t.equal(by('api', 's3').check_code, '503');
  t.equal(by('api', 's3').check_desc, 'Layer7 wrong status');
  t.equal(by('api', 's3').chkfail, '3');
  t.equal(by('api', 's3').chkdown, '1');
  t.equal(by('api', 's1').check_duration, '3');
  t.equal(by('api', 's1').check_rise, '2');
  t.equal(by('api', 's1').check_fall, '3');
  t.equal(by('api', 's1').addr, '127.0.0.1:9001');
  t.equal(by('api', 's1').cookie, s1!.stickyId);
  t.equal(by('api', 's1').sid, '1');
  t.equal(by('api', 's3').sid, '3');
  t.equal(by('api', 's1').iid, by('api', 'BACKEND').iid);
  t.equal(by('api', 'BACKEND').status, 'UP');
  t.equal(by('api', 'BACKEND').act, '2', 'two active servers UP');
  t.equal(by('api', 'BACKEND').algo, 'round-robin');
  t.equal(by('api', 'BACKEND').cookie, 'SY');
  t.equal(by('pg', 'p1').status, 'MAINT');
  t.equal(by('pg', 'p2').status, 'DRAIN');
  t.equal(by('pg', 'p1').check_status, '', 'no check configured: empty');
  t.equal(by('pg', 'BACKEND').status, 'DOWN', 'no server may take traffic');
  t.equal(by('api', 's1')['-'], '-');
  t.equal(by('api', 's1').agent_status, '');

  s1!.weight = 0;
  const again = parseCsv(await (await request(`${f.base}/stats;csv`)).body.text()).rows;
  t.equal(again.find((r) => r.svname === 's1')!.status, 'NOLB', 'UP with weight 0 is NOLB');
});

t.test('true counters, lastchg in seconds, rate from the 1 s sampler', async (t) => {
  const f = await startFixture(undefined, { rateIntervalMs: 60_000 });
  t.teardown(f.close);
  const web = f.runtime.frontends.get('web')!;
  const api = f.runtime.backends.get('api')!;
  const s2 = api.servers[1]!;
  const now = Date.now();
  for (let i = 0; i < 7; i++) {
    web.counters.sessionOpened(now);
    api.opened(s2, now);
    web.counters.reqTot++;
    s2.counters.reqTot++;
    api.counters.reqTot++;
    for (const c of [web.counters, api.counters, s2.counters]) c.response(i < 5 ? 200 : 503, 12);
  }
  api.closed(s2);
  web.counters.bin += 1234;
  web.counters.bout += 98765;
  s2.counters.econ = 2;
  s2.counters.wretr = 1;
  s2.stateSince = now - 90_000;
  f.stats.tracker.tick(Date.now() + 1000);

  const rows = parseCsv(await (await request(`${f.base}/stats;csv`)).body.text()).rows;
  const fe = rows.find((r) => r.svname === 'FRONTEND' && r.pxname === 'web')!;
  const sv = rows.find((r) => r.svname === 's2')!;
  const be = rows.find((r) => r.svname === 'BACKEND' && r.pxname === 'api')!;
  t.match(fe, { scur: '7', smax: '7', stot: '7', bin: '1234', bout: '98765', req_tot: '7', hrsp_2xx: '5', hrsp_5xx: '2', conn_tot: '7' });
  t.match(sv, {
    scur: '6',
    smax: '7',
    stot: '7',
    lbtot: '7',
    req_tot: '7',
    hrsp_2xx: '5',
    hrsp_5xx: '2',
    econ: '2',
    wretr: '1',
    ttime: '12',
    lastchg: '90',
    lastsess: '0',
  });
  t.match(be, { scur: '6', stot: '7', lbtot: '7', hrsp_2xx: '5', hrsp_5xx: '2', ttime: '12' });
  t.equal(fe.rate, '7', 'sessions in the last sampled second');
  t.equal(fe.rate_max, '7');
  t.equal(fe.req_rate, '7');
  t.equal(rows.find((r) => r.svname === 's1')!.lastsess, '-1', 'never used');
});

t.test('counters match the traffic sent through a real switchyard', async (t) => {
  const { fePort, statsPort } = await proxiedOrigin(t);
  for (let i = 0; i < 20; i++) {
    const res = await request(`http://127.0.0.1:${fePort}${i % 4 === 0 ? '/missing' : '/'}`);
    await res.body.text();
  }
  await new Promise((r) => setTimeout(r, 50));
  const rows = parseCsv(await (await request(`http://127.0.0.1:${statsPort}/stats;csv`)).body.text()).rows;
  const fe = rows.find((r) => r.svname === 'FRONTEND')!;
  const sv = rows.find((r) => r.svname === 's1')!;
  const be = rows.find((r) => r.svname === 'BACKEND')!;
  t.equal(fe.req_tot, '20');
  t.equal(fe.hrsp_2xx, '15');
  t.equal(fe.hrsp_4xx, '5');
  t.equal(sv.req_tot, '20');
  t.equal(sv.hrsp_2xx, '15');
  t.equal(sv.hrsp_4xx, '5');
  t.equal(sv.scur, '0');
  t.equal(be.req_tot, '20');
  t.equal(be.lbtot, '20');
  t.ok(Number(fe.bin) > 20 * 16, 'request bytes counted');
  t.ok(Number(fe.bout) >= 20 * 5, 'response bytes counted');
  // Server and backend bytes: what went to the server (heads with our forwarding lines, so more
  // than the client sent) and what came back from it.
  t.ok(Number(sv.bin) > Number(fe.bin), `server bytes in (${sv.bin}) include the added X-Forwarded-* lines (client sent ${fe.bin})`);
  t.ok(Number(sv.bout) >= 20 * 5, 'server bytes out counted');
  t.equal(be.bin, sv.bin, "backend bytes in = its one server's");
  t.equal(be.bout, sv.bout, "backend bytes out = its one server's");
});

t.test('the fixture is what the installed HAProxy 2.6 prints for `show stat`, and our rows have its shape', async (t) => {
  // Debian's haproxy, started for real on unix sockets only (no port): its stats socket answers
  // `show stat`, whose header must be the fixture byte for byte.
  const HAPROXY = '/usr/sbin/haproxy';
  t.ok(existsSync(HAPROXY), `${HAPROXY} is installed (scripts/ensure-system-deps.sh installs it)`);
  if (!existsSync(HAPROXY)) return;
  const version = spawnSync(HAPROXY, ['-v'], { encoding: 'utf8' }).stdout;
  t.match(version, /^HAProxy version 2\.6\./, 'HAProxy 2.6');
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-haproxy-'));
  const sock = join(dir, 'admin.sock');
  writeFileSync(
    join(dir, 'haproxy.cfg'),
    [
      'global',
      `  stats socket ${sock} mode 600 level admin`,
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 5s',
      '  timeout server 5s',
      'frontend web',
      `  bind ${join(dir, 'web.sock')}`,
      '  default_backend api',
      'backend api',
      '  server s1 127.0.0.1:9 disabled',
    ].join('\n') + '\n',
  );
  const child = spawn(HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  t.teardown(() => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  const showStat = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = connect(sock);
      let out = '';
      s.on('connect', () => s.write('show stat\n'));
      s.on('data', (d) => {
        out += d.toString();
      });
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
  let text = '';
  for (let i = 0; i < 100 && text === '' && child.exitCode === null; i++) {
    text = await showStat().catch(async () => {
      await new Promise((r) => setTimeout(r, 50));
      return '';
    });
  }
  t.not(text, '', `haproxy answered on its stats socket (stderr: ${stderr.trim()})`);
  const lines = text.split('\n').filter((l) => l !== '');
  t.equal(`${lines[0]}\n`, FIXTURE, 'HAProxy 2.6 prints the fixture header');
  t.same(
    lines.slice(1).map((l) => l.split(',').slice(0, 2).join('/')),
    ['web/FRONTEND', 'api/s1', 'api/BACKEND'],
  );
  for (const line of lines.slice(1)) t.equal(line.split(',').length, 129, 'HAProxy rows: 128 cells and a trailing comma, like ours');
  // Cells HAProxy always fills on a FRONTEND row are filled in ours too (the tools read them).
  const theirs = parseCsv(text).rows.find((r) => r.svname === 'FRONTEND')!;
  const f = await startFixture();
  t.teardown(f.close);
  const ours = parseCsv(await (await request(`${f.base}/stats;csv`)).body.text()).rows.find((r) => r.svname === 'FRONTEND')!;
  for (const key of [
    'scur',
    'smax',
    'stot',
    'bin',
    'bout',
    'dreq',
    'dresp',
    'ereq',
    'status',
    'pid',
    'iid',
    'sid',
    'type',
    'rate',
    'rate_max',
    'hrsp_2xx',
    'req_rate',
    'req_tot',
    'mode',
    'conn_rate',
    'conn_tot',
  ]) {
    t.not(theirs[key], '', `HAProxy fills ${key}`);
    t.not(ours[key], '', `we fill ${key}`);
  }
  t.equal(ours.status, theirs.status, 'FRONTEND status OPEN');
  t.equal(ours.type, theirs.type, 'FRONTEND type 0');
});

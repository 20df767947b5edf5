// TLS in the stats: handshakes by version, resumptions, failures by reason and certificate
// expiry per frontend, in /api/stats and /metrics (a gauge of days left), and on the page's
// TLS card (rendered by the page's own code from the same JSON); no key material anywhere.
import t from 'tap';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { request } from 'undici';
import { pino } from 'pino';
import { normalizeConfig } from '../src/config/load.js';
import { startStats } from '../src/stats/listener.js';
import { renderTls } from '../src/stats/page/frontends.js';
import type { StatsJson } from '../src/stats/page/types.js';
import { startSwitchyard } from '../src/switchyard.js';
import { httpServer } from './support/proxy-harness.js';
import { makeCa } from './support/tls-certs.js';

const ca = makeCa();
t.teardown(() => ca.cleanup());
ca.issue('soon', ['soon.test'], { days: 5 }); // soon.pem, soon.key: the config below names the files
const later = ca.issue('later', ['later.test'], { days: 30 });

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('handshakes, versions, failures and expiry in JSON, Prometheus and the page', async (t) => {
  const srv = await httpServer('a');
  const logger = pino({ level: 'silent' });
  let stats: Awaited<ReturnType<typeof startStats>> | null = null;
  const config = normalizeConfig(
    {
      stats: { bind: '127.0.0.1:0' },
      frontends: {
        web: {
          bind: '127.0.0.1:0',
          backend: 'api',
          tls: {
            certificates: [
              { cert: 'later.pem', key: 'later.key' },
              { cert: 'soon.pem', key: 'soon.key' },
            ],
          },
        },
        plain: { bind: '127.0.0.1:0', backend: 'api' },
      },
      backends: { api: { servers: [{ address: srv.address }] } },
    },
    join(ca.dir, 'switchyard.yaml'),
  );
  const sy = await startSwitchyard({
    config,
    logger,
    watch: false,
    components: async (s) => [(stats = await startStats(s, s.runtime().config.stats, logger))],
  });
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const base = `http://127.0.0.1:${stats!.address().port}`;

  const connectTls = (options: object) =>
    new Promise<void>((resolve) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, ...options }, () => {
        s.end();
        resolve();
      });
      s.on('error', () => resolve());
    });
  await connectTls({ servername: 'later.test' });
  await connectTls({ servername: 'soon.test', maxVersion: 'TLSv1.2' });
  await new Promise<void>((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\n\r\n'));
    s.on('error', () => {});
    s.on('close', () => resolve());
  });

  let web:
    | {
        tls: {
          handshakes: number;
          versions: Record<string, number>;
          failures: Record<string, number>;
          certificates: { file: string; names: string[]; daysLeft: number }[];
        } | null;
      }
    | undefined;
  await until('the JSON counts both handshakes and the failure', async () => {
    const json = (await (await request(`${base}/api/stats`)).body.json()) as { frontends: { name: string; tls: NonNullable<typeof web>['tls'] }[] };
    web = json.frontends.find((f) => f.name === 'web');
    t.equal(json.frontends.find((f) => f.name === 'plain')!.tls, null, 'a plain frontend has no TLS block');
    return web?.tls?.handshakes === 2 && web.tls.failures.protocol === 1;
  });
  const tls = web!.tls!;
  t.same(tls.versions, { 'TLSv1.2': 1, 'TLSv1.3': 1 });
  t.same(
    tls.certificates.map((c) => [c.names, c.daysLeft]),
    [
      [['later.test'], 29],
      [['soon.test'], 4],
    ],
  );
  t.equal(tls.certificates[0]!.file, later.certFile);

  const metrics = await (await request(`${base}/metrics`)).body.text();
  t.match(metrics, /switchyard_frontend_tls_handshakes_total\{frontend="web",version="TLSv1\.3"\} 1/);
  t.match(metrics, /switchyard_frontend_tls_handshakes_total\{frontend="web",version="TLSv1\.2"\} 1/);
  t.match(metrics, /switchyard_frontend_tls_handshake_failures_total\{frontend="web",reason="protocol"\} 1/);
  const days = /switchyard_frontend_tls_certificate_expiry_days\{frontend="web",certificate="soon\.pem",name="soon\.test"\} ([\d.]+)/.exec(metrics);
  t.ok(days !== null, 'an expiry gauge per certificate');
  t.ok(Number(days![1]) > 4 && Number(days![1]) <= 5, `about 5 days left: ${days![1]}`);

  // The page renders the card from the same JSON with its own code.
  const page = await (await request(`${base}/`)).body.text();
  const html = renderTls({ frontends: [{ name: 'web', tls }] } as unknown as StatsJson, Date.now());
  t.match(html, /<h2>TLS<\/h2>/);
  t.match(html, /protocol 1/);
  t.match(html, /<span class="bad">soon\.test · 4 days left<\/span>/, 'a certificate close to expiry stands out');

  const everything = JSON.stringify(await (await request(`${base}/api/stats`)).body.json()) + metrics + page;
  t.notMatch(everything, /PRIVATE KEY|BEGIN CERTIFICATE/, 'no key or certificate material in the stats');
});

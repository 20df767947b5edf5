// Discovery in the stats: a backend fed by Consul shows its service, the servers of the last
// answer, answers applied, consecutive and total failures, the last error and the last good
// answer, in /api/stats, in /metrics and on the page's backend card; a backend of static
// servers shows none. The real `consul` client runs against the Consul test server, which is
// stopped (connections refused) and restarted to make the source fail and come back.
import t from 'tap';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { request } from 'undici';
import { pino } from 'pino';
import { normalizeConfig } from '../src/config/load.js';
import { ConsulDiscovery } from '../src/discovery/consul.js';
import { startStats } from '../src/stats/listener.js';
import { renderBackend } from '../src/stats/page/backends.js';
import type { BackendJson, StatsJson } from '../src/stats/page/types.js';
import { startSwitchyard } from '../src/switchyard.js';
import { ConsulTestServer } from './support/consul-server.js';
import { waitFor } from './support/polling.js';

const logger = pino({ level: 'silent' });

function rawConfig(consulAddress: string, discovered: boolean): Record<string, unknown> {
  return {
    stats: { bind: '127.0.0.1:0' },
    consul: { address: consulAddress, wait: '60s' },
    frontends: { web: { bind: '127.0.0.1:0', backend: 'api' } },
    backends: {
      api: discovered ? { discovery: { consul: { service: 'mcp-files' } } } : { servers: [{ address: '127.0.0.1:9' }] },
      fixed: { servers: [{ address: '127.0.0.1:9' }] },
    },
  };
}

t.test('a discovered backend shows its source in JSON, Prometheus and the page; failures and recovery included', async (t) => {
  const consul = await ConsulTestServer.start();
  consul.addService({ id: 'f1', name: 'mcp-files', address: '127.0.0.1', port: 11101 });
  consul.addService({ id: 'f2', name: 'mcp-files', address: '127.0.0.1', port: 11102 });
  const source = join(tmpdir(), 'switchyard-discovery-stats.yaml');
  const config = normalizeConfig(rawConfig(consul.address, true), source);
  let stats: Awaited<ReturnType<typeof startStats>> | null = null;
  const sy = await startSwitchyard({
    config,
    logger,
    watch: false,
    components: async (s) => [
      new ConsulDiscovery(s.runtime().config.consul, logger, { backoffBaseMs: 50, backoffCapMs: 200 }),
      (stats = await startStats(s, s.runtime().config.stats, logger)),
    ],
  });
  t.teardown(async () => {
    await sy.stop(200);
    await consul.close();
  });
  const base = `http://127.0.0.1:${stats!.address().port}`;
  const json = async () => (await (await request(`${base}/api/stats`)).body.json()) as StatsJson;
  const api = async (): Promise<BackendJson> => (await json()).backends.find((b) => b.name === 'api')!;
  const metrics = async () => (await request(`${base}/metrics`)).body.text();
  const sample = (text: string, name: string): number | null => {
    const m = new RegExp(`^${name}\\{backend="api",provider="consul",service="mcp-files"\\} (\\S+)$`, 'm').exec(text);
    return m === null ? null : Number(m[1]);
  };

  const first = await waitFor('the first answer in the stats', async () => {
    const b = await api();
    return b.discovery !== null && b.discovery.lastSuccessAt !== null && b.discovery.servers === 2 ? b : undefined;
  });
  const d = first.discovery!;
  t.match(d, { provider: 'consul', service: 'mcp-files', servers: 2, failures: 0, errors: 0, lastError: null });
  t.ok(d.applied >= 1, `answers applied: ${d.applied}`);
  t.not(d.index, '0', 'the watch follows an index');
  t.equal((await json()).backends.find((b) => b.name === 'fixed')!.discovery, null, 'a backend of static servers has no discovery block');

  let text = await metrics();
  t.equal(sample(text, 'switchyard_backend_discovery_servers'), 2);
  t.equal(sample(text, 'switchyard_backend_discovery_errors_total'), 0);
  t.equal(sample(text, 'switchyard_backend_discovery_failing'), 0);
  t.ok((sample(text, 'switchyard_backend_discovery_updates_total') ?? 0) >= 1, 'updates counted');
  const lastSeconds = sample(text, 'switchyard_backend_discovery_last_success_timestamp_seconds');
  t.equal(lastSeconds, d.lastSuccessAt! / 1000, 'the last good answer, in Unix seconds');
  t.notMatch(text, /switchyard_backend_discovery_servers\{backend="fixed"/, 'no discovery samples for a static backend');

  const healthy = renderBackend(first, undefined, { now: Date.now(), admin: false, strategies: [] });
  t.match(healthy, /<span data-k="discovery">consul <b>mcp-files<\/b> · 2 servers · last answer/);
  t.notMatch(healthy, /failing/);

  // Consul goes away: the watch fails, says why, and the backend keeps the servers it had.
  await consul.stop();
  const failing = await waitFor('failures in the stats', async () => {
    const b = await api();
    return b.discovery !== null && b.discovery.failures >= 2 ? b : undefined;
  });
  t.equal(failing.discovery!.servers, 2, 'the last answer still counts');
  t.equal(failing.servers.length, 2, 'the backend keeps its servers');
  t.ok(failing.discovery!.errors >= failing.discovery!.failures, 'errors over the life of the watch');
  t.match(failing.discovery!.lastError, /ECONNREFUSED|connect|socket|closed/i, `the error is named: ${failing.discovery!.lastError}`);
  t.equal(failing.discovery!.lastSuccessAt, d.lastSuccessAt, 'the last good answer is the one before the outage');
  text = await metrics();
  t.ok((sample(text, 'switchyard_backend_discovery_failing') ?? 0) >= 2, 'the failing gauge counts consecutive failures');
  t.ok((sample(text, 'switchyard_backend_discovery_errors_total') ?? 0) >= 2, 'errors_total counts them');
  const down = renderBackend(failing, undefined, { now: Date.now(), admin: false, strategies: [] });
  t.match(down, /<b class="bad" title="[^"]+">failing ×\d+<\/b>/, 'the page shows the source failing');

  // Back: the next answer clears the failure count and the error.
  await consul.restart();
  const back = await waitFor('recovery in the stats', async () => {
    const b = await api();
    return b.discovery !== null && b.discovery.failures === 0 && b.discovery.lastSuccessAt! > d.lastSuccessAt! ? b : undefined;
  });
  t.equal(back.discovery!.lastError, null);
  t.ok(back.discovery!.errors >= 2, 'the total stays');

  // A reload that gives the backend static servers instead: no discovery block any more.
  const result = await sy.apply(normalizeConfig(rawConfig(consul.address, false), source));
  t.ok(result.ok, result.errors.join('; '));
  t.equal((await api()).discovery, null, 'no discovery block once the config has none');
  t.notMatch(await metrics(), /^switchyard_backend_discovery_\w+\{/m, 'and no discovery samples');
});

// Self-registration against the Consul test server, with the real `consul` client.
import t from 'tap';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ConsulRegistration, deregisterSelf, registerSelf, selfRegistration } from '../src/discovery/register.js';
import type { ConsulRegisterConfig } from '../src/config/types.js';
import { ConsulTestServer } from './support/consul-server.js';
import { captureLogger, consulConfig, testConfig, testRuntime, waitFor } from './support/consul-fixtures.js';

const REGISTER: ConsulRegisterConfig = { name: 'switchyard', id: 'switchyard-lb1', address: '127.0.0.1', port: null, tags: ['lb'], checkIntervalMs: 100 };

t.test('registerSelf / deregisterSelf: definition, check on stats /health, token', async (t) => {
  // A stand-in stats listener answering /health.
  const stats = createServer((req, res) => {
    res.statusCode = req.url === '/health' ? 200 : 404;
    res.end('{"status":"ok"}');
  });
  await new Promise<void>((r) => stats.listen(0, '127.0.0.1', r));
  const statsPort = (stats.address() as AddressInfo).port;
  const consul = await ConsulTestServer.start({ token: 'tok' });
  t.teardown(async () => {
    await consul.close();
    await new Promise((r) => stats.close(r));
  });
  const { logger, lines } = captureLogger();
  const cfg = consulConfig(consul.address, { token: 'tok', register: REGISTER });

  t.equal(await registerSelf(cfg, { host: '0.0.0.0', port: statsPort }, { logger }), true);
  t.match(consul.registrations.at(-1), {
    ID: 'switchyard-lb1',
    Name: 'switchyard',
    Address: '127.0.0.1',
    Port: statsPort,
    Tags: ['lb'],
    Check: { HTTP: `http://127.0.0.1:${statsPort}/health`, Interval: '100ms', DeregisterCriticalServiceAfter: '1m' },
  });
  t.equal(consul.requests.at(-1)!.headers['x-consul-token'], 'tok');
  const agent = (await (await fetch(`${consul.address}/v1/agent/services`, { headers: { 'X-Consul-Token': 'tok' } })).json()) as Record<string, unknown>;
  t.ok(agent['switchyard-lb1'], 'listed by /v1/agent/services');
  // The agent runs the check against the stats listener: passing.
  await waitFor(() => consul.requests.length > 0 && stats.listening, 10_000);
  let status = '';
  for (let i = 0; i < 50 && status !== 'passing'; i++) {
    const body = (await (await fetch(`${consul.address}/v1/health/service/switchyard`, { headers: { 'X-Consul-Token': 'tok' } })).json()) as any[];
    status = body[0]?.Checks[1].Status;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(status, 'passing', 'the check on /health passes');

  t.equal(await deregisterSelf(cfg, { logger }), true);
  t.same(consul.deregistrations, ['switchyard-lb1']);
  t.ok(lines.some((l) => l.msg === 'registered with consul'));
  t.ok(lines.some((l) => l.msg === 'deregistered from consul'));
});

t.test('errors are logged, never thrown', async (t) => {
  const consul = await ConsulTestServer.start({ token: 'tok' });
  t.teardown(() => consul.close());
  const { logger, lines } = captureLogger();
  const noToken = consulConfig(consul.address, { register: REGISTER });
  t.equal(await registerSelf(noToken, { host: '127.0.0.1', port: 11099 }, { logger }), false, '403: false');
  t.ok(lines.some((l) => l.level === 50 && /status 403/.test(String(l.err))));
  await consul.stop();
  t.equal(await registerSelf(noToken, { host: '127.0.0.1', port: 11099 }, { logger }), false, 'unreachable: false');
  t.equal(await deregisterSelf(noToken, { logger }), false);
  t.equal(await registerSelf(consulConfig(consul.address), { host: '127.0.0.1', port: 1 }, { logger }), false, 'no register block: nothing to do');
});

t.test('selfRegistration: check address from advertised address, bind host or 127.0.0.1', async (t) => {
  const base = { ...REGISTER, address: null, id: '' };
  t.equal(selfRegistration(base, { host: '0.0.0.0', port: 11099 }).Check.HTTP, 'http://127.0.0.1:11099/health');
  t.equal(selfRegistration(base, { host: '10.0.0.5', port: 11099 }).Check.HTTP, 'http://10.0.0.5:11099/health');
  t.equal(selfRegistration(base, { host: '::', port: 11099 }).Check.HTTP, 'http://127.0.0.1:11099/health');
  t.equal(selfRegistration({ ...base, address: '10.0.0.2' }, { host: '0.0.0.0', port: 11099 }).Check.HTTP, 'http://10.0.0.2:11099/health');
  t.equal(selfRegistration({ ...base, address: 'fd00::2' }, { host: '::', port: 11099 }).Check.HTTP, 'http://[fd00::2]:11099/health');
  const def = selfRegistration({ ...base, port: 8080, checkIntervalMs: 10_000 }, { host: '0.0.0.0', port: 11099 });
  t.equal(def.ID, 'switchyard', 'id defaults to the name');
  t.equal(def.Port, 8080, 'advertised port');
  t.equal(def.Check.Interval, '10s');
  t.notOk('Address' in def, 'no address: the agent uses its own');
});

t.test('ConsulRegistration component: registers on sync, deregisters on stop', async (t) => {
  const consul = await ConsulTestServer.start({ runChecks: false });
  t.teardown(() => consul.close());
  const { logger } = captureLogger();
  const cfg = consulConfig(consul.address, { register: REGISTER });
  const component = new ConsulRegistration({ host: '127.0.0.1', port: 11099 }, logger);
  component.sync(testRuntime(testConfig(cfg, [])));
  await waitFor(() => consul.registrations.length === 1, 10_000, 'registered');
  component.sync(testRuntime(testConfig(cfg, []))); // same settings: nothing sent
  // A reload renames the registration: old one deregistered, new one registered.
  const renamed = consulConfig(consul.address, { register: { ...REGISTER, id: 'lb2', name: 'edge' } });
  component.sync(testRuntime(testConfig(renamed, [])));
  await waitFor(() => consul.registrations.length === 2, 10_000, 're-registered');
  t.same(consul.deregistrations, ['switchyard-lb1']);
  await component.stop();
  t.same(consul.deregistrations, ['switchyard-lb1', 'lb2']);
  t.same(
    consul.registrations.map((r) => r.ID),
    ['switchyard-lb1', 'lb2'],
  );
});

t.test('ConsulRegistration: an agent that is not up yet is retried until the registration lands', async (t) => {
  const consul = await ConsulTestServer.start({ runChecks: false });
  t.teardown(() => consul.close());
  await consul.stop(); // the agent is down when the balancer starts (compose: depends_on does not wait)
  const { logger, lines } = captureLogger();
  const cfg = consulConfig(consul.address, { register: REGISTER });
  const component = new ConsulRegistration({ host: '127.0.0.1', port: 11099 }, logger, { backoff: { baseMs: 50, capMs: 200 } });
  component.sync(testRuntime(testConfig(cfg, [])));
  await waitFor(() => lines.filter((l) => l.msg === 'consul registration will be retried').length >= 3, 10_000, 'retries');
  const retries = lines.filter((l) => l.msg === 'consul registration will be retried').map((l) => l.retryInMs as number);
  t.ok(retries[1]! >= retries[0]! / 2 && retries.every((d) => d <= 200), `retry delays grow, capped: ${retries.join(', ')} ms`);
  t.equal(consul.registrations.length, 0);
  await consul.restart();
  await waitFor(() => consul.registrations.length === 1, 10_000, 'registered once the agent is up');
  t.equal(consul.registrations[0]!.ID, 'switchyard-lb1');
  const n = lines.filter((l) => l.msg === 'consul registration will be retried').length;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(lines.filter((l) => l.msg === 'consul registration will be retried').length, n, 'no retry after success');
  t.equal(consul.registrations.length, 1, 'registered once');
  await component.stop();
  t.same(consul.deregistrations, ['switchyard-lb1']);
});

t.test('ConsulRegistration: a 403 is retried; a reload with the token registers; nothing is sent after stop', async (t) => {
  const consul = await ConsulTestServer.start({ runChecks: false, token: 'tok' });
  t.teardown(() => consul.close());
  const { logger } = captureLogger();
  const component = new ConsulRegistration({ host: '127.0.0.1', port: 11099 }, logger, { backoff: { baseMs: 30, capMs: 60 } });
  component.sync(testRuntime(testConfig(consulConfig(consul.address, { register: REGISTER }), []))); // no token: 403
  await waitFor(() => consul.requests.length >= 2, 10_000, 'retried');
  // A reload brings the right token: registered at once with it.
  component.sync(testRuntime(testConfig(consulConfig(consul.address, { register: REGISTER, token: 'tok' }), [])));
  await waitFor(
    () => consul.registrations.some((r) => r.ID === 'switchyard-lb1') && consul.requests.at(-1)!.token === 'tok',
    10_000,
    'registered with the token',
  );
  await component.stop();
  t.same(consul.deregistrations, ['switchyard-lb1']);
  const after = consul.requests.length;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(consul.requests.length, after, 'nothing sent after stop');
});

t.test('the real process: registered at start, deregistered on SIGTERM, exit 0', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { deadPort } = await import('./support/proxy-harness.js');
  const consul = await ConsulTestServer.start({ token: 'tok' });
  t.teardown(() => consul.close());
  const statsPort = await deadPort();
  const httpPort = await deadPort();
  const dir = mkdtempSync(join(tmpdir(), 'sy-register-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:${statsPort} }
consul:
  address: ${consul.address}
  token: \${TEST_CONSUL_TOKEN}
  register: { name: switchyard, id: sy-test, address: 127.0.0.1, check_interval: 100ms }
logging: { level: info }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api: { mode: http, servers: [ { address: 127.0.0.1:1 } ] }
`,
  );
  const { child, output, exited } = await runCli(t, file, { TEST_CONSUL_TOKEN: 'tok' });

  await waitFor(() => consul.registrations.length > 0, 15_000, `registration (output: ${output()})`);
  t.match(consul.registrations[0], {
    ID: 'sy-test',
    Name: 'switchyard',
    Port: statsPort,
    Check: { HTTP: `http://127.0.0.1:${statsPort}/health`, Interval: '100ms' },
  });
  t.equal(
    consul.requests.find((r) => r.path === '/v1/agent/service/register')!.headers['x-consul-token'],
    'tok',
    'the token from ${TEST_CONSUL_TOKEN} reached the agent',
  );
  // The agent's check on the stats listener's /health passes while the balancer serves.
  const status = async () => {
    const body = (await (await fetch(`${consul.address}/v1/health/service/switchyard`, { headers: { 'X-Consul-Token': 'tok' } })).json()) as {
      Checks: { Status: string }[];
    }[];
    return body[0]?.Checks[1]?.Status;
  };
  for (let i = 0; i < 100 && (await status()) !== 'passing'; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(await status(), 'passing', 'the agent checks GET /health on the stats listener: passing');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'graceful stop exits 0');
  t.same(consul.deregistrations, ['sy-test'], 'deregistered on SIGTERM');
  const dereg = consul.requests.find((r) => r.path === '/v1/agent/service/deregister/sy-test')!;
  t.equal(dereg.method, 'PUT');
  t.equal(dereg.token, 'tok');
  t.same(
    await (await fetch(`${consul.address}/v1/agent/services`, { headers: { 'X-Consul-Token': 'tok' } })).json(),
    {},
    'the agent lists no switchyard any more',
  );
  t.match(output(), /deregistered from consul/);
});

t.test('SIGTERM: the balancer leaves Consul when the drain starts, not after it', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { deadPort } = await import('./support/proxy-harness.js');
  const consul = await ConsulTestServer.start();
  t.teardown(() => consul.close());
  // A backend that holds /slow until we say so.
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  let arrived!: () => void;
  const slowArrived = new Promise<void>((r) => {
    arrived = r;
  });
  const backend = createServer((req, res) => {
    if (req.url === '/slow') {
      arrived();
      void released.then(() => res.end('slow done'));
      return;
    }
    res.end('ok');
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    release();
    backend.closeAllConnections();
    backend.close();
  });
  const backendPort = (backend.address() as AddressInfo).port;
  const statsPort = await deadPort();
  const httpPort = await deadPort();
  const dir = mkdtempSync(join(tmpdir(), 'sy-register-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:${statsPort} }
shutdown_timeout: 20s
consul:
  address: ${consul.address}
  register: { name: switchyard, id: sy-drain, address: 127.0.0.1, check_interval: 1s }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api: { mode: http, health: { type: none }, servers: [ { address: 127.0.0.1:${backendPort} } ] }
`,
  );
  const { child, output, exited } = await runCli(t, file);
  await waitFor(() => consul.registrations.length > 0, 15_000, `registration (output: ${output()})`);

  const inflight = fetch(`http://127.0.0.1:${httpPort}/slow`).then(async (r) => ({ status: r.status, body: await r.text() }));
  await slowArrived;
  child.kill('SIGTERM');
  await waitFor(() => consul.deregistrations.includes('sy-drain'), 10_000, `deregistration during the drain (output: ${output()})`);
  t.equal(child.exitCode, null, 'deregistered while the in-flight request still runs');
  release();
  t.same(await inflight, { status: 200, body: 'slow done' }, 'the in-flight request finishes after the deregistration');
  t.equal(await exited, 0, 'then the process exits 0');
});

/** The built CLI on `file`, as users run it; killed with the test if still running. */
async function runCli(t: { teardown(fn: () => void): void }, file: string, env: Record<string, string> = {}) {
  const { spawn } = await import('node:child_process');
  const bin = new URL('../bin/switchyard.js', import.meta.url).pathname;
  const child = spawn(process.execPath, [bin, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let text = '';
  child.stdout.on('data', (d) => {
    text += d;
  });
  child.stderr.on('data', (d) => {
    text += d;
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => text, exited };
}

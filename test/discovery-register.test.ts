// Self-registration against the Consul test server, with the real `consul` client.
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConsulRegistration, deregisterSelf, registerSelf, selfRegistration } from '../src/discovery/register.js';
import type { ConsulRegisterConfig } from '../src/config/types.js';
import { ConsulTestServer } from './support/consul-server.js';
import { captureLogger, consulConfig, testConfig, testRuntime, waitFor } from './support/consul-fixtures.js';

const REGISTER: ConsulRegisterConfig = { name: 'switchyard', id: 'switchyard-lb1', address: '127.0.0.1', port: null, tags: ['lb'], checkIntervalMs: 100 };

t.test('registerSelf / deregisterSelf: definition, check on stats /health, token', async (t) => {
  // A stand-in stats listener answering /health.
  const stats = createServer((req, res) => { res.statusCode = req.url === '/health' ? 200 : 404; res.end('{"status":"ok"}'); });
  await new Promise<void>((r) => stats.listen(0, '127.0.0.1', r));
  const statsPort = (stats.address() as AddressInfo).port;
  const consul = await ConsulTestServer.start({ token: 'tok' });
  t.teardown(async () => { await consul.close(); await new Promise((r) => stats.close(r)); });
  const { logger, lines } = captureLogger();
  const cfg = consulConfig(consul.address, { token: 'tok', register: REGISTER });

  t.equal(await registerSelf(cfg, { host: '0.0.0.0', port: statsPort }, { logger }), true);
  t.match(consul.registrations.at(-1), {
    ID: 'switchyard-lb1', Name: 'switchyard', Address: '127.0.0.1', Port: statsPort, Tags: ['lb'],
    Check: { HTTP: `http://127.0.0.1:${statsPort}/health`, Interval: '100ms', DeregisterCriticalServiceAfter: '1m' },
  });
  t.equal(consul.requests.at(-1)!.headers['x-consul-token'], 'tok');
  const agent = await (await fetch(`${consul.address}/v1/agent/services`, { headers: { 'X-Consul-Token': 'tok' } })).json() as Record<string, unknown>;
  t.ok(agent['switchyard-lb1'], 'listed by /v1/agent/services');
  // The agent runs the check against the stats listener: passing.
  await waitFor(() => consul.requests.length > 0 && stats.listening, 100);
  let status = '';
  for (let i = 0; i < 50 && status !== 'passing'; i++) {
    const body = await (await fetch(`${consul.address}/v1/health/service/switchyard`, { headers: { 'X-Consul-Token': 'tok' } })).json() as any[];
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
  await waitFor(() => consul.registrations.length === 1, 1000, 'registered');
  component.sync(testRuntime(testConfig(cfg, []))); // same settings: nothing sent
  // A reload renames the registration: old one deregistered, new one registered.
  const renamed = consulConfig(consul.address, { register: { ...REGISTER, id: 'lb2', name: 'edge' } });
  component.sync(testRuntime(testConfig(renamed, [])));
  await waitFor(() => consul.registrations.length === 2, 1000, 're-registered');
  t.same(consul.deregistrations, ['switchyard-lb1']);
  await component.stop();
  t.same(consul.deregistrations, ['switchyard-lb1', 'lb2']);
  t.same(consul.registrations.map((r) => r.ID), ['switchyard-lb1', 'lb2']);
});

import t, { type Test } from 'tap';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { request } from 'undici';
import { ConsulTestServer } from './support/consul-server.js';
import { deadPort } from './support/proxy-harness.js';
import { tcpExchange, waitFor } from './support/polling.js';

// The MCP network outside a container: the stand-in services (docker/mcp-standin/server.mjs)
// run with node against the Consul test server, register, pass their checks and answer; then
// switchyard runs examples/mcp-network.yaml (ports moved off 11099-11105) in front of them and
// every frontend reaches its service with the strategy the example gives it.

const ROOT = new URL('..', import.meta.url).pathname;
const STANDIN = join(ROOT, 'docker/mcp-standin/server.mjs');
const BIN = join(ROOT, 'bin/switchyard.js');
const EXAMPLE = join(ROOT, 'examples/mcp-network.yaml');

interface Proc {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function run(t: Test, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => output, exit };
}

async function standin(t: Test, consul: ConsulTestServer, name: string, id: string, mode: 'http' | 'tcp' = 'http'): Promise<Proc & { port: number }> {
  const port = await deadPort();
  const p = run(t, [STANDIN], {
    SERVICE_NAME: name,
    SERVICE_ID: id,
    PORT: String(port),
    MODE: mode,
    CONSUL_HTTP_ADDR: consul.address,
    SERVICE_ADDRESS: '127.0.0.1',
  });
  await waitFor(`${id} registered`, () => (p.output().includes('registered in consul') ? true : undefined));
  return { ...p, port };
}

/** Passing instances of a service, as switchyard's discovery asks for them. */
async function passing(consul: ConsulTestServer, service: string): Promise<string[]> {
  const res = await request(`${consul.address}/v1/health/service/${service}?passing=true`);
  return ((await res.body.json()) as { Service: { ID: string } }[]).map((e) => e.Service.ID);
}

async function getJson(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; setCookie: string | null }> {
  const res = await request(url, { headers, reset: true });
  const setCookie = res.headers['set-cookie'];
  return {
    status: res.statusCode,
    body: (await res.body.json()) as Record<string, unknown>,
    setCookie: Array.isArray(setCookie) ? setCookie[0]! : (setCookie ?? null),
  };
}

t.test('an HTTP stand-in registers, passes its Consul check, answers, and deregisters on SIGTERM', async (t) => {
  const consul = await ConsulTestServer.start();
  t.teardown(() => consul.close());
  const files = await standin(t, consul, 'mcp-files', 'files-1');
  const reg = consul.registrations.find((r) => r.ID === 'files-1') as { Name: string; Address: string; Port: number; Check: { HTTP: string } };
  t.match(reg, { Name: 'mcp-files', Address: '127.0.0.1', Port: files.port, Check: { HTTP: `http://127.0.0.1:${files.port}/health` } });
  t.same(
    await waitFor('check passing', async () => ((await passing(consul, 'mcp-files')).length === 1 ? passing(consul, 'mcp-files') : undefined)),
    ['files-1'],
    'Consul ran its HTTP check: passing',
  );

  const base = `http://127.0.0.1:${files.port}`;
  t.match(await getJson(`${base}/health`), { status: 200, body: { status: 'ok', service: 'mcp-files', instance: 'files-1' } });
  t.match(await getJson(`${base}/info`), { status: 200, body: { service: 'mcp-files', mode: 'http', version: 'stand-in' } });
  const echo = await request(`${base}/tools/call`, { method: 'POST', body: 'x'.repeat(42) });
  t.match(await echo.body.json(), { service: 'mcp-files', method: 'POST', path: '/tools/call', bytes: 42 }, 'other requests are echoed');
  const metrics = await (await request(`${base}/metrics`)).body.text();
  t.match(metrics, /mcp_standin_requests_total\{service="mcp-files",instance="files-1"\} \d+/);

  files.child.kill('SIGTERM');
  t.equal(await files.exit, 0, 'exit 0 on SIGTERM');
  t.ok(consul.deregistrations.includes('files-1'), 'deregistered from Consul');
});

t.test('the TCP stand-in (mcp-postgres) echoes bytes, answers HTTP health, has a TCP check', async (t) => {
  const consul = await ConsulTestServer.start();
  t.teardown(() => consul.close());
  const pg = await standin(t, consul, 'mcp-postgres', 'pg-1', 'tcp');
  t.match(
    consul.registrations.find((r) => r.ID === 'pg-1'),
    { Check: { TCP: `127.0.0.1:${pg.port}` } },
    'registered with a TCP check',
  );
  await waitFor('check passing', async () => ((await passing(consul, 'mcp-postgres')).length === 1 ? true : undefined));
  t.equal(await tcpExchange(pg.port, 'hello\0binary\n'), 'hello\0binary\n', 'bytes echoed');
  t.equal(await tcpExchange(pg.port, 'hi'), 'hi', 'a short message is echoed at once');
  const health = await tcpExchange(pg.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(health, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\{"status":"ok","service":"mcp-postgres"/, 'an HTTP request on the TCP port gets /health');
  pg.child.kill('SIGTERM');
  t.equal(await pg.exit, 0);
  t.ok(consul.deregistrations.includes('pg-1'));
});

t.test('examples/mcp-network.yaml passes `switchyard check`', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'check', '--config', EXAMPLE]);
  t.match(stdout, /^ok: 6 frontends \(http 5, tcp 1\), 6 backends, .*6 backends from consul, stats on 0\.0\.0\.0:11099\n$/);
});

t.test('the compose file and the example agree on the services', async (t) => {
  const compose = parseYaml(readFileSync(join(ROOT, 'docker/compose.mcp-network.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; healthcheck?: { test: string[] } }>;
  };
  const example = parseYaml(readFileSync(EXAMPLE, 'utf8')) as {
    frontends: Record<string, { bind: string; backend: string }>;
    backends: Record<string, { mode: string; discovery: { consul: { service: string } } }>;
  };
  const ports = Object.values(example.frontends)
    .map((f) => Number(f.bind.split(':')[1]))
    .sort();
  t.same(ports, [11100, 11101, 11102, 11103, 11104, 11105], 'frontends on 11100-11105');
  for (const [name, b] of Object.entries(example.backends)) {
    const env = compose.services[name]?.environment;
    t.equal(b.discovery.consul.service, name, `${name} is discovered from Consul under its own name`);
    t.equal(env?.SERVICE_NAME, name, `a compose stand-in registers ${name}`);
    t.equal(env?.MODE ?? 'http', b.mode, `${name}: the stand-in speaks what the backend expects (${b.mode})`);
  }
});

t.test('the MCP network example routes every frontend to its service through Consul', async (t) => {
  const consul = await ConsulTestServer.start();
  t.teardown(() => consul.close());
  const http = ['mcp-files', 'mcp-http', 'mcp-ddg', 'mcp-github', 'mcp-memory'];
  const started = await Promise.all([
    standin(t, consul, 'mcp-postgres', 'mcp-postgres-1', 'tcp'),
    standin(t, consul, 'mcp-files', 'mcp-files-2'),
    ...http.map((n) => standin(t, consul, n, `${n}-1`)),
  ]);
  t.equal(started.length, 7);
  for (const name of ['mcp-postgres', ...http]) await waitFor(`${name} passing`, async () => ((await passing(consul, name)).length > 0 ? true : undefined));

  // The example, with its ports moved to free ones and Consul pointed at the test server.
  let text = readFileSync(EXAMPLE, 'utf8');
  const port: Record<number, number> = {};
  for (const p of [11099, 11100, 11101, 11102, 11103, 11104, 11105]) {
    port[p] = await deadPort();
    text = text.replace(`0.0.0.0:${p}`, `127.0.0.1:${port[p]}`);
  }
  const file = join(mkdtempSync(join(tmpdir(), 'sy-mcp-')), 'switchyard.yaml');
  writeFileSync(file, text);
  const sy = run(t, [BIN, '--config', file], { CONSUL_HTTP_ADDR: consul.address, SWITCHYARD_ADMIN_PASSWORD: 'test-secret' });
  // Started: both workers serve (a SIGTERM before this is test/workers.test.ts's business).
  await waitFor('switchyard running', () => (/switchyard [^ ]+ running:/.test(sy.output()) ? true : undefined), 60_000);

  const via = (p: number, path: string, headers: Record<string, string> = {}) => getJson(`http://127.0.0.1:${port[p]}${path}`, headers);
  for (const [i, name] of ['mcp-files', 'mcp-http', 'mcp-ddg', 'mcp-github', 'mcp-memory'].entries()) {
    const r = await via(11101 + i, '/info');
    t.equal(r.body.service, name, `${11101 + i} reaches ${name}`);
  }
  const echoed = await via(11102, '/fetch');
  t.equal(echoed.body.forwarded_for, '127.0.0.1', 'the service sees the client in X-Forwarded-For');
  t.equal(await tcpExchange(port[11100]!, 'SELECT 1;\n'), 'SELECT 1;\n', '11100 tunnels TCP to mcp-postgres');
  t.match(
    await tcpExchange(port[11100]!, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'),
    /"service":"mcp-postgres"/,
    'curl :11100/health works through the TCP frontend',
  );

  // mcp-files: round-robin over its two instances, a client with the cookie stays on one.
  await waitFor('both files instances', async () => {
    const seen = new Set<unknown>();
    for (let i = 0; i < 8; i++) seen.add((await via(11101, '/info')).body.instance);
    return seen.size === 2 ? true : undefined;
  });
  const first = await via(11101, '/info');
  t.match(first.setCookie, /^SY_MCP_FILES=[^;]+/, 'the files backend sets its sticky cookie');
  const cookie = first.setCookie!.split(';')[0]!;
  const sticky = new Set<unknown>();
  for (let i = 0; i < 12; i++) sticky.add((await via(11101, '/info', { cookie })).body.instance);
  t.same([...sticky], [first.body.instance], 'with the cookie every request goes to the same instance');

  const csv = await (await request(`http://127.0.0.1:${port[11099]}/stats;csv`)).body.text();
  const up = (backend: string) => csv.split('\n').filter((l) => l.startsWith(`${backend},`) && !/,(FRONTEND|BACKEND),/.test(l) && l.includes(',UP,')).length;
  t.equal(up('mcp-files'), 2, 'the stats show both mcp-files servers UP');
  t.equal(up('mcp-postgres'), 1, 'and the postgres one');
  sy.child.kill('SIGTERM');
  t.equal(await sy.exit, 0, 'switchyard stops cleanly');
  const self = consul.registrations.find((r) => r.Name === 'switchyard') as { ID: string } | undefined;
  t.ok(self && consul.deregistrations.includes(self.ID), `it registered itself (${self?.ID}) and left Consul on SIGTERM`);
});

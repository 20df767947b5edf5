import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request, Agent } from 'undici';
import { loadConfigFile } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { startSwitchyard, type Switchyard } from '../src/switchyard.js';
import { backendConfig, config, deadPort, frontendConfig, httpServer, tcpServer } from './support/proxy-harness.js';
import { tcpExchange } from './support/polling.js';
import { connect } from 'node:net';
import { proxyHeader } from '../src/proxy-protocol/header.js';

// Access logs: one JSON line per HTTP request / TCP connection with frontend, backend, server,
// status, bytes and timings; off by default; `sample` keeps a share of the lines, failures always.
// switchyard runs in-process with a pino logger writing into memory, so every line is parsed.

interface Line {
  [key: string]: unknown;
}

function memoryLogger(level = 'info') {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Line);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines, access: () => lines.filter((l) => l.access !== undefined) };
}

function withAccess(cfg: Config, sample = 1): Config {
  return { ...cfg, logging: { level: 'silent', access: { enabled: true, sample } } };
}

async function run(t: Test, cfg: Config, level = 'info'): Promise<{ sy: Switchyard; mem: ReturnType<typeof memoryLogger> }> {
  const mem = memoryLogger(level);
  const sy = await startSwitchyard({ config: cfg, logger: mem.logger, watch: false });
  t.teardown(() => sy.stop(100));
  return { sy, mem };
}

/** Lines are written when an exchange ends, a moment after the client got its answer. */
async function until(fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('HTTP: one line per request with frontend, backend, server, status, bytes, timings', async (t) => {
  const a = await httpServer('hello from a');
  t.teardown(() => a.close());
  const dead = await deadPort();
  const { sy, mem } = await run(
    t,
    withAccess(
      config(
        [frontendConfig('web', 'http', 'api'), frontendConfig('gone', 'http', 'none'), frontendConfig('down', 'http', 'refused')],
        [backendConfig('api', 'http', [a.address]), backendConfig('none', 'http', []), backendConfig('refused', 'http', [`127.0.0.1:${dead}`], { retries: 0 })],
      ),
    ),
  );
  const agent = new Agent({ connections: 1 });
  t.teardown(() => agent.close());
  const port = sy.frontendAddress('web').port;
  for (let i = 0; i < 3; i++) {
    const res = await request(`http://127.0.0.1:${port}/items?page=${i}`, { dispatcher: agent });
    t.equal(await res.body.text(), 'hello from a');
  }
  await until(() => mem.access().length >= 3);
  const lines = mem.access();
  t.equal(lines.length, 3, 'three requests on one keep-alive connection: three lines');
  const first = lines[0]!;
  t.match(first, {
    access: 'http',
    component: 'access',
    msg: 'request',
    frontend: 'web',
    backend: 'api',
    server: 's1',
    client: '127.0.0.1',
    method: 'GET',
    target: '/items?page=0',
    status: 200,
    error: '',
  });
  t.ok((first.bytesIn as number) > 30, `request bytes counted (${String(first.bytesIn)})`);
  t.ok((first.bytesOut as number) > 'hello from a'.length, `response bytes counted, head included (${String(first.bytesOut)})`);
  t.ok((first.connectMs as number) >= 0 && (first.totalMs as number) >= (first.connectMs as number), 'connect time within total time');
  t.same(
    lines.map((l) => l.target),
    ['/items?page=0', '/items?page=1', '/items?page=2'],
    'in order',
  );

  // Failures are logged with why: no server available (503), connection refused (502).
  const r503 = await request(`http://127.0.0.1:${sy.frontendAddress('gone').port}/x`);
  await r503.body.text();
  const r502 = await request(`http://127.0.0.1:${sy.frontendAddress('down').port}/y`);
  await r502.body.text();
  await until(() => mem.access().length >= 5);
  const unavailable = mem.access().find((l) => l.frontend === 'gone');
  const refused = mem.access().find((l) => l.frontend === 'down');
  t.match(unavailable, { status: 503, backend: 'none', server: null, connectMs: -1 });
  t.not(unavailable?.error, '', `the 503 says why: ${String(unavailable?.error)}`);
  t.match(refused, { status: 502, backend: 'refused' });
  t.not(refused?.error, '', `the 502 says why: ${String(refused?.error)}`);
});

t.test('TCP: one line per connection with bytes both ways and timings', async (t) => {
  const echo = await tcpServer();
  t.teardown(() => echo.close());
  const dead = await deadPort();
  const { sy, mem } = await run(
    t,
    withAccess(
      config(
        [frontendConfig('db', 'tcp', 'pg'), frontendConfig('nodb', 'tcp', 'nopg')],
        [backendConfig('pg', 'tcp', [echo.address]), backendConfig('nopg', 'tcp', [`127.0.0.1:${dead}`], { retries: 0 })],
      ),
    ),
  );
  t.equal(await tcpExchange(sy.frontendAddress('db').port, 'hello, tcp', true), 'hello, tcp');
  await tcpExchange(sy.frontendAddress('nodb').port, 'lost', true);
  await until(() => mem.access().length >= 2);
  const ok = mem.access().find((l) => l.frontend === 'db');
  t.match(ok, { access: 'tcp', msg: 'connection', backend: 'pg', server: 's1', client: '127.0.0.1', bytesIn: 10, bytesOut: 10, error: '' });
  t.ok((ok?.connectMs as number) >= 0 && (ok?.totalMs as number) >= (ok?.connectMs as number), 'connect time within total time');
  const failed = mem.access().find((l) => l.frontend === 'nodb');
  t.match(failed, { access: 'tcp', backend: 'nopg', bytesOut: 0 });
  t.not(failed?.error, '', `a refused connection says why: ${String(failed?.error)}`);
  t.equal(mem.access().length, 2, 'one line per connection');
});

t.test("TCP: the client address, read only when needed, is the PROXY header's for ip-hash and the log", async (t) => {
  // Three servers that each greet with their name and close.
  const named = await Promise.all(['t1', 't2', 't3'].map((name) => tcpServer((s) => s.end(name))));
  t.teardown(async () => {
    for (const e of named) await e.close();
  });
  const addresses = named.map((e) => e.address);
  const { sy, mem } = await run(
    t,
    withAccess(
      config(
        [frontendConfig('carried', 'tcp', 'hashed', { acceptProxy: true, trustedSources: ['127.0.0.0/8'] }), frontendConfig('direct', 'tcp', 'hashed2')],
        [backendConfig('hashed', 'tcp', addresses, { strategy: 'ip-hash' }), backendConfig('hashed2', 'tcp', addresses, { strategy: 'ip-hash' })],
      ),
    ),
  );
  /** The greeting of the server a connection (from `srcIp`, through a PROXY header) reached. */
  const greeting = (port: number, srcIp: string | null) =>
    new Promise<string>((resolve, reject) => {
      let out = '';
      const s = connect(port, '127.0.0.1');
      s.on('data', (d) => (out += d.toString()));
      s.on('end', () => {
        s.end();
        resolve(out);
      });
      s.on('error', reject);
      if (srcIp !== null) s.write(proxyHeader(1, { srcIp, srcPort: 4000, dstIp: '192.0.2.1', dstPort: 5432 }));
    });
  const carried = sy.frontendAddress('carried').port;
  const one: string[] = [];
  for (let i = 0; i < 5; i++) one.push(await greeting(carried, '198.51.100.7'));
  t.equal(new Set(one).size, 1, `one carried address, one server: ${one.join(' ')}`);
  const many = new Set<string>();
  for (let i = 1; i <= 24; i++) many.add(await greeting(carried, `203.0.113.${i}`));
  t.ok(many.size > 1, `24 carried addresses are spread over the servers: ${[...many].join(' ')}`);
  const direct: string[] = [];
  for (let i = 0; i < 5; i++) direct.push(await greeting(sy.frontendAddress('direct').port, null));
  t.equal(new Set(direct).size, 1, `one peer address, one server: ${direct.join(' ')}`);
  await until(() => mem.access().length >= 34, 30_000);
  const clients = mem.access().map((l) => `${String(l.frontend)} ${String(l.client)}`);
  t.equal(clients.filter((c) => c === 'carried 198.51.100.7').length, 5, 'the log names the carried address');
  t.equal(clients.filter((c) => c === 'carried 203.0.113.24').length, 1);
  t.equal(clients.filter((c) => c === 'direct 127.0.0.1').length, 5, 'and the peer without a header');
});

t.test('off by default: no line without `logging.access`, on after a reload that enables it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-access-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    'frontends:\n  web: { mode: http, bind: 127.0.0.1:0, backend: api }\nbackends:\n  api: { mode: http, servers: [ { address: 127.0.0.1:9 } ] }\n',
  );
  const loaded = await loadConfigFile(file);
  t.same(loaded.logging.access, { enabled: false, sample: 1 }, 'the loader defaults to off');

  const a = await httpServer('a');
  t.teardown(() => a.close());
  const cfg = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address])]);
  const { sy, mem } = await run(t, cfg);
  const port = sy.frontendAddress('web').port;
  for (let i = 0; i < 5; i++) await (await request(`http://127.0.0.1:${port}/`)).body.text();
  await new Promise((r) => setTimeout(r, 100));
  t.equal(mem.access().length, 0, 'no access line when off');

  const applied = await sy.apply(withAccess(cfg));
  t.ok(applied.ok, 'reload enabling access logs applied');
  for (let i = 0; i < 5; i++) await (await request(`http://127.0.0.1:${port}/after`)).body.text();
  await until(() => mem.access().length >= 5);
  t.equal(mem.access().length, 5, 'the listener kept its socket and now logs every request');
});

t.test('access lines do not depend on `logging.level`', async (t) => {
  const a = await httpServer('a');
  t.teardown(() => a.close());
  const { sy, mem } = await run(t, withAccess(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address])])), 'error');
  await (await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`)).body.text();
  await until(() => mem.access().length >= 1);
  t.equal(mem.access().length, 1, 'logged although the logger level is error');
});

t.test('sampling keeps about the share asked for, and every failure', async (t) => {
  const a = await httpServer('a');
  t.teardown(() => a.close());
  const dead = await deadPort();
  const { sy, mem } = await run(
    t,
    withAccess(
      config(
        [frontendConfig('web', 'http', 'api'), frontendConfig('down', 'http', 'refused')],
        [backendConfig('api', 'http', [a.address]), backendConfig('refused', 'http', [`127.0.0.1:${dead}`], { retries: 0 })],
      ),
      0.2,
    ),
  );
  const agent = new Agent({ connections: 4 });
  t.teardown(() => agent.close());
  const port = sy.frontendAddress('web').port;
  const N = 400;
  for (let i = 0; i < N; i += 4) {
    await Promise.all([0, 1, 2, 3].map(async () => (await request(`http://127.0.0.1:${port}/`, { dispatcher: agent })).body.text()));
  }
  await new Promise((r) => setTimeout(r, 100));
  const kept = mem.access().length;
  // Binomial(400, 0.2): mean 80, sd 8; 40..120 is five standard deviations each way.
  t.ok(kept >= 40 && kept <= 120, `${kept} of ${N} requests logged at sample 0.2`);

  const downPort = sy.frontendAddress('down').port;
  for (let i = 0; i < 20; i++) await (await request(`http://127.0.0.1:${downPort}/`)).body.text();
  await until(() => mem.access().filter((l) => l.frontend === 'down').length >= 20);
  t.equal(mem.access().filter((l) => l.frontend === 'down').length, 20, 'all 20 failed requests logged despite sampling');
});

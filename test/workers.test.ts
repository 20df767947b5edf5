import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpGet, createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertPortsFree, chooseListenMode, listenReusePort, probeReusePort } from '../src/cluster/listen-mode.js';
import { ConsulTestServer } from './support/consul-server.js';
import { deadPort, httpServer } from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';

// `workers: N` runs a primary (health checks, Consul watch, stats, reloads) and N serving
// workers. Which worker served a request is read from the access log (each line carries the
// pid of the process that wrote it), so every claim below is checked per worker: both serve,
// the CSV totals are the sum of what each served, a DOWN from the primary's checks and a
// reload reach both, a killed worker costs only its own in-flight requests and is replaced.
// Uses the built CLI (dist/) as a user runs it.

const BIN = new URL('../bin/switchyard.js', import.meta.url).pathname;
type Line = Record<string, unknown>;

/** One request on a fresh connection (so the connections spread over the workers). */
function get(port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = httpGet({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

class Cluster {
  readonly lines: Line[] = [];
  output = '';
  private constructor(
    readonly child: ChildProcess,
    readonly statsPort: number,
  ) {}

  static start(t: Test, file: string, statsPort: number): Cluster {
    const child = spawn(process.execPath, [BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const c = new Cluster(child, statsPort);
    let partial = '';
    const take = (d: Buffer) => {
      c.output += d.toString();
      partial += d.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const p of parts) {
        try {
          c.lines.push(JSON.parse(p) as Line);
        } catch {
          /* not JSON */
        }
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    return c;
  }

  access(from = 0): Line[] {
    return this.lines.slice(from).filter((l) => l.access === 'http');
  }

  async json(path: string): Promise<Record<string, unknown>> {
    const r = await get(this.statsPort, path);
    return JSON.parse(r.body) as Record<string, unknown>;
  }

  async workers(): Promise<{ count: number; pids: number[]; restarts: number } | null> {
    return (await this.json('/api/stats')).workers as { count: number; pids: number[]; restarts: number } | null;
  }

  /** CSV rows by `pxname/svname`. */
  async csv(): Promise<Map<string, Record<string, string>>> {
    const lines = (await get(this.statsPort, '/stats;csv')).body.trim().split('\n');
    const header = lines[0]!.replace(/^# /, '').split(',');
    const rows = new Map<string, Record<string, string>>();
    for (const l of lines.slice(1)) {
      const row = Object.fromEntries(l.split(',').map((v, i) => [header[i], v]));
      rows.set(`${row.pxname}/${row.svname}`, row);
    }
    return rows;
  }

  async ready(n: number): Promise<number[]> {
    return waitFor(`${n} workers`, async () => {
      const w = await this.workers();
      return w !== null && w.count === n && w.pids.length === n ? w.pids : undefined;
    });
  }

  stop(): Promise<number | null> {
    return new Promise((resolve) => {
      this.child.on('exit', (code) => resolve(code));
      this.child.kill('SIGTERM');
    });
  }
}

function configFile(body: string): { file: string; write(body: string): void } {
  const file = join(mkdtempSync(join(tmpdir(), 'sy-workers-')), 'switchyard.yaml');
  writeFileSync(file, body);
  return { file, write: (b) => writeFileSync(file, b) };
}

function countBy<T>(items: readonly T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of items) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
}

t.test('two workers serve; the CSV adds up what each served; a DOWN and a reload reach both', async (t) => {
  let bHealthy = true;
  const health = { a: 0, b: 0 };
  const backend = (name: 'a' | 'b' | 'c') =>
    httpServer(name, (req, res) => {
      if (req.url === '/health') {
        if (name !== 'c') health[name]++;
        res.statusCode = name === 'b' && !bHealthy ? 503 : 200;
      }
      res.end(name);
    });
  const [a, b, c] = await Promise.all([backend('a'), backend('b'), backend('c')]);
  t.teardown(async () => {
    await a.close();
    await b.close();
    await c.close();
  });
  const [httpPort, statsPort] = [await deadPort(), await deadPort()];
  const cfg = (servers: string) => `workers: 2
stats: { bind: 127.0.0.1:${statsPort} }
logging: { level: warn, access: true }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api:
    mode: http
    health: { type: http, path: /health, interval: 200ms, rise: 1, fall: 1 }
    servers: [ ${servers} ]
`;
  const conf = configFile(cfg(`{ name: a, address: ${a.address} }, { name: b, address: ${b.address} }`));
  const sy = Cluster.start(t, conf.file, statsPort);
  const pids = await sy.ready(2);
  t.notOk(pids.includes(sy.child.pid!), 'the primary is not one of the serving workers');

  const N = 100;
  const bodies: string[] = [];
  for (let i = 0; i < N; i++) bodies.push((await get(httpPort)).body);
  const served = countBy(bodies, (x) => x);
  t.ok(
    (served.get('a') ?? 0) > 0 && (served.get('b') ?? 0) > 0 && served.get('a')! + served.get('b')! === N,
    `${N} requests answered by a and b: ${JSON.stringify([...served])}`,
  );

  const lines = await waitFor('an access line per request', () => (sy.access().length >= N ? sy.access() : undefined));
  const byPid = countBy(lines, (l) => String(l.pid));
  t.same([...byPid.keys()].map(Number).sort(), [...pids].sort(), `both workers served: ${JSON.stringify([...byPid])}`);

  // Totals over workers: exactly what the two served, per frontend and per server.
  const rows = await waitFor('CSV totals', async () => {
    const r = await sy.csv();
    return Number(r.get('web/FRONTEND')?.req_tot) === N ? r : undefined;
  });
  t.equal(Number(rows.get('api/a')!.stot), served.get('a'), 'server a: sessions summed over workers');
  t.equal(Number(rows.get('api/b')!.stot), served.get('b'), 'server b: sessions summed over workers');
  t.equal(Number(rows.get('api/BACKEND')!.req_tot), N, 'backend: requests summed over workers');
  const metrics = (await get(statsPort, '/metrics')).body;
  t.match(metrics, new RegExp(`switchyard_frontend_requests_total\\{frontend="web"\\} ${N}\\n`), '/metrics shows the same total');

  // Health checks run once, in the primary: at a 200ms interval a 2s window sees about 10
  // checks per server, where three processes checking would make about 30.
  const before = health.a;
  await new Promise((r) => setTimeout(r, 2000));
  const checks = health.a - before;
  // Only the upper count tells one checker from three, and load only lowers counts: no lower bound
  // beyond "checks ran" (timers firing late on a busy machine made fewer than 4).
  t.ok(checks >= 1 && checks <= 15, `${checks} checks of server a in 2s: one checker`);

  // b fails its checks: the primary marks it DOWN and both workers stop sending to it.
  bHealthy = false;
  await waitFor('b DOWN in the CSV', async () => ((await sy.csv()).get('api/b')?.status === 'DOWN' ? true : undefined));
  await new Promise((r) => setTimeout(r, 100));
  const mark = sy.lines.length;
  const whileDown: string[] = [];
  for (let i = 0; i < 40; i++) whileDown.push((await get(httpPort)).body);
  t.same([...new Set(whileDown)], ['a'], 'no request reaches the DOWN server');
  const downLines = await waitFor('access lines', () => (sy.access(mark).length >= 40 ? sy.access(mark) : undefined));
  t.equal(new Set(downLines.map((l) => l.pid)).size, 2, 'both workers honoured the DOWN');

  // A reload (SIGHUP) reaches both workers: every request after it goes to the new server c.
  conf.write(cfg(`{ name: c, address: ${c.address} }`));
  sy.child.kill('SIGHUP');
  await waitFor('c serving', async () => ((await get(httpPort)).body === 'c' ? true : undefined));
  await new Promise((r) => setTimeout(r, 300));
  const mark2 = sy.lines.length;
  const after: string[] = [];
  for (let i = 0; i < 40; i++) after.push((await get(httpPort)).body);
  t.same([...new Set(after)], ['c'], 'every request goes to the new server list');
  const afterLines = await waitFor('access lines', () => (sy.access(mark2).length >= 40 ? sy.access(mark2) : undefined));
  t.equal(new Set(afterLines.map((l) => l.pid)).size, 2, 'both workers serve the reloaded config');
  t.same([...new Set(afterLines.map((l) => l.server))], ['c'], 'both workers log server c');

  t.equal(await sy.stop(), 0, 'SIGTERM: graceful stop, exit 0');
});

t.test('a killed worker loses only its own in-flight requests and is replaced', async (t) => {
  // The server holds every request until told to answer, so all of them are in flight when a
  // worker is killed. A held request whose connection closes belonged to the dead worker.
  const held: { res: ServerResponse; lost: boolean }[] = [];
  let holding = true;
  const server = createHttpServer((req, res) => {
    if (!holding) return void res.end('ok');
    const h = { res, lost: false };
    req.socket.on('close', () => {
      if (!res.writableEnded) h.lost = true;
    });
    held.push(h);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const backendPort = (server.address() as AddressInfo).port;
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const [httpPort, statsPort] = [await deadPort(), await deadPort()];
  const conf = configFile(`workers: 2
stats: { bind: 127.0.0.1:${statsPort} }
logging: { level: warn, access: true }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api: { mode: http, retries: 0, servers: [ { name: h, address: 127.0.0.1:${backendPort} } ] }
`);
  const sy = Cluster.start(t, conf.file, statsPort);
  const pids = await sy.ready(2);

  const M = 12;
  const results = Array.from({ length: M }, () => get(httpPort));
  await waitFor(`${M} requests held by the server`, () => (held.length === M ? true : undefined));
  // Counters reach the primary within a second: all M sessions counted before the kill.
  await waitFor('CSV counts the held requests', async () => (Number((await sy.csv()).get('api/h')?.stot) === M ? true : undefined));

  const victim = pids[0]!;
  process.kill(victim, 'SIGKILL');
  const replaced = await waitFor('a replacement', async () => {
    const w = await sy.workers();
    return w && w.restarts === 1 && w.count === 2 && !w.pids.includes(victim) ? w.pids : undefined;
  });
  await waitFor("the dead worker's server connections closed", () => (held.some((h) => h.lost) ? true : undefined));
  await new Promise((r) => setTimeout(r, 200));
  const inFlightOfVictim = held.filter((h) => h.lost).length;
  holding = false;
  for (const h of held) if (!h.lost) h.res.end('ok');
  const done = await Promise.all(results);
  const failed = done.filter((r) => r.status !== 200).length;
  t.ok(inFlightOfVictim > 0 && inFlightOfVictim < M, `the killed worker had ${inFlightOfVictim} of the ${M} requests in flight`);
  t.ok(failed <= inFlightOfVictim, `${failed} requests failed, no more than the killed worker's ${inFlightOfVictim}`);
  t.equal(done.filter((r) => r.status === 200 && r.body === 'ok').length, M - failed, 'every other request answered');
  t.match(sy.output, new RegExp(`"worker":${victim}.*worker died; starting a replacement`), 'the death is logged with the pid');

  // The totals keep what the dead worker counted (no step back in the CSV).
  const stot = Number((await sy.csv()).get('api/h')?.stot);
  t.ok(stot >= M, `server h still counts ${stot} >= ${M} sessions after the worker died`);

  const newPid = replaced.find((p) => !pids.includes(p))!;
  const mark = sy.lines.length;
  const after = [];
  for (let i = 0; i < 30; i++) after.push(await get(httpPort));
  t.equal(after.filter((r) => r.status === 200).length, 30, 'all requests served after the replacement');
  const lines = await waitFor('access lines', () => (sy.access(mark).length >= 30 ? sy.access(mark) : undefined));
  t.ok(
    lines.some((l) => l.pid === newPid),
    `the replacement (pid ${newPid}) serves`,
  );
  t.equal(await sy.stop(), 0, 'graceful stop, exit 0');
});

t.test('the Consul watch runs once, in the primary; its servers reach every worker', async (t) => {
  const consul = await ConsulTestServer.start({ runChecks: false });
  t.teardown(() => consul.close());
  const [x, y, z] = await Promise.all([httpServer('x'), httpServer('y'), httpServer('z')]);
  t.teardown(async () => {
    await x.close();
    await y.close();
    await z.close();
  });
  consul.addService({ id: 'x', name: 'api', address: '127.0.0.1', port: x.port });
  consul.addService({ id: 'y', name: 'api', address: '127.0.0.1', port: y.port });
  const [httpPort, statsPort] = [await deadPort(), await deadPort()];
  const conf = configFile(`workers: 2
stats: { bind: 127.0.0.1:${statsPort} }
consul: { address: ${consul.address} }
logging: { level: warn, access: true }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api: { mode: http, discovery: { consul: { service: api } } }
`);
  const sy = Cluster.start(t, conf.file, statsPort);
  await sy.ready(2);
  await waitFor('discovered servers serving', async () => ((await get(httpPort)).status === 200 ? true : undefined));

  consul.addService({ id: 'z', name: 'api', address: '127.0.0.1', port: z.port });
  await waitFor('z serving', async () => ((await get(httpPort)).body === 'z' ? true : undefined));
  await new Promise((r) => setTimeout(r, 200));
  const mark = sy.lines.length;
  const bodies: string[] = [];
  for (let i = 0; i < 30; i++) bodies.push((await get(httpPort)).body);
  t.same([...new Set(bodies)].sort(), ['x', 'y', 'z'], 'the three discovered servers answer');
  const lines = await waitFor('access lines', () => (sy.access(mark).length >= 30 ? sy.access(mark) : undefined));
  const zByPid = new Set(lines.filter((l) => l.server === 'z').map((l) => l.pid));
  t.equal(zByPid.size, 2, 'both workers send requests to the server Consul added');

  // One watcher: each X-Consul-Index is asked for once (three watching processes ask three times).
  const queries = consul.requests.filter((r) => r.path === '/v1/health/service/api');
  const perIndex = countBy(queries, (r) => r.query.get('index') ?? 'none');
  t.ok(queries.length >= 2, `${queries.length} queries for the service`);
  t.same([...new Set(perIndex.values())], [1], `each index asked once: ${JSON.stringify([...perIndex])}`);
  t.equal(await sy.stop(), 0, 'graceful stop, exit 0');
});

t.test('`workers: 1` is one process; a worker that cannot bind fails the start', async (t) => {
  const a = await httpServer('a');
  t.teardown(() => a.close());
  const [httpPort, statsPort] = [await deadPort(), await deadPort()];
  const body = (workers: number, port: number) => `workers: ${workers}
stats: { bind: 127.0.0.1:${statsPort} }
logging: { level: warn, access: true }
frontends:
  web: { mode: http, bind: 127.0.0.1:${port}, backend: api }
backends:
  api: { mode: http, servers: [ { address: ${a.address} } ] }
`;
  const one = Cluster.start(t, configFile(body(1, httpPort)).file, statsPort);
  await waitFor('serving', async () => ((await get(httpPort)).body === 'a' ? true : undefined));
  t.equal(await one.workers(), null, 'the stats report no workers');
  const lines = await waitFor('an access line', () => (one.access().length > 0 ? one.access() : undefined));
  t.same([...new Set(lines.map((l) => l.pid))], [one.child.pid], 'the process started is the one that serves');
  t.equal(await one.stop(), 0);

  // A port some other process holds: the start fails with the reason, it does not hang.
  const blocker = createNetServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const taken = (blocker.address() as AddressInfo).port;
  const failing = Cluster.start(t, configFile(body(2, taken)).file, statsPort);
  const code = await waitFor('exit', () => failing.child.exitCode ?? undefined);
  t.equal(code, 1, 'exit 1');
  t.match(failing.output, /cannot start/, 'says it cannot start');
  t.match(failing.output, /EADDRINUSE/, 'and why');
});

t.test('listen mode: SO_REUSEPORT only where the runtime shares a port with it', async (t) => {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  // Node added `reusePort` in 23.1.0 and 22.12.0 (Linux and a few BSDs; not macOS/Windows).
  const expected = process.platform === 'linux' && (major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12));
  t.equal(await probeReusePort(), expected, `Node ${process.versions.node} on ${process.platform}: reusePort ${expected ? 'shares' : 'does not share'} a port`);
  t.equal(await chooseListenMode({ SWITCHYARD_REUSEPORT: '0' }), 'cluster', 'SWITCHYARD_REUSEPORT=0 forces node:cluster sharing');
  t.equal(await chooseListenMode({}), expected ? 'reuseport' : 'cluster', 'the probe decides otherwise');
  t.equal(listenReusePort(11100), false, 'outside a worker a listener never sets reusePort');

  const holder = createNetServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const port = (holder.address() as AddressInfo).port;
  await t.rejects(assertPortsFree([{ name: 'web', host: '127.0.0.1', port }]), { message: `frontend web: cannot listen on 127.0.0.1:${port}: EADDRINUSE` });
  await t.resolves(assertPortsFree([{ name: 'web', host: '127.0.0.1', port: await deadPort() }]), 'a free port passes');
});

t.test('SIGTERM while the workers are still starting: a clean stop, not a kill', async (t) => {
  // A strategy module that keeps every worker starting, after the primary's stats listener
  // already answers: the window in which a `docker stop` can land.
  const a = await httpServer('a');
  t.teardown(() => a.close());
  const [httpPort, statsPort] = [await deadPort(), await deadPort()];
  const conf = configFile(`workers: 2
stats: { bind: 127.0.0.1:${statsPort} }
logging: { level: warn }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api: { mode: http, strategy: ./slow-strategy.mjs, servers: [ { address: ${a.address} } ] }
`);
  // Workers (not the primary, whose stats listener must come up) wait for a gate file that the
  // test creates only after the signal: the window is held open, not raced.
  const gate = join(conf.file, '../gate');
  writeFileSync(
    join(conf.file, '../slow-strategy.mjs'),
    `import { existsSync } from 'node:fs';
if (process.env.SWITCHYARD_WORKER === '1') while (!existsSync(${JSON.stringify(gate)})) await new Promise((r) => setTimeout(r, 20));
export default function createStrategy() {
  let servers = [];
  return { update(eligible) { servers = eligible; }, pick() { return servers[0] ?? null; } };
}
`,
  );
  const sy = Cluster.start(t, conf.file, statsPort);
  await waitFor('the stats listener', async () => ((await get(statsPort, '/health')).status === 200 ? true : undefined));
  t.equal((await sy.workers())?.count, 0, 'no worker serves yet');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => sy.child.on('exit', (code, signal) => r({ code, signal })));
  sy.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200)); // the signal lands while the workers still wait
  writeFileSync(gate, '');
  t.same(await exited, { code: 0, signal: null }, 'exit 0: the signal was handled, not fatal');
});

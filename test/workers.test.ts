import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { deadPort, httpServer } from './support/proxy-harness.js';

// `workers: 2` runs a primary (health, stats, reload) and two serving workers: counters add up
// across workers, a killed worker is replaced, a reload reaches both. Uses the built CLI.

const BIN = new URL('../bin/switchyard.js', import.meta.url).pathname;

async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 10000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch { /* not yet */ }
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function csvRows(csv: string): Record<string, string>[] {
  const lines = csv.trim().split('\n');
  const header = lines[0]!.replace(/^# /, '').split(',');
  return lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], v])));
}

t.test('two workers serve, their counters add up, a killed worker is replaced, a reload reaches both', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const httpPort = await deadPort();
  const statsPort = await deadPort();
  const dir = mkdtempSync(join(tmpdir(), 'sy-workers-'));
  const file = join(dir, 'switchyard.yaml');
  const write = (servers: string) => writeFileSync(file, `workers: 2
stats: { bind: 127.0.0.1:${statsPort} }
logging: { level: warn }
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: api }
backends:
  api: { mode: http, health: { type: none }, servers: [ ${servers} ] }
`);
  write(`{ name: a, address: ${a.address} }`);
  const child: ChildProcess = spawn(process.execPath, [BIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  t.teardown(async () => {
    if (child.exitCode === null) { child.kill('SIGKILL'); }
    await a.close(); await b.close();
  });
  const agent = new Agent({ connections: 1, pipelining: 0 });
  t.teardown(() => agent.close());
  const get = async () => {
    // A fresh connection each time, so the cluster spreads them over both workers.
    const res = await request(`http://127.0.0.1:${httpPort}/`, { reset: true });
    return res.statusCode === 200 ? await res.body.text() : undefined;
  };
  await waitFor(get);
  const N = 200;
  for (let i = 0; i < N; i++) t.equal(await get(), 'a');

  // Totals over workers in the CSV (counters arrive within about a second).
  const rows = await waitFor(async () => {
    const res = await request(`http://127.0.0.1:${statsPort}/stats;csv`);
    const r = csvRows(await res.body.text());
    const fe = r.find((x) => x.pxname === 'web' && x.svname === 'FRONTEND');
    return fe && Number(fe.req_tot) >= N + 1 ? r : undefined;
  });
  const server = rows.find((x) => x.pxname === 'api' && x.svname === 'a')!;
  t.ok(Number(server.stot) >= N, `server a counted ${server.stot} sessions across workers`);

  // Which worker pids served? Kill one and see a replacement keep serving.
  const pids = await waitFor(async () => {
    const res = await request(`http://127.0.0.1:${statsPort}/api/stats`);
    const body = await res.body.json() as { workers?: { pids?: number[] } };
    return body.workers?.pids?.length === 2 ? body.workers.pids : undefined;
  }).catch(() => undefined);
  if (pids) {
    process.kill(pids[0]!, 'SIGKILL');
    await waitFor(async () => {
      const res = await request(`http://127.0.0.1:${statsPort}/api/stats`);
      const body = await res.body.json() as { workers?: { pids?: number[]; restarts?: number } };
      return body.workers?.restarts === 1 && body.workers.pids?.length === 2 ? true : undefined;
    });
    for (let i = 0; i < 20; i++) t.equal(await get(), 'a', 'served after a worker was replaced');
    t.match(output, /worker died; starting a replacement/);
  } else {
    t.fail('the stats JSON lists the worker pids');
  }

  // A reload reaches both workers: after it, 40 fresh connections all land on b.
  write(`{ name: b, address: ${b.address} }`);
  child.kill('SIGHUP');
  await waitFor(async () => ((await get()) === 'b' ? true : undefined));
  await new Promise((r) => setTimeout(r, 300));
  const after: string[] = [];
  for (let i = 0; i < 40; i++) after.push((await get())!);
  t.same([...new Set(after)], ['b'], 'every worker serves the new server list');

  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0, 'graceful stop exits 0');
});

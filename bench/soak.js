#!/usr/bin/env node
// `npm run soak [-- --seconds N --rate R --connections C --kill-every S --reload-every S
//                  --allow N --max-rss-mb M --max-heap-mb M]`: load and faults, bounded,
// loopback only. Starts 3 backend HTTP servers (child processes) and switchyard in this process
// (the built `dist/`, with its active health checks), runs autocannon (a child process, so this
// process's memory is the proxy's) at a steady overall rate of GET requests, and meanwhile
//   - every `--kill-every` s (default min(10, seconds/4)) kills one backend of the pair in use
//     (SIGKILL) and restarts it on the same port 2 s later; health checks take it out and back,
//   - every `--reload-every` s (default min(15, seconds/3)) applies a config reload (the
//     2-server backend moves to another pair, the strategy alternates).
// Reports requests sent, non-2xx, errors and memory before/after (after a settle and gc).
// Exits 1 when failed requests exceed the allowance or rss/heap grew past the bounds below.
// The shortest run is `--seconds 20` (3 kills, 2 reloads); the default is 120 s.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startSwitchyard } from '../dist/switchyard.js';
import { HealthChecker } from '../dist/health/checker.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? dflt : Number(process.argv[i + 1]);
};
const SECONDS = arg('seconds', 120);
if (!(SECONDS >= 20)) {
  console.error('soak: --seconds must be at least 20 (time for 3 kills and 2 reloads)');
  process.exit(2);
}
const RATE = arg('rate', 1000);
const CONNECTIONS = arg('connections', 20);
/** Failed (non-2xx or error) GET requests tolerated: a request already on the wire to a fresh
 * (not pooled) connection of a server that is killed cannot be retried safely by anyone. */
const ALLOWED_FAILURES = arg('allow', 0);
/** Growth bounds, after the settle and a gc, measured from just after the warm-up. */
const MAX_RSS_GROWTH_MB = arg('max-rss-mb', 48);
const MAX_HEAP_GROWTH_MB = arg('max-heap-mb', 16);
const KILL_EVERY_MS = arg('kill-every', Math.min(10, SECONDS / 4)) * 1000;
const RELOAD_EVERY_MS = arg('reload-every', Math.min(15, SECONDS / 3)) * 1000;
/** How long a killed backend stays down before it is restarted. */
const DOWN_MS = Math.min(2000, KILL_EVERY_MS / 2);
const WARMUP_S = 3;

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc');

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const BACKEND = `
import { createServer } from 'node:http';
const port = Number(process.argv[1]);
const s = createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok ' + port)); });
s.keepAliveTimeout = 60000;
s.listen(port, '127.0.0.1', () => console.log('listening'));
`;

class Backend {
  constructor(port) {
    this.port = port;
    this.child = null;
  }
  start() {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', BACKEND, String(this.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
      this.child = child;
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => {
        if (this.child === child) this.child = null;
        reject(new Error(`backend exited ${code}`));
      });
    });
  }
  kill() {
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}

const AUTOCANNON = `
import autocannon from 'autocannon';
const [url, duration, overallRate, connections] = process.argv.slice(1);
const r = await autocannon({ url, duration: Number(duration), overallRate: Number(overallRate), connections: Number(connections), timeout: 10 });
console.log(JSON.stringify({ sent: r.requests.sent, total: r.requests.total, ok2xx: r['2xx'], non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts, resets: r.resets, latencyP99: r.latency.p99, rps: r.requests.average }));
`;

function autocannon(url, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', AUTOCANNON, url, String(seconds), String(RATE), String(CONNECTIONS)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`autocannon exited ${code}`))));
  });
}

function frontend(port) {
  return {
    name: 'web',
    mode: 'http',
    backend: 'api',
    bind: { host: '127.0.0.1', port },
    timeouts: { clientMs: 30000, httpRequestMs: 10000, keepAliveMs: 60000 },
    maxconn: 0,
    maxconnPerSource: 0,
    limits: { maxRequestLine: 8192, maxHeaderBytes: 32768, maxHeaders: 100 },
  };
}
function backend(ports, strategy) {
  return {
    name: 'api',
    mode: 'http',
    strategy,
    strategyOptions: {},
    sticky: null,
    // Active checks, as in production: a killed server is DOWN after 2 failed checks and UP
    // again after 2 passing ones; until it is DOWN, refused connections are retried elsewhere.
    health: {
      type: 'http',
      method: 'GET',
      path: '/',
      host: null,
      expect: [[200, 399]],
      body: null,
      intervalMs: 500,
      fastIntervalMs: 250,
      downIntervalMs: 500,
      timeoutMs: 300,
      rise: 2,
      fall: 2,
      onMarkedDown: 'none',
    },
    passive: { consecutiveFailures: 0, baseEjectionMs: 30000, maxEjectionMs: 300000, maxEjectedPercent: 50 },
    timeouts: { connectMs: 2000, serverMs: 10000 },
    retries: 2,
    servers: ports.map((p) => ({ name: `s${p}`, address: { host: '127.0.0.1', port: p }, weight: 1, backup: false, maxconn: 0 })),
    discovery: null,
  };
}
function config(fePort, ports, strategy = 'round-robin') {
  return {
    source: null,
    stats: { bind: { host: '127.0.0.1', port: 0 }, auth: null, read: 'public' },
    consul: null,
    workers: 1,
    shutdownTimeoutMs: 5000,
    logging: { level: 'warn', access: { enabled: false, sample: 1 } },
    frontends: [frontend(fePort)],
    backends: [backend(ports, strategy)],
  };
}

function memory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rssMB: +(m.rss / 2 ** 20).toFixed(1), heapMB: +(m.heapUsed / 2 ** 20).toFixed(1) };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const ports = [await freePort(), await freePort(), await freePort()];
  const backends = ports.map((p) => new Backend(p));
  await Promise.all(backends.map((b) => b.start()));
  const fePort = await freePort();
  const pairs = [
    [ports[0], ports[1]],
    [ports[1], ports[2]],
    [ports[2], ports[0]],
  ];
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const sy = await startSwitchyard({
    config: config(fePort, pairs[0]),
    logger,
    watch: false,
    components: () => Promise.resolve([new HealthChecker({ log: logger })]),
  });
  const url = `http://127.0.0.1:${fePort}/`;
  console.log(
    `soak: ${SECONDS} s at ${RATE} req/s over ${CONNECTIONS} connections; kill a backend every ${KILL_EVERY_MS / 1000} s (restarted ${DOWN_MS / 1000} s later), reload every ${RELOAD_EVERY_MS / 1000} s`,
  );

  await autocannon(url, WARMUP_S);
  await sleep(500);
  const before = memory();

  const seen = new Set();
  const watcher = setInterval(() => {
    for (const s of sy.runtime().backends.get('api').servers) seen.add(s);
  }, 200);
  let kills = 0;
  let reloads = 0;
  let reloadFailures = 0;
  let pair = 0;
  const t0 = Date.now();
  // Kill one server of the pair in use, so retries have work to do.
  async function killOne() {
    const victim = backends[ports.indexOf(pairs[pair][kills % 2])];
    victim.kill();
    kills++;
    await sleep(DOWN_MS);
    try {
      await victim.start();
    } catch (e) {
      console.error(`restart failed: ${e.message}`);
    }
  }
  async function reloadOnce() {
    pair = (pair + 1) % pairs.length;
    const r = await sy.apply(config(fePort, pairs[pair], reloads % 2 === 0 ? 'round-robin' : 'random'));
    reloads++;
    if (!r.ok) {
      reloadFailures++;
      console.error(`reload rejected: ${r.errors.join('; ')}`);
    }
  }
  // A failure inside a step is the soak's finding: reported, and the run fails at its end.
  let stepErrors = 0;
  const stepFailed = (what) => (e) => {
    stepErrors++;
    console.error(`${what} failed: ${e?.stack ?? e}`);
  };
  const killer = setInterval(() => {
    killOne().catch(stepFailed('kill/restart'));
  }, KILL_EVERY_MS);
  const reloader = setInterval(() => {
    reloadOnce().catch(stepFailed('reload'));
  }, RELOAD_EVERY_MS);

  const load = await autocannon(url, SECONDS);
  clearInterval(killer);
  clearInterval(reloader);
  clearInterval(watcher);
  const elapsed = ((Date.now() - t0) / 1000).toFixed(1);
  await sleep(3000); // settle: restarts finish, idle pools trim, sockets close
  const after = memory();
  const counters = sy.runtime().backends.get('api').counters;
  // Servers leave the backend on reloads: count DOWN transitions over every server object seen.
  const checkDowns = [...seen].reduce((n, s) => n + s.check.downTransitions, 0);
  await sy.stop(2000);
  for (const b of backends) b.kill();

  const failed = load.non2xx + load.errors + load.timeouts;
  // autocannon's `sent` starts each connection's count at its rate (it misses the requests its
  // clients emit while being constructed): take that out, and what is left unanswered was lost
  // (up to one in flight per connection when the run stopped is not a loss).
  const initialCount = Math.max(RATE, CONNECTIONS); // the sum of max(1, per-connection rate)
  const unanswered = load.sent - initialCount - load.total - load.errors - load.timeouts;
  const rssGrowth = +(after.rssMB - before.rssMB).toFixed(1);
  const heapGrowth = +(after.heapMB - before.heapMB).toFixed(1);
  const report = {
    seconds: Number(elapsed),
    rate: RATE,
    sent: load.sent - initialCount,
    completed: load.total,
    unanswered,
    ok2xx: load.ok2xx,
    non2xx: load.non2xx,
    errors: load.errors,
    timeouts: load.timeouts,
    failed,
    allowedFailures: ALLOWED_FAILURES,
    p99ms: load.latencyP99,
    kills,
    checkDowns,
    reloads,
    reloadFailures,
    retries: counters.wretr,
    connectErrors: counters.econ,
    responseErrors: counters.eresp,
    memoryBefore: before,
    memoryAfter: after,
    rssGrowthMB: rssGrowth,
    heapGrowthMB: heapGrowth,
    bounds: { rssMB: MAX_RSS_GROWTH_MB, heapMB: MAX_HEAP_GROWTH_MB },
  };
  console.log(JSON.stringify(report, null, 2));
  const problems = [];
  if (failed > ALLOWED_FAILURES) problems.push(`${failed} failed requests (allowed ${ALLOWED_FAILURES})`);
  if (unanswered > CONNECTIONS) problems.push(`${unanswered} requests sent and never answered`);
  if (reloadFailures > 0) problems.push(`${reloadFailures} reloads rejected`);
  if (stepErrors > 0) problems.push(`${stepErrors} kill/reload steps threw`);
  if (rssGrowth > MAX_RSS_GROWTH_MB) problems.push(`rss grew ${rssGrowth} MB (bound ${MAX_RSS_GROWTH_MB})`);
  if (heapGrowth > MAX_HEAP_GROWTH_MB) problems.push(`heap grew ${heapGrowth} MB (bound ${MAX_HEAP_GROWTH_MB})`);
  console.log(problems.length === 0 ? 'soak: PASS' : `soak: FAIL: ${problems.join('; ')}`);
  process.exit(problems.length === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

#!/usr/bin/env node
// `npm run bench:stats`: what reading the stats costs the data path (issue 5: "scraping
// /metrics and /stats;csv ten times a second during a benchmark costs under 5% of
// throughput"). Throughput through switchyard's HTTP frontend with autocannon, once quiet and
// once while a scraper fetches /metrics and /stats;csv every 100 ms each, in interleaved rounds
// of one run (A/B, then B/A, so drift on this shared machine falls on both sides), reported as
// the ratio of the medians.
//
// The scraper runs in this process, beside autocannon: its own CPU is charged to the "scraped"
// side, so the cost printed is an upper bound of what the scrapes cost switchyard.
//
// Usage: node bench/stats-scrape.js [--rounds 3] [--seconds 5] [--connections 64] [--workers 1] [--interval 100]
import { Agent, get } from 'node:http';
import { parseArgs } from 'node:util';
import { measure, median, startBackend, startSwitchyard, stop, writeConfig } from './lib.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    workers: { type: 'string', default: '1' },
    interval: { type: 'string', default: '100' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const intervalMs = Number(values.interval);
const workers = values.workers === 'auto' ? 'auto' : Number(values.workers);
for (const [name, v] of Object.entries({ rounds, seconds, connections, interval: intervalMs })) {
  if (!(v > 0)) throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(values[name])}`);
}

// Our own range inside the benchmark ports, apart from lib.js compare()'s 19200-19299 picks.
const ports = { backendPort: 19240, httpPort: 19241, tcpPort: 19242, statsPort: 19249 };
const SCRAPES = [
  { path: '/metrics', expect: 'switchyard_frontend_requests_total' },
  { path: '/stats;csv', expect: '# pxname,svname,' },
];

/** One GET; resolves with the status and body size, rejects when the body is not the expected one. */
function fetchOnce(agent, path, expect) {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: ports.statsPort, path, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200 || !body.includes(expect)) reject(new Error(`${path}: HTTP ${res.statusCode}, body without ${JSON.stringify(expect)}`));
        else resolve(body.length);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`${path}: no answer within 5 s`)));
  });
}

/**
 * Fetch each path every `intervalMs` (one in flight per path: a slow answer skips a tick rather
 * than piling up). stop() resolves with per-path counts, bytes, latencies and failures.
 */
function startScraper() {
  const agent = new Agent({ keepAlive: true, maxSockets: SCRAPES.length });
  const stats = SCRAPES.map((s) => ({ path: s.path, done: 0, skipped: 0, failed: 0, bytes: 0, ms: [], error: null }));
  const busy = SCRAPES.map(() => false);
  const startedAt = performance.now();
  const timers = SCRAPES.map((s, i) =>
    setInterval(() => {
      if (busy[i]) {
        stats[i].skipped++;
        return;
      }
      busy[i] = true;
      const t0 = performance.now();
      fetchOnce(agent, s.path, s.expect)
        .then(
          (n) => {
            stats[i].done++;
            stats[i].bytes += n;
            stats[i].ms.push(performance.now() - t0);
          },
          (error) => {
            stats[i].failed++;
            stats[i].error = error.message;
          },
        )
        .finally(() => {
          busy[i] = false;
        });
    }, intervalMs),
  );
  return async () => {
    for (const t of timers) clearInterval(t);
    while (busy.some(Boolean)) await new Promise((r) => setTimeout(r, 10));
    agent.destroy();
    const elapsed = (performance.now() - startedAt) / 1000;
    return stats.map((s) => ({ ...s, perSecond: s.done / elapsed }));
  };
}

const url = `http://127.0.0.1:${ports.httpPort}/hello`;
const backend = await startBackend(ports.backendPort);
const child = await startSwitchyard(writeConfig({ ...ports, workers }), ports.httpPort);
const quiet = [];
const scraped = [];
const scrapeRuns = [];
try {
  // Warm-up: JIT, pools and the scrape paths, so round 1 is not the odd one out.
  await measure(url, { seconds: 1, connections });
  for (const s of SCRAPES) await fetchOnce(undefined, s.path, s.expect);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['quiet', 'scraped'] : ['scraped', 'quiet'];
    for (const side of order) {
      if (side === 'quiet') {
        const m = await measure(url, { seconds, connections, pid: child.pid });
        if (m.errors > 0) throw new Error(`quiet round ${r + 1}: ${m.errors} failed requests`);
        quiet.push(m);
      } else {
        const stopScraper = startScraper();
        const m = await measure(url, { seconds, connections, pid: child.pid });
        const s = await stopScraper();
        if (m.errors > 0) throw new Error(`scraped round ${r + 1}: ${m.errors} failed requests`);
        for (const x of s) if (x.failed > 0) throw new Error(`scraped round ${r + 1}: ${x.failed} failed scrapes of ${x.path} (${x.error})`);
        scraped.push(m);
        scrapeRuns.push(s);
      }
    }
  }
} finally {
  await stop(child);
  await stop(backend);
}

const q = median(quiet.map((m) => m.rps));
const s = median(scraped.map((m) => m.rps));
const ratio = s / q;
const cost = (1 - ratio) * 100;
const fmt = (n) => n.toFixed(0).padStart(8);
console.log(`quiet             ${fmt(q)} req/s   p99 ${median(quiet.map((m) => m.p99))} ms`);
console.log(`while scraped     ${fmt(s)} req/s   p99 ${median(scraped.map((m) => m.p99))} ms   ${ratio.toFixed(3)} x quiet`);
for (let i = 0; i < SCRAPES.length; i++) {
  const runs = scrapeRuns.map((run) => run[i]);
  const all = runs.flatMap((x) => x.ms);
  console.log(
    `  ${SCRAPES[i].path.padEnd(11)} ${median(runs.map((x) => x.perSecond)).toFixed(1)}/s, ${(median(runs.map((x) => x.bytes / Math.max(1, x.done))) / 1024).toFixed(1)} KiB each, median ${median(all).toFixed(1)} ms, ${runs.reduce((n, x) => n + x.skipped, 0)} ticks skipped`,
  );
}
const cq = median(quiet.map((m) => m.cpuUs));
const cs = median(scraped.map((m) => m.cpuUs));
if (cq !== null && cs !== null) {
  // switchyard's own CPU per proxied request, scrapes included: the cost to the data path
  // whoever the bottleneck is (on 2 cores autocannon and the scraper share the client side).
  console.log(`switchyard CPU    ${cq.toFixed(1)} µs/request quiet, ${cs.toFixed(1)} µs/request while scraped (+${((cs / cq - 1) * 100).toFixed(1)}%)`);
}
console.log(`stats scraping costs ${cost.toFixed(1)}% of throughput (${cost < 5 ? 'under' : 'NOT under'} the 5% budget)`);
console.log(`(${rounds} interleaved rounds of ${seconds}s, ${connections} keep-alive connections, scrapes every ${intervalMs} ms each, workers: ${workers})`);

#!/usr/bin/env node
// `npm run bench:overload`: overload protection under load (docs/overload.md).
//
// 1. queue: 200 autocannon connections against 2 servers with `maxconn: 10` each and a queue.
//    Expected: zero failed requests and zero 503 (the queue's wait stays under timeouts.queue),
//    each server sees at most 10 connections and 10 requests at once, and the throughput is
//    compared with the same run without limits (the issue asks for >= 0.9x).
// 2. slow server: one of the two servers answers in SLOW_MS. Without limits, half of the
//    requests (and soon most client connections) wait on it; with maxconn + a queue + the
//    circuit breaker, it holds at most its 10 slots and the fast server takes the rest: the
//    latency of the bulk of requests (p50) stays where it is with two fast servers.
//
// Servers are child processes (raw node:net HTTP/1.1, as bench/lib.js's backend) that count
// their open connections and requests in flight and report the maxima on a port of their own
// (port + 100, asked directly). Ports 19220-19229 and 19320-19321.
//
//   node bench/overload.js [--seconds 10] [--connections 200] [--only queue|slow]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { spawnModule, startSwitchyard, stop } from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '200' },
    only: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const CONNECTIONS = Number(values.connections);
const PORTS = { a: 19220, b: 19221, http: 19225, stats: 19226 };
const MAXCONN = 10;
const SLOW_MS = 200;

/** A server that answers with its name after DELAY ms and counts connections and requests at once. */
const SERVER_SOURCE = `
import { createServer } from 'node:net';
const name = process.env.NAME;
const delay = Number(process.env.DELAY);
const body = name + '\\n';
const response = Buffer.from('HTTP/1.1 200 OK\\r\\ncontent-type: text/plain\\r\\ncontent-length: ' + body.length + '\\r\\n\\r\\n' + body);
let conns = 0, maxConns = 0, inflight = 0, maxInflight = 0, hits = 0;
createServer({ noDelay: true }, (socket) => {
  conns++; if (conns > maxConns) maxConns = conns;
  socket.on('close', () => { conns--; });
  let pending = '';
  socket.on('data', (chunk) => {
    pending += chunk.toString('latin1');
    let i;
    while ((i = pending.indexOf('\\r\\n\\r\\n')) !== -1) {
      const head = pending.slice(0, i);
      pending = pending.slice(i + 4);
      hits++; inflight++; if (inflight > maxInflight) maxInflight = inflight;
      const answer = () => { inflight--; if (!socket.destroyed) socket.write(response); };
      if (delay > 0) setTimeout(answer, delay); else answer();
    }
  });
  socket.on('error', () => socket.destroy());
}).listen(Number(process.env.PORT), '127.0.0.1', () => {
  // The figures on a port of their own, so that asking for them is not a connection counted.
  createServer((s) => {
    const json = JSON.stringify({ name, maxConns, maxInflight, hits });
    s.end('HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\nconnection: close\\r\\ncontent-length: ' + json.length + '\\r\\n\\r\\n' + json);
    s.on('error', () => {});
  }).listen(Number(process.env.PORT) + 100, '127.0.0.1', () => console.log('listening'));
});
`;

function startServer(name, port, delay) {
  return spawnModule(SERVER_SOURCE, { NAME: name, PORT: String(port), DELAY: String(delay) });
}

async function serverStats(port) {
  const res = await fetch(`http://127.0.0.1:${port + 100}/`);
  return res.json();
}

function writeConfig(limits) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-overload-'));
  const file = join(dir, 'switchyard.yaml');
  const maxconn = limits ? `, maxconn: ${MAXCONN}` : '';
  const overload = limits
    ? `    max_queue: 10000\n    timeouts: { queue: 10s }\n    circuit_breaker: { max_requests: 1000, retry_budget: { percent: 20, min_retry_concurrency: 3 } }\n`
    : '';
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:${PORTS.stats} }
logging: { level: warn }
frontends:
  h: { mode: http, bind: 127.0.0.1:${PORTS.http}, backend: app }
backends:
  app:
    mode: http
    strategy: round-robin
    servers:
      - { name: a, address: 127.0.0.1:${PORTS.a}${maxconn} }
      - { name: b, address: 127.0.0.1:${PORTS.b}${maxconn} }
${overload}`,
  );
  return file;
}

/** One run: servers (b slow or not), switchyard with or without limits, autocannon. */
async function run({ limits, slow }) {
  const a = await startServer('a', PORTS.a, 0);
  const b = await startServer('b', PORTS.b, slow ? SLOW_MS : 0);
  let sy = null;
  try {
    sy = await startSwitchyard(writeConfig(limits), PORTS.http);
    const result = await autocannon({ url: `http://127.0.0.1:${PORTS.http}/`, connections: CONNECTIONS, duration: SECONDS, pipelining: 1 });
    const codes = result.statusCodeStats ?? {};
    const [sa, sb] = [await serverStats(PORTS.a), await serverStats(PORTS.b)];
    return {
      rps: result.requests.average,
      total: result.requests.total,
      errors: result.errors + result.timeouts,
      status503: codes['503']?.count ?? 0,
      non2xx: result.non2xx,
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      servers: [sa, sb],
    };
  } finally {
    if (sy !== null) await stop(sy);
    await stop(a);
    await stop(b);
  }
}

function line(label, r) {
  const servers = r.servers.map((s) => `${s.name}: ${s.hits} req, max ${s.maxConns} conn / ${s.maxInflight} in flight`).join('; ');
  console.log(
    `bench:overload ${label.padEnd(28)} ${r.rps.toFixed(0).padStart(7)} req/s  failed ${r.errors}  503 ${r.status503}  non-2xx ${r.non2xx}  ` +
      `latency p50 ${r.p50} ms p90 ${r.p90} ms p99 ${r.p99} ms  (${servers})`,
  );
}

let failed = false;
const check = (ok, what) => {
  if (!ok) {
    failed = true;
    console.log(`bench:overload FAIL: ${what}`);
  }
};

if (values.only === undefined || values.only === 'queue') {
  const free = await run({ limits: false, slow: false });
  line('no limits', free);
  const queued = await run({ limits: true, slow: false });
  line(`maxconn ${MAXCONN} + queue`, queued);
  const ratio = queued.rps / free.rps;
  console.log(`bench:overload queue: throughput ${ratio.toFixed(3)} x the run without limits (wanted >= 0.9)`);
  check(queued.errors === 0 && queued.non2xx === 0, 'failed or non-2xx requests with the queue');
  check(ratio >= 0.9, `throughput with the queue ${ratio.toFixed(3)} x the run without limits, wanted >= 0.9 (run it alone: a busy machine makes this noise)`);
  check(
    queued.servers.every((s) => s.maxConns <= MAXCONN && s.maxInflight <= MAXCONN),
    `a server saw more than ${MAXCONN} connections or requests at once`,
  );
}

if (values.only === undefined || values.only === 'slow') {
  const base = await run({ limits: true, slow: false });
  line('two fast servers, limits', base);
  const exposed = await run({ limits: false, slow: true });
  line(`b slow (${SLOW_MS} ms), no limits`, exposed);
  const guarded = await run({ limits: true, slow: true });
  line(`b slow (${SLOW_MS} ms), limits`, guarded);
  console.log(
    `bench:overload slow server: p50 ${guarded.p50} ms with limits vs ${exposed.p50} ms without (two fast servers: ${base.p50} ms); ` +
      `throughput ${(guarded.rps / exposed.rps).toFixed(2)} x`,
  );
  check(guarded.servers[1].maxInflight <= MAXCONN, 'the slow server held more than its maxconn');
  check(guarded.errors === 0, 'failed requests with one slow server');
}

console.log(`bench:overload (${SECONDS}s runs, ${CONNECTIONS} connections, Node ${process.version})`);
process.exit(failed ? 1 : 0);

// Shared pieces of the throughput benchmarks: a fast local backend, switchyard as a child
// process on a generated config, and autocannon runs. Everything listens on 127.0.0.1 and
// every run is bounded in time.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * A raw HTTP/1.1 keep-alive server answering every request with a fixed response: cheap enough
 * that the proxy, not the backend, is what a benchmark measures.
 */
export function startBackend(port, bodyBytes = 12) {
  const body = Buffer.alloc(bodyBytes, 'x');
  body.write('hello world\n'.slice(0, bodyBytes));
  const response = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\n\r\n`), body]);
  const server = createServer({ noDelay: true }, (socket) => {
    let pending = '';
    socket.on('data', (chunk) => {
      pending += chunk.toString('latin1');
      let i;
      while ((i = pending.indexOf('\r\n\r\n')) !== -1) {
        pending = pending.slice(i + 4);
        socket.write(response);
      }
    });
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

export function writeConfig({ httpPort, tcpPort, statsPort, backendPort, workers = 1 }) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(file, `stats: { bind: 127.0.0.1:${statsPort} }
workers: ${workers}
logging: { level: warn }
frontends:
  h: { mode: http, bind: 127.0.0.1:${httpPort}, backend: bh }
  t: { mode: tcp, bind: 127.0.0.1:${tcpPort}, backend: bt }
backends:
  bh: { mode: http, health: { type: none }, servers: [ { address: 127.0.0.1:${backendPort} } ] }
  bt: { mode: tcp, health: { type: none }, servers: [ { address: 127.0.0.1:${backendPort} } ] }
`);
  return file;
}

/** Start `switchyard --config file` and resolve once `port` accepts connections. */
export async function startSwitchyard(file, port) {
  const child = spawn(process.execPath, [join(ROOT, 'bin/switchyard.js'), '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`switchyard exited with ${child.exitCode}`);
    if (await canConnect(port)) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('switchyard did not start within 10 s');
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.on('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/** Requests per second through `url`, keep-alive, `connections` in parallel. */
export async function measure(url, { seconds = 5, connections = 64 } = {}) {
  const result = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/**
 * Direct vs through switchyard, interleaved rounds in one run, as ratios of the medians:
 * absolute figures drift on a shared machine, ratios measured side by side do not.
 */
export async function compare({ rounds = 3, seconds = 5, connections = 64, workers = 1, modes = ['http', 'tcp'] } = {}) {
  const ports = { backendPort: 19200, httpPort: 19210, tcpPort: 19211, statsPort: 19299 };
  const backend = await startBackend(ports.backendPort);
  const file = writeConfig({ ...ports, workers });
  const child = await startSwitchyard(file, ports.httpPort);
  const results = { direct: [], http: [], tcp: [] };
  try {
    for (let r = 0; r < rounds; r++) {
      results.direct.push((await measure(`http://127.0.0.1:${ports.backendPort}/hello`, { seconds, connections })).rps);
      for (const mode of modes) {
        const port = mode === 'http' ? ports.httpPort : ports.tcpPort;
        const m = await measure(`http://127.0.0.1:${port}/hello`, { seconds, connections });
        if (m.errors > 0) throw new Error(`${mode}: ${m.errors} failed requests during the benchmark`);
        results[mode].push(m.rps);
      }
    }
  } finally {
    await stop(child);
    backend.close();
  }
  const direct = median(results.direct);
  const out = { direct, rounds, seconds, connections, workers };
  for (const mode of modes) out[mode] = { rps: median(results[mode]), ratio: median(results[mode]) / direct };
  return out;
}

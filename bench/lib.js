// Shared pieces of the throughput benchmarks (`npm run bench`, `npm run bench:guard`).
//
// What runs where: the backend, a bare node:net pipe and switchyard are each a child process;
// the bench process only drives autocannon (optionally in worker threads). So the load client
// never shares an event loop with what it measures.
//
// Two figures per target, measured in the same interleaved rounds:
// - requests/s through it (autocannon, keep-alive, fixed connections);
// - CPU time the proxy process(es) spent per request (utime+stime from /proc, workers
//   included). On a small machine autocannon is often the bottleneck: every proxy then shows
//   about the same requests/s and a throughput ratio cannot see a proxy that got 3x more
//   expensive. CPU per request does not depend on who the bottleneck is: it is the proxy's own
//   cost. Both are compared with the bare pipe (the floor any Node proxy pays: accept, connect,
//   copy bytes), which cancels out the machine and the Node version.
// Everything listens on 127.0.0.1 in the 19200-19299 range kept for benchmarks; every run is
// bounded in time.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const PORTS = { backend: 19200, pipe: 19201, http: 19210, tcp: 19211, stats: 19299 };

/**
 * A raw HTTP/1.1 keep-alive server answering every request with a fixed 12-byte response:
 * cheap enough that the proxy, not the backend, is what a benchmark measures. A request with
 * `Connection: close` gets its response and then the close (so a TCP-mode proxy sees the
 * server end the connection, as with any HTTP/1.0-style server).
 */
const BACKEND_SOURCE = `
import { createServer } from 'node:net';
const body = 'hello world\\n';
const response = Buffer.from('HTTP/1.1 200 OK\\r\\ncontent-type: text/plain\\r\\ncontent-length: ' + body.length + '\\r\\n\\r\\n' + body);
const closing = /\\r\\nconnection: *close\\r\\n/i;
createServer({ noDelay: true }, (socket) => {
  let pending = '';
  socket.on('data', (chunk) => {
    pending += chunk.toString('latin1');
    let i;
    while ((i = pending.indexOf('\\r\\n\\r\\n')) !== -1) {
      const head = pending.slice(0, i + 2);
      pending = pending.slice(i + 4);
      if (closing.test(head)) { socket.end(response); return; }
      socket.write(response);
    }
  });
  socket.on('error', () => socket.destroy());
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

/** The floor of any Node proxy: one upstream connection per client connection, bytes piped. */
const PIPE_SOURCE = `
import { createServer, connect } from 'node:net';
createServer({ noDelay: true }, (client) => {
  const upstream = connect({ port: Number(process.env.UPSTREAM), host: '127.0.0.1', noDelay: true });
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close); upstream.on('error', close);
  // The server closing first (Connection: close) closes the client once what it sent is
  // written, as HAProxy and switchyard do: a client that never closes its side (autocannon
  // reconnects without closing the old socket) must not hold the descriptor, or the pipe runs
  // out of them within a minute and answers nothing.
  client.on('close', close);
  upstream.on('close', () => { if (!client.writableEnded) client.end(); client.once('finish', () => client.destroy()); if (client.writableFinished) client.destroy(); });
  client.pipe(upstream).pipe(client);
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
`;

/** Run `source` (an ES module) in its own node process; resolve when it prints `listening`. */
export function spawnModule(source, env) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('helper process did not start within 10 s'));
    }, 10_000);
    child.stdout.on('data', (d) => {
      if (String(d).includes('listening')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`helper process exited with ${code}`));
    });
  });
}

export function startBackend(port = PORTS.backend) {
  return spawnModule(BACKEND_SOURCE, { PORT: String(port) });
}

export function startPipe(port = PORTS.pipe, upstream = PORTS.backend) {
  return spawnModule(PIPE_SOURCE, { PORT: String(port), UPSTREAM: String(upstream) });
}

export function writeConfig({ httpPort, tcpPort, statsPort, backendPort, workers = 1 }) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-bench-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    `stats: { bind: 127.0.0.1:${statsPort} }
workers: ${workers}
logging: { level: warn }
frontends:
  h: { mode: http, bind: 127.0.0.1:${httpPort}, backend: bh }
  t: { mode: tcp, bind: 127.0.0.1:${tcpPort}, backend: bt }
backends:
  bh: { mode: http, health: { type: none }, servers: [ { address: 127.0.0.1:${backendPort} } ] }
  bt: { mode: tcp, health: { type: none }, servers: [ { address: 127.0.0.1:${backendPort} } ] }
`,
  );
  return file;
}

/**
 * Start `switchyard --config file` and resolve once `port` accepts connections; `root` is the
 * checkout whose build runs (another one to compare builds in one run: tls-bench --compare).
 */
export async function startSwitchyard(file, port, root = ROOT) {
  const child = spawn(process.execPath, [join(root, 'bin/switchyard.js'), '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
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
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export function stop(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

let ticksPerSecond = 0;

/**
 * CPU seconds (user + system) used so far by `pid` and its live children (cluster workers),
 * from /proc/<pid>/stat; null where there is no /proc.
 */
export function cpuSeconds(pid) {
  try {
    if (ticksPerSecond === 0) ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = (p) => {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) in parentheses.
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) };
    };
    let ticks = stat(pid).ticks;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === pid) continue;
      try {
        const s = stat(entry);
        if (s.ppid === pid) ticks += s.ticks;
      } catch {
        /* exited meanwhile */
      }
    }
    return ticks / ticksPerSecond;
  } catch {
    return null;
  }
}

/**
 * Requests per second through `url` (keep-alive, `connections` in parallel), and the CPU time
 * process `pid` spent per request meanwhile (µs; null without a pid or /proc).
 */
export async function measure(url, { seconds = 5, connections = 64, clientWorkers = 0, pid = null, close = false } = {}) {
  const cpu0 = pid === null ? null : cpuSeconds(pid);
  const options = { url, connections, duration: seconds, pipelining: 1 };
  // New connections: every request asks for the close; autocannon reconnects on the server's FIN.
  if (close) options.headers = { connection: 'close' };
  if (clientWorkers > 0) options.workers = clientWorkers;
  const result = await autocannon(options);
  const cpu1 = pid === null ? null : cpuSeconds(pid);
  const requests = result.requests.total;
  const cpuUs = cpu0 !== null && cpu1 !== null && requests > 0 ? ((cpu1 - cpu0) * 1e6) / requests : null;
  // With Connection: close, autocannon may write its next request on a connection the server is
  // closing (it does not read the header): those socket errors are the client's, not a failed
  // response, and are not counted as failures for new connections. Non-2xx answers always are.
  const errors = (close ? 0 : result.errors) + result.non2xx;
  return { rps: result.requests.average, requests, p99: result.latency.p99, errors, socketErrors: result.errors, cpuUs };
}

export function median(values) {
  const s = values.filter((v) => v !== null).sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.floor((s.length - 1) / 2)];
}

const ratio = (a, b) => (a === null || b === null || b === 0 ? null : a / b);

/**
 * Direct, bare pipe, and switchyard per mode, in interleaved rounds of one run; medians per
 * target, and ratios of the medians: absolute figures drift on a shared machine, figures
 * measured side by side drift together.
 *   direct            requests/s to the backend itself (for the README's "x direct")
 *   <mode>.ratio      switchyard requests/s ÷ direct
 *   <mode>.vsPipe     switchyard requests/s ÷ bare pipe requests/s
 *   <mode>.cpuVsPipe  bare pipe CPU per request ÷ switchyard CPU per request (1 = as cheap as
 *                     the pipe; 0.5 = twice its cost). The guard's sharpest figure.
 */
export async function compare({
  rounds = 3,
  seconds = 5,
  connections = 64,
  workers = 1,
  clientWorkers = 0,
  warmup = 1,
  modes = ['http', 'tcp'],
  close = false,
} = {}) {
  const backend = await startBackend();
  const pipe = await startPipe();
  const file = writeConfig({ httpPort: PORTS.http, tcpPort: PORTS.tcp, statsPort: PORTS.stats, backendPort: PORTS.backend, workers });
  let sy;
  try {
    sy = await startSwitchyard(file, PORTS.http);
  } catch (error) {
    await stop(pipe);
    await stop(backend);
    throw error;
  }
  const targets = [
    { key: 'direct', port: PORTS.backend, pid: null },
    { key: 'pipe', port: PORTS.pipe, pid: pipe.pid },
    ...modes.map((mode) => ({ key: mode, port: PORTS[mode], pid: sy.pid })),
  ];
  const runs = Object.fromEntries(targets.map((t) => [t.key, { rps: [], cpuUs: [] }]));
  try {
    // JIT warm-up, not counted.
    if (warmup > 0) for (const t of targets) await measure(`http://127.0.0.1:${t.port}/hello`, { seconds: warmup, connections, clientWorkers, close });
    for (let r = 0; r < rounds; r++) {
      for (const t of targets) {
        const m = await measure(`http://127.0.0.1:${t.port}/hello`, { seconds, connections, clientWorkers, pid: t.pid, close });
        if (m.errors > 0) throw new Error(`${t.key}: ${m.errors} failed requests during the benchmark`);
        // A target that answered nothing (it exited, or its port was taken) would make every
        // ratio against it null: say so instead of writing or checking a floor without it.
        if (m.requests === 0) throw new Error(`${t.key}: no request answered in ${seconds} s`);
        runs[t.key].rps.push(m.rps);
        runs[t.key].cpuUs.push(m.cpuUs);
      }
    }
  } finally {
    await stop(sy);
    await stop(pipe);
    await stop(backend);
  }
  const direct = median(runs.direct.rps);
  const pipeFigures = { rps: median(runs.pipe.rps), cpuUs: median(runs.pipe.cpuUs) };
  const out = { direct, pipe: pipeFigures, rounds, seconds, connections, workers, clientWorkers, close, node: process.version };
  for (const mode of modes) {
    const rps = median(runs[mode].rps);
    const cpuUs = median(runs[mode].cpuUs);
    out[mode] = { rps, cpuUs, ratio: ratio(rps, direct), vsPipe: ratio(rps, pipeFigures.rps), cpuVsPipe: ratio(pipeFigures.cpuUs, cpuUs) };
  }
  return out;
}

#!/usr/bin/env node
// HTTPS side by side: HAProxy 2.6 (`bind ... ssl crt`) and switchyard (`tls:`) terminating TLS
// in front of the same backend, with the same certificate (ECDSA P-256, made here with
// openssl) and the same cipher (TLS 1.3, TLS_AES_128_GCM_SHA256), one process/thread each.
// Two loads from wrk, each printed as req/s and as the ratio switchyard / HAProxy:
//   keep-alive:    requests over long-lived TLS connections (the bulk-traffic cost);
//   handshakes:    `Connection: close`, a new connection and full handshake per request.
// A third target is the floor of any Node TLS proxy: a bare node:tls server piping each
// connection to the backend (what the plaintext benchmarks' node:net pipe is for plain TCP),
// with the same certificate, cipher and curve. Besides req/s, each target's CPU time per
// request (its process's utime+stime from /proc over the run, wrk's request count) is printed:
// on a shared 2-core machine req/s also depends on what the other processes take, CPU per
// request is each proxy's own cost.
// Usage: node bench/tls-bench.js [--seconds 10] [--connections 64] [--rounds 3] [--warmup 2]
//        [--stream-reads] (a fourth target: switchyard reading TLS through 'data' events)
//        [--compare DIR] (another target: the switchyard build in checkout DIR, e.g. main's,
//        built with `npm ci` there: old and new measured in the same rounds)
//        [--only keep-alive|handshakes] (one load instead of both)
// Needs haproxy, wrk and openssl (Debian packages). The lead runs it for figures: it loads the
// machine; a smoke run is `--seconds 2 --rounds 1`.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, median, startBackend, startSwitchyard, stop } from './lib.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    // Also switchyard with SWITCHYARD_STREAM_READS=1 ('data' events instead of onread buffers).
    'stream-reads': { type: 'boolean', default: false },
    compare: { type: 'string' },
    only: { type: 'string' },
  },
});
const warmup = Number(values.warmup);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const PORTS = {
  backend: 19400,
  haproxy: 19401,
  switchyard: 19402,
  nodeTls: 19403,
  streamReads: 19404,
  compare: 19405,
  stats: 19499,
  streamStats: 19498,
  compareStats: 19497,
};
const CIPHER = 'TLS_AES_128_GCM_SHA256';

for (const tool of ['haproxy', 'wrk', 'openssl']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    console.error(`tls-bench needs ${tool} (apt-get install ${tool})`);
    process.exit(1);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'switchyard-tls-bench-'));
execFileSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'key.pem',
    '-out',
    'cert.pem',
    '-days',
    '2',
    '-subj',
    '/CN=bench.test',
    '-addext',
    'subjectAltName=DNS:bench.test,IP:127.0.0.1',
  ],
  { cwd: dir, stdio: 'ignore' },
);
writeFileSync(join(dir, 'combined.pem'), readFileSync(join(dir, 'cert.pem'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8'));

writeFileSync(
  join(dir, 'haproxy.cfg'),
  `global
  nbthread 1
  ssl-default-bind-ciphersuites ${CIPHER}
  ssl-default-bind-options ssl-min-ver TLSv1.3
  tune.ssl.default-dh-param 2048
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:${PORTS.haproxy} ssl crt ${join(dir, 'combined.pem')} alpn http/1.1
  default_backend be
backend be
  server s1 127.0.0.1:${PORTS.backend}
`,
);
const switchyardConfig = (port, statsPort) => `stats: { bind: 127.0.0.1:${statsPort} }
logging: { level: warn }
frontends:
  fe:
    bind: 127.0.0.1:${port}
    backend: be
    tls: { certificates: [ { cert: cert.pem, key: key.pem } ], min_version: TLSv1.3, ciphers: ${CIPHER} }
backends:
  be: { health: { type: none }, servers: [ { address: 127.0.0.1:${PORTS.backend} } ] }
`;
writeFileSync(join(dir, 'switchyard.yaml'), switchyardConfig(PORTS.switchyard, PORTS.stats));
writeFileSync(join(dir, 'stream-reads.yaml'), switchyardConfig(PORTS.streamReads, PORTS.streamStats));
writeFileSync(join(dir, 'compare.yaml'), switchyardConfig(PORTS.compare, PORTS.compareStats));

// The floor: node:tls terminating and piping to the backend, nothing else.
writeFileSync(
  join(dir, 'node-tls.mjs'),
  `
import { createServer } from 'node:tls';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
const options = { cert: readFileSync('cert.pem'), key: readFileSync('key.pem'), minVersion: 'TLSv1.3', ciphers: '${CIPHER}', ALPNProtocols: ['http/1.1'], noDelay: true };
createServer(options, (client) => {
  const upstream = connect({ port: ${PORTS.backend}, host: '127.0.0.1', noDelay: true });
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close); upstream.on('error', close);
  client.on('close', close); upstream.on('close', () => { if (!client.writableEnded) client.end(); });
  client.pipe(upstream).pipe(client);
}).listen(${PORTS.nodeTls}, '127.0.0.1', () => console.log('listening'));
`,
);

/** One wrk run against `target`: req/s, and the target process's CPU µs per request. */
function wrk(target, extra, duration = seconds) {
  return new Promise((resolve, reject) => {
    const args = ['-t', '2', '-c', String(connections), '-d', `${duration}s`, ...extra, `https://127.0.0.1:${target.port}/`];
    const cpu0 = cpuSeconds(target.pid);
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', () => {
      const cpu1 = cpuSeconds(target.pid);
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const n = /(\d+) requests in/.exec(out);
      const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
      if (m === null || n === null) {
        reject(new Error(`wrk printed no rate:\n${out}`));
        return;
      }
      const requests = Number(n[1]);
      const cpuUs = cpu0 !== null && cpu1 !== null && requests > 0 ? ((cpu1 - cpu0) * 1e6) / requests : null;
      resolve({ rps: Number(m[1]), cpuUs, note: errors ? `${target.name}: ${errors[0]}` : '' });
    });
  });
}

/** What a handshake with `port` negotiates (protocol, cipher, key exchange group), by openssl s_client. */
function negotiated(port) {
  // -brief prints the session's parameters on stderr.
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-brief'], { input: '', encoding: 'utf8', timeout: 5000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const field = (name) => new RegExp(`${name}: (.*)`).exec(out)?.[1]?.trim() ?? '?';
  return `${field('Protocol version')} ${field('Ciphersuite')} ${field('(?:Negotiated TLS1.3 group|Server Temp Key|Peer Temp Key)')}`;
}

/** Start a module file in its own node process; resolves once it prints `listening`. */
function startModule(file) {
  const child = spawn(process.execPath, [file], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      if (String(d).includes('listening')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}`)));
  });
}

const fmt = (v, digits = 0) => (v === null ? '?' : v.toFixed(digits));
const children = [];
const backend = await startBackend(PORTS.backend);
children.push(backend);
const haproxy = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'inherit'] });
children.push(haproxy);
try {
  const switchyard = await startSwitchyard(join(dir, 'switchyard.yaml'), PORTS.switchyard);
  children.push(switchyard);
  const nodeTls = await startModule(join(dir, 'node-tls.mjs'));
  children.push(nodeTls);
  let streamReads = null;
  if (values['stream-reads']) {
    process.env.SWITCHYARD_STREAM_READS = '1';
    streamReads = await startSwitchyard(join(dir, 'stream-reads.yaml'), PORTS.streamReads);
    delete process.env.SWITCHYARD_STREAM_READS;
    children.push(streamReads);
  }
  let compared = null;
  if (values.compare !== undefined) {
    compared = await startSwitchyard(join(dir, 'compare.yaml'), PORTS.compare, values.compare);
    children.push(compared);
  }
  await new Promise((r) => setTimeout(r, 500));
  const targets = [
    { name: 'haproxy', port: PORTS.haproxy, pid: haproxy.pid },
    { name: 'switchyard', port: PORTS.switchyard, pid: switchyard.pid },
    { name: 'node:tls pipe', port: PORTS.nodeTls, pid: nodeTls.pid },
    ...(streamReads === null ? [] : [{ name: 'sy data evts', port: PORTS.streamReads, pid: streamReads.pid }]),
    ...(compared === null ? [] : [{ name: 'sy --compare', port: PORTS.compare, pid: compared.pid }]),
  ];
  // Same protocol, cipher and group on every target, or the comparison is not fair.
  for (const t of targets) console.log(`${t.name.padEnd(14)} negotiates ${negotiated(t.port)}`);
  const loads = [
    { name: 'keep-alive', extra: [] },
    { name: 'handshakes', extra: ['-H', 'Connection: close'] },
  ];
  for (const { name, extra } of loads.filter((l) => values.only === undefined || l.name === values.only)) {
    // JIT warm-up, not counted.
    if (warmup > 0) for (const t of targets) await wrk(t, extra, warmup);
    const runs = targets.map(() => []);
    for (let i = 0; i < rounds; i++) {
      // Rotating order, so no target always runs on a warmer (or busier) machine.
      for (let j = 0; j < targets.length; j++) {
        const k = (i + j) % targets.length;
        runs[k].push(await wrk(targets[k], extra));
      }
    }
    const rps = runs.map((r) => median(r.map((x) => x.rps)));
    const cpu = runs.map((r) => median(r.map((x) => x.cpuUs)));
    const notes = runs
      .flat()
      .map((x) => x.note)
      .filter(Boolean);
    const [h, sw, floor] = [0, 1, 2];
    console.log(`${name}:`);
    for (let k = 0; k < targets.length; k++) {
      console.log(
        `  ${targets[k].name.padEnd(14)} ${fmt(rps[k]).padStart(8)} req/s  ${fmt(rps[k] / rps[h], 3)} x haproxy   ${fmt(cpu[k], 1).padStart(7)} µs CPU/req  ${fmt(cpu[h] / cpu[k], 3)} x haproxy's efficiency`,
      );
    }
    console.log(
      `  switchyard / node:tls pipe: ${fmt(rps[sw] / rps[floor], 3)} x req/s, ${fmt(cpu[floor] / cpu[sw], 3)} x efficiency${notes.length ? `\n  (${notes.join('; ')})` : ''}`,
    );
  }
  console.log(
    `(${rounds} rounds of ${seconds}s after ${warmup}s warm-up, ${connections} connections, wrk -t2, TLS 1.3 ${CIPHER}, ECDSA P-256, one HAProxy thread vs one switchyard process vs one node:tls process)`,
  );
} finally {
  await Promise.all(children.map((child) => stop(child)));
  rmSync(dir, { recursive: true, force: true });
}

#!/usr/bin/env node
// HTTPS side by side: HAProxy 2.6 (`bind ... ssl crt`) and switchyard (`tls:`) terminating TLS
// in front of the same backend, with the same certificate (ECDSA P-256, made here with
// openssl) and the same cipher (TLS 1.3, TLS_AES_128_GCM_SHA256), one process/thread each.
// Two loads from wrk, each printed as req/s and as the ratio switchyard / HAProxy:
//   keep-alive:    requests over long-lived TLS connections (the bulk-traffic cost);
//   handshakes:    `Connection: close`, a new connection and full handshake per request.
// Usage: node bench/tls-bench.js [--seconds 10] [--connections 64] [--rounds 3]
// Needs haproxy, wrk and openssl (Debian packages). The lead runs it for figures: it loads the
// machine; a smoke run is `--seconds 2 --rounds 1`.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startBackend, startSwitchyard, stop } from './lib.js';

const { values } = parseArgs({ options: {
  seconds: { type: 'string', default: '10' }, connections: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' },
} });
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const PORTS = { backend: 19400, haproxy: 19401, switchyard: 19402, stats: 19499 };
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
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=bench.test', '-addext', 'subjectAltName=DNS:bench.test,IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
writeFileSync(join(dir, 'combined.pem'), readFileSync(join(dir, 'cert.pem'), 'utf8') + readFileSync(join(dir, 'key.pem'), 'utf8'));

writeFileSync(join(dir, 'haproxy.cfg'), `global
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
`);
writeFileSync(join(dir, 'switchyard.yaml'), `stats: { bind: 127.0.0.1:${PORTS.stats} }
logging: { level: warn }
frontends:
  fe:
    bind: 127.0.0.1:${PORTS.switchyard}
    backend: be
    tls: { certificates: [ { cert: cert.pem, key: key.pem } ], min_version: TLSv1.3, ciphers: ${CIPHER} }
backends:
  be: { health: { type: none }, servers: [ { address: 127.0.0.1:${PORTS.backend} } ] }
`);

/** req/s from one wrk run against `port`. */
function wrk(port, extra) {
  return new Promise((resolve, reject) => {
    const args = ['-t', '2', '-c', String(connections), '-d', `${seconds}s`, ...extra, `https://127.0.0.1:${port}/`];
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('exit', () => {
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
      if (m === null) reject(new Error(`wrk printed no rate:\n${out}`));
      else resolve({ rps: Number(m[1]), note: errors ? errors[0] : '' });
    });
  });
}

const backend = await startBackend(PORTS.backend);
const haproxy = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'inherit'] });
const switchyard = await startSwitchyard(join(dir, 'switchyard.yaml'), PORTS.switchyard);
await new Promise((r) => setTimeout(r, 500));
try {
  const loads = [['keep-alive', []], ['handshakes', ['-H', 'Connection: close']]];
  for (const [name, extra] of loads) {
    const h = [];
    const s = [];
    for (let i = 0; i < rounds; i++) {
      // Alternating order, so neither always runs on a warmer machine.
      if (i % 2 === 0) { h.push(await wrk(PORTS.haproxy, extra)); s.push(await wrk(PORTS.switchyard, extra)); }
      else { s.push(await wrk(PORTS.switchyard, extra)); h.push(await wrk(PORTS.haproxy, extra)); }
    }
    const hr = median(h.map((x) => x.rps));
    const sr = median(s.map((x) => x.rps));
    const notes = [...h, ...s].map((x) => x.note).filter(Boolean);
    console.log(`${name.padEnd(11)} haproxy ${hr.toFixed(0).padStart(8)} req/s   switchyard ${sr.toFixed(0).padStart(8)} req/s   ${(sr / hr).toFixed(3)} x haproxy${notes.length ? `   (${notes.join('; ')})` : ''}`);
  }
  console.log(`(${rounds} rounds of ${seconds}s, ${connections} connections, wrk -t2, TLS 1.3 ${CIPHER}, ECDSA P-256, one HAProxy thread vs one switchyard process)`);
} finally {
  haproxy.kill('SIGTERM');
  await stop(switchyard);
  backend.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}

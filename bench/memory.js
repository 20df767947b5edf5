#!/usr/bin/env node
// `npm run bench:memory`: what a connection costs switchyard in memory, measured with 10,000
// of each kind (docs/performance.md):
//   idle client connection    accepted by an HTTP frontend, no request yet (a browser's
//                             preconnect, a keep-alive client between requests);
//   pooled server connection  a keep-alive connection to a server, idle in its pool.
// Figures per connection: V8 heap used + external memory (ArrayBuffers: read buffers), after a
// full GC, and the process RSS (adds libuv handles and malloc'd native state; noisier).
// The connections come from a child process, so the clients' own memory is not counted. The
// pool is filled the way a finished exchange fills it (Upstream.release()) from this process,
// which keeps the proxy under its file limit: 10,000 clients and 10,000 server connections at
// once would need more than the 20,000 descriptors a container often allows.
//
//   node bench/memory.js [--connections N] [--json]
// test/memory.test.ts runs the same measurement with fewer connections and generous bounds.
import { spawn } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DIST = new URL('../dist/', import.meta.url);
/** Pooled connections per server are capped (MAX_IDLE_PER_SERVER): spread over this many. */
const SERVERS = 50;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

function settle() {
  for (let i = 0; i < 3; i++) gc();
  const m = process.memoryUsage();
  return { js: m.heapUsed + m.external, rss: m.rss };
}

/** A child process that opens `n` connections to `port` (or listens on `ports`) and holds them. */
const HOLDER_SOURCE = `
import { connect, createServer } from 'node:net';
const sockets = [];
const mode = process.env.MODE;
if (mode === 'clients') {
  const n = Number(process.env.N), port = Number(process.env.PORT);
  let open = 0, i = 0;
  const next = () => {
    // 200 connects in flight at most: a listen backlog is finite.
    while (i < n && i - open < 200) {
      i++;
      const s = connect(port, '127.0.0.1', () => { if (++open === n) console.log('ready'); else next(); });
      s.on('error', (e) => { console.error('client ' + e.message); process.exit(1); });
      sockets.push(s);
    }
  };
  next();
} else {
  const ports = [];
  let listening = 0;
  const base = Number(process.env.SERVERS);
  for (let k = 0; k < base; k++) {
    const srv = createServer((s) => { sockets.push(s); s.on('error', () => {}); });
    srv.listen(0, '127.0.0.1', () => { ports.push(srv.address().port); if (++listening === base) console.log('ports ' + ports.join(',')); });
  }
}
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

function holder(env) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', HOLDER_SOURCE], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`holder (${env.MODE}) not ready within 120 s`)), 120_000);
    child.stdout.on('data', (d) => {
      out += String(d);
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(out.trim());
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`holder (${env.MODE}) exited with ${code}`));
    });
  });
  return {
    child,
    ready,
    stop: () =>
      new Promise((r) => {
        if (child.exitCode !== null) return r();
        child.on('exit', r);
        child.stdin.end();
      }),
  };
}

async function waitFor(cond, what, timeoutMs = 120_000) {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** @typedef {{ js: number, rss: number }} PerConnection Bytes: JS heap + external, and RSS. */

/**
 * Bytes per idle client connection and per pooled server connection, `connections` of each.
 * @returns {Promise<{ connections: number, node: string, idleClient: PerConnection, pooledServer: PerConnection }>}
 */
export async function measureMemory({ connections = 10_000 } = {}) {
  const { startSwitchyard } = await import(new URL('switchyard.js', DIST).href);
  const { parseConfig } = await import(new URL('config/load.js', DIST).href);
  const { openUpstream } = await import(new URL('balancer/upstream.js', DIST).href);

  const servers = holder({ MODE: 'servers', SERVERS: String(SERVERS) });
  const ports = (await servers.ready).replace('ports ', '').split(',').map(Number);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-memory-'));
  const file = join(dir, 'switchyard.yaml');
  const serverList = ports.map((p) => `{ address: 127.0.0.1:${p} }`).join(', ');
  writeFileSync(
    file,
    `logging: { level: silent }
stats: { bind: 127.0.0.1:0 }
frontends:
  h: { mode: http, bind: 127.0.0.1:0, backend: b, timeouts: { client: 10m, keep_alive: 10m, http_request: 10m } }
backends:
  b: { mode: http, health: { type: none }, servers: [ ${serverList} ] }
`,
  );
  const cfg = parseConfig(await import('node:fs').then((fs) => fs.readFileSync(file, 'utf8')), file);
  const { pino } = await import('pino');
  const sy = await startSwitchyard({ config: cfg, logger: pino({ level: 'silent' }), watch: false });
  const frontend = sy.runtime().frontends.get('h');
  const backend = sy.runtime().backends.get('b');
  const result = { connections, node: process.version };
  try {
    // --- idle client connections
    const before = settle();
    const clients = holder({ MODE: 'clients', N: String(connections), PORT: String(sy.frontendAddress('h').port) });
    await clients.ready;
    await waitFor(() => frontend.counters.scur >= connections, `${connections} client sessions`);
    const withClients = settle();
    result.idleClient = { js: Math.round((withClients.js - before.js) / connections), rss: Math.round((withClients.rss - before.rss) / connections) };
    await clients.stop();
    await waitFor(() => frontend.counters.scur === 0, 'the client sessions to close');

    // --- pooled server connections
    const base = settle();
    const owner = {
      onUpstreamConnect() {},
      onUpstreamData() {
        return false;
      },
      onUpstreamEnd() {},
      onUpstreamClose() {},
      onUpstreamDrain() {},
    };
    const ups = [];
    for (let i = 0; i < connections; i++) {
      ups.push(openUpstream(backend.servers[i % backend.servers.length], owner, false));
      // Keep the connects in flight bounded, as for the clients.
      if (i % 200 === 199) await waitFor(() => ups.every((u) => u.connected || u.socket.destroyed), 'server connects');
    }
    await waitFor(() => ups.every((u) => u.connected), `${connections} server connections`);
    for (const u of ups) u.release();
    ups.length = 0;
    const pooled = backend.servers.reduce((n, s) => n + s.idle.length, 0);
    if (pooled !== connections) throw new Error(`pooled ${pooled} of ${connections} server connections`);
    const withPool = settle();
    result.pooledServer = { js: Math.round((withPool.js - base.js) / connections), rss: Math.round((withPool.rss - base.rss) / connections) };
  } finally {
    await sy.stop(0);
    await servers.stop();
  }
  return result;
}

if (process.argv[1] && fileURLToPath(pathToFileURL(process.argv[1])) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { connections: { type: 'string', default: '10000' }, json: { type: 'boolean', default: false } } });
  const r = await measureMemory({ connections: Number(values.connections) });
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(`bench:memory ${r.connections} connections of each kind, Node ${r.node}`);
    console.log(`bench:memory idle client connection:    ${r.idleClient.js} bytes JS heap + external, ${r.idleClient.rss} bytes RSS`);
    console.log(`bench:memory pooled server connection:  ${r.pooledServer.js} bytes JS heap + external, ${r.pooledServer.rss} bytes RSS`);
  }
  process.exit(0);
}

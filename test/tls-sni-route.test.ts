// TLS passthrough routed by SNI on a TCP frontend (`sni_routes`): each backend terminates TLS
// itself with its own certificate, the balancer only reads the ClientHello. Node clients and
// openssl s_client reach the backend their server name maps to (exact, wildcard, default);
// garbage, an oversized hello, a stalled or half-sent hello close cleanly, are counted, and
// never reach a server.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { normalizeConfig } from '../src/config/load.js';
import { start } from './support/proxy-harness.js';
import { makeCa } from './support/tls-certs.js';

const run = promisify(execFile);
const ca = makeCa();
t.teardown(() => ca.cleanup());

/** A TLS server with a certificate for `names`, answering its label; counts connections. */
async function tlsBackend(t: Test, label: string, names: string[]) {
  const cert = ca.issue(label, names);
  const state = { connections: 0 };
  const server = createTlsServer({ cert: cert.cert, key: cert.key }, (s) => {
    s.on('error', () => {});
    s.end(`${label}\n`);
  });
  server.on('connection', () => {
    state.connections++;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { state, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function setup(t: Test) {
  const a = await tlsBackend(t, 'a', ['a.test']);
  const w = await tlsBackend(t, 'w', ['*.w.test']);
  const d = await tlsBackend(t, 'default', ['default.test']);
  const cfg = normalizeConfig(
    {
      stats: { bind: '127.0.0.1:0' },
      frontends: {
        edge: { mode: 'tcp', bind: '127.0.0.1:0', backend: 'fallback', sni_routes: { 'a.test': 'be-a', '*.w.test': 'be-w' }, timeouts: { handshake: '500ms' } },
      },
      backends: {
        'be-a': { mode: 'tcp', servers: [{ address: a.address }] },
        'be-w': { mode: 'tcp', servers: [{ address: w.address }] },
        fallback: { mode: 'tcp', servers: [{ address: d.address }] },
      },
    },
    join(ca.dir, 'switchyard.yaml'),
  );
  const sy = await start(cfg);
  t.teardown(() => sy.stop(200));
  return { a, w, d, sy, port: sy.frontendAddress('edge').port, counters: sy.runtime().frontends.get('edge')!.tls };
}

/** Connect through the balancer and read what the backend says, checking its certificate. */
function hello(port: number, servername: string | undefined): Promise<{ said: string; cn: string }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername, checkServerIdentity: () => undefined });
    let said = '';
    s.on('data', (d) => {
      said += d;
    });
    s.on('end', () => resolve({ said: said.trim(), cn: String(s.getPeerCertificate().subject?.CN) }));
    s.on('error', reject);
  });
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('routes by SNI without decrypting: exact, wildcard, default, no SNI', async (t) => {
  const { port, counters } = await setup(t);
  t.same(await hello(port, 'a.test'), { said: 'a', cn: 'a.test' }, 'the backend itself terminated TLS');
  t.same(await hello(port, 'x.w.test'), { said: 'w', cn: '*.w.test' });
  t.same(await hello(port, 'A.TEST'), { said: 'a', cn: 'a.test' }, 'case-insensitive');
  t.same(await hello(port, 'y.x.w.test'), { said: 'default', cn: 'default.test' }, 'a wildcard covers one label');
  t.same(await hello(port, 'other.test'), { said: 'default', cn: 'default.test' });
  t.same(await hello(port, undefined), { said: 'default', cn: 'default.test' });
  await until('routed hellos counted', () => counters.handshakes === 6);
});

t.test('openssl s_client reaches the backend its -servername names', async (t) => {
  const { port } = await setup(t);
  const { stdout } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'z.w.test', '-CAfile', ca.caFile], {
    timeout: 15_000,
  }).catch((e: { stdout: string }) => e);
  t.match(stdout, /CN ?= ?\*\.w\.test/);
  t.match(stdout, /Verify return code: 0 \(ok\)/);
});

t.test('bad input closes cleanly, is counted, and never reaches a server', async (t) => {
  const { port, counters, a, w, d, sy } = await setup(t);
  const send = (data: Buffer | null, endAfter = false) =>
    new Promise<void>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => {
        if (data !== null) s.write(data);
        if (endAfter) s.end();
      });
      s.on('data', () => {});
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
  await send(Buffer.from('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n'));
  await until('plain HTTP counted', () => counters.failures.protocol === 1);
  await send(Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 91 + 22) & 0xff)));
  await until('garbage counted', () => counters.failures.protocol === 2);
  // A hello announcing 64 KiB: refused from its header.
  await send(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00]));
  await until('oversized counted', () => counters.failures.oversized === 1);
  // Records of a hello that never ends (each record fine, 20 KiB in all): cut at the bound.
  const rec = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x10, 0x00]), Buffer.alloc(4096, 0)]);
  rec[5] = 1;
  rec[6] = 0x00;
  rec[7] = 0x3f;
  rec[8] = 0x00; // ClientHello of 16128 bytes
  await send(Buffer.concat([rec, ...Array.from({ length: 4 }, () => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x10, 0x00]), Buffer.alloc(4096, 0)]))]));
  await until('an endless hello refused', () => counters.failures.protocol + counters.failures.oversized === 4);
  await send(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec, 0x03, 0x03]));
  await until('a stalled hello timed out', () => counters.failures.timeout === 1);
  await send(null);
  await until('a silent client timed out', () => counters.failures.timeout === 2);
  await send(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xf0, 0x01]), true);
  await until('a half hello then FIN counted', () => counters.failures.client_closed === 1);
  t.equal(a.state.connections + w.state.connections + d.state.connections, 0, 'no server saw any of it');
  t.equal(counters.handshakes, 0);
  await until('connections released', () => sy.runtime().frontends.get('edge')!.counters.scur === 0);
  t.same(await hello(port, 'a.test'), { said: 'a', cn: 'a.test' }, 'and it still routes');
});

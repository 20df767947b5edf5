// TLS to the servers (backend `tls:`): HTTPS servers verified against a CA and a servername,
// verification failures refused (and retried elsewhere), verify: false, mutual TLS with a
// client certificate, TCP backends over TLS, session resumption on new pooled connections, and
// health checks with the same settings (L6OK for tcp, https for http checks).
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { normalizeConfig } from '../src/config/load.js';
import type { BackendTlsConfig, Config } from '../src/config/types.js';
import { startProbe } from '../src/health/probes.js';
import { start } from './support/proxy-harness.js';
import { baseHealth } from './support/fake-servers.js';
import { makeCa } from './support/tls-certs.js';
import { echoRoundTrip } from './support/streams.js';

const ca = makeCa('server-ca');
const other = makeCa('other-ca');
const clients = makeCa('client-ca');
t.teardown(() => {
  ca.cleanup();
  other.cleanup();
  clients.cleanup();
});
const srvCert = ca.issue('srv', ['srv.test', 'IP:127.0.0.1']);
const client = clients.issue('client', ['switchyard-client'], { clientAuth: true });

interface Seen {
  url: string;
  reused: boolean;
  clientCn: string | null;
  proto: string | undefined;
}

/** An HTTPS server answering `name`; `close` answers with Connection: close (a new connection per request). */
async function httpsServer(t: Test, name: string, options: { mtls?: boolean; close?: boolean } = {}) {
  const seen: Seen[] = [];
  const server: HttpsServer = createHttpsServer(
    {
      cert: srvCert.cert,
      key: srvCert.key,
      ...(options.mtls ? { requestCert: true, rejectUnauthorized: true, ca: clients.caPem } : {}),
    },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = options.mtls ? socket.getPeerCertificate() : null;
      seen.push({ url: req.url!, reused: socket.isSessionReused(), clientCn: peer ? String(peer.subject?.CN) : null, proto: socket.alpnProtocol || undefined });
      if (options.close) res.setHeader('connection', 'close');
      res.end(name);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { seen, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function load(backendTls: Record<string, unknown>, addresses: string[], mode: 'http' | 'tcp' = 'http', extra: Record<string, unknown> = {}): Config {
  return normalizeConfig(
    {
      stats: { bind: '127.0.0.1:0' },
      frontends: { web: { mode, bind: '127.0.0.1:0', backend: 'api' } },
      backends: { api: { mode, retries: 1, tls: backendTls, servers: addresses.map((address) => ({ address })), ...extra } },
    },
    join(ca.dir, 'switchyard.yaml'),
  );
}

async function proxy(t: Test, cfg: Config) {
  const sy = await start(cfg);
  t.teardown(() => sy.stop(200));
  return { sy, url: `http://127.0.0.1:${sy.frontendAddress('web').port}` };
}

t.test('HTTPS server verified by CA and servername; ALPN http/1.1; sessions resumed on new connections', async (t) => {
  const s = await httpsServer(t, 'secure', { close: true });
  const { url, sy } = await proxy(t, load({ ca: ca.caFile, servername: 'srv.test' }, [s.address]));
  for (let i = 0; i < 4; i++) {
    const res = await request(`${url}/r${i}`);
    t.equal(res.statusCode, 200);
    t.equal(await res.body.text(), 'secure');
  }
  t.equal(s.seen.length, 4);
  t.equal(s.seen[0]!.proto, 'http/1.1');
  t.equal(s.seen[0]!.reused, false, 'the first connection makes a full handshake');
  t.ok(
    s.seen.slice(1).some((x) => x.reused),
    'later connections resume the session',
  );
  t.equal(sy.runtime().backends.get('api')!.counters.econ, 0);
});

t.test('the server IP is verified against the certificate when no servername is set', async (t) => {
  const s = await httpsServer(t, 'by-ip');
  const { url } = await proxy(t, load({ ca: ca.caFile }, [s.address]));
  const res = await request(url);
  t.equal(await res.body.text(), 'by-ip');
});

t.test('a certificate from another CA or for another name is refused: 502, counted as connection errors', async (t) => {
  const s = await httpsServer(t, 'never');
  const wrongCa = await proxy(t, load({ ca: other.caFile, servername: 'srv.test' }, [s.address]));
  const r1 = await request(wrongCa.url);
  t.equal(r1.statusCode, 502);
  t.match(await r1.body.text(), /502 Bad Gateway/);
  t.ok(wrongCa.sy.runtime().backends.get('api')!.counters.econ >= 1);
  const wrongName = await proxy(t, load({ ca: ca.caFile, servername: 'someone-else.test' }, [s.address]));
  const r2 = await request(wrongName.url);
  t.equal(r2.statusCode, 502);
  await r2.body.text();
  t.equal(s.seen.length, 0, 'no request reached the server');
  // verify: false accepts it (an explicit choice, e.g. self-signed lab servers).
  const lax = await proxy(t, load({ ca: other.caFile, verify: false }, [s.address]));
  const r3 = await request(lax.url);
  t.equal(await r3.body.text(), 'never');
});

t.test('mutual TLS: the client certificate is presented; without it the server refuses', async (t) => {
  const s = await httpsServer(t, 'mtls', { mtls: true });
  const withCert = await proxy(t, load({ ca: ca.caFile, servername: 'srv.test', cert: client.certFile, key: client.keyFile }, [s.address]));
  const res = await request(withCert.url);
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'mtls');
  t.equal(s.seen[0]!.clientCn, 'switchyard-client');
  const without = await proxy(t, load({ ca: ca.caFile, servername: 'srv.test' }, [s.address]));
  const r2 = await request(without.url);
  t.equal(r2.statusCode, 502);
  await r2.body.text();
  t.equal(s.seen.length, 1);
});

t.test('TCP backend over TLS: plain client bytes leave encrypted, both ways', async (t) => {
  const server = createTlsServer({ cert: srvCert.cert, key: srvCert.key }, (s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { sy } = await proxy(t, load({ ca: ca.caFile, servername: 'srv.test' }, [address], 'tcp'));
  const { connect } = await import('node:net');
  const reply = await new Promise<string>((resolve, reject) => {
    const c = connect(sy.frontendAddress('web').port, '127.0.0.1', () => c.write('hello tls server'));
    let got = '';
    c.on('data', (d) => {
      got += d.toString();
      if (got.length >= 16) c.end();
    });
    c.on('close', () => resolve(got));
    c.on('error', reject);
  });
  t.equal(reply, 'hello tls server');
  // Megabytes both ways, the reader stalling first: each read relayed to the TLS server lets
  // its buffer be reused as soon as the TLS socket let go of it (read-buffer.ts writeKept).
  // Were the TLS handle still to read a chunk after write() returned, bytes would be replaced.
  const payload = randomBytes(3 * 1024 * 1024);
  const back = await echoRoundTrip(connect(sy.frontendAddress('web').port, '127.0.0.1'), payload, 500);
  t.equal(back.length, payload.length, '3 MiB back');
  t.ok(back.equals(payload), 'byte for byte, in order');
});

t.test('health checks use the backend TLS settings: L6OK, https, and a refused certificate', async (t) => {
  const s = await httpsServer(t, 'ok');
  const [host, port] = s.address.split(':');
  const target = { host: host!, port: Number(port), address: s.address };
  const tlsOf = (raw: Record<string, unknown>): BackendTlsConfig => load(raw, [s.address]).backends[0]!.tls!;
  const good = tlsOf({ ca: ca.caFile, servername: 'srv.test' });
  let r = await startProbe(target, { ...baseHealth, type: 'tcp' }, good).done;
  t.match(r, { ok: true, code: 'L6OK' });
  t.match(r.reason, /^TLS TLSv1\.3 handshake ok$/);
  r = await startProbe(target, { ...baseHealth, type: 'http', path: '/health' }, good).done;
  t.match(r, { ok: true, code: 'L7OK', reason: 'status 200' });
  t.equal(s.seen.at(-1)!.url, '/health');
  const bad = tlsOf({ ca: other.caFile, servername: 'srv.test' });
  r = await startProbe(target, { ...baseHealth, type: 'tcp' }, bad).done;
  t.match(r, { ok: false, code: 'L6RSP' });
  t.match(r.reason, /^TLS handshake: /);
  r = await startProbe(target, { ...baseHealth, type: 'http' }, bad).done;
  t.equal(r.ok, false);
});

t.test('pooled connections: reused across a reload with the same TLS settings, replaced when they change', async (t) => {
  let connections = 0;
  const server: HttpsServer = createHttpsServer({ cert: srvCert.cert, key: srvCert.key }, (_req, res) => res.end('pooled'));
  server.keepAliveTimeout = 60_000;
  server.on('secureConnection', () => {
    connections++;
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { sy, url } = await proxy(t, load({ ca: ca.caFile, servername: 'srv.test' }, [address]));
  const get = async () => {
    const res = await request(url);
    t.equal(await res.body.text(), 'pooled');
  };
  await get();
  await get();
  t.equal(connections, 1, 'keep-alive to the server');
  // The same settings, read again by a reload: the pooled connection stays in use.
  t.equal((await sy.apply(load({ ca: ca.caFile, servername: 'srv.test' }, [address]))).ok, true);
  await get();
  t.equal(connections, 1);
  // Other settings (no verification now): that connection was made under the old ones.
  t.equal((await sy.apply(load({ verify: false }, [address]))).ok, true);
  await get();
  t.equal(connections, 2, 'a new connection under the new settings');
});

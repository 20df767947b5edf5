// TLS termination on frontends: certificate choice by SNI (exact, wildcard, default), ALPN,
// versions, X-Forwarded-Proto from the real transport, TCP frontends with TLS, curl as a real
// client, and every bad input (garbage, stalls, an unknown SNI under strict_sni) closing
// cleanly with a counter. Certificates are made by the test (support/tls-certs.ts).
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { normalizeConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import type { Switchyard } from '../src/switchyard.js';
import { httpServer, start, tcpServer } from './support/proxy-harness.js';
import { makeCa } from './support/tls-certs.js';
import { echoRoundTrip } from './support/streams.js';

const run = promisify(execFile);

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ca = makeCa();
t.teardown(() => ca.cleanup());
ca.issue('default', ['default.test']);
ca.issue('exact', ['a.test']);
ca.issue('wild', ['*.w.test']);

/** A config through the real loader (files read and checked), listening on port 0. */
function load(frontends: Record<string, unknown>, backends: Record<string, unknown>): Config {
  return normalizeConfig({ stats: { bind: '127.0.0.1:0' }, frontends, backends }, join(ca.dir, 'switchyard.yaml'));
}

const CERTS = [
  { cert: 'default.pem', key: 'default.key' },
  { cert: 'exact.pem', key: 'exact.key' },
  { cert: 'wild.pem', key: 'wild.key' },
];

/** Handshake and return what the server presented (CN, protocol, ALPN), then close. */
function handshake(port: number, options: ConnectionOptions): Promise<{ cn: string; protocol: string | null; alpn: string | false | null; socket: TLSSocket }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, ...options }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ cn: String(cert.subject.CN), protocol: socket.getProtocol(), alpn: socket.alpnProtocol, socket });
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** Connect with `options` and resolve with how the attempt ended. */
function failedHandshake(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, ...options }, () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

async function proxy(t: Test, feOver: Record<string, unknown> = {}, mode: 'http' | 'tcp' = 'http') {
  const srv = mode === 'http' ? await httpServer('a') : null;
  const echo = mode === 'tcp' ? await tcpServer() : null;
  const address = srv?.address ?? echo!.address;
  const sy = await start(
    load({ web: { mode, bind: '127.0.0.1:0', backend: 'api', tls: { certificates: CERTS }, ...feOver } }, { api: { mode, servers: [{ address }] } }),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await srv?.close();
    await echo?.close();
  });
  return { sy, srv, port: sy.frontendAddress('web').port, counters: sy.runtime().frontends.get('web')!.tls };
}

t.test('certificate by SNI: exact, wildcard, default for unknown and missing names; ALPN http/1.1', async (t) => {
  const { port, counters } = await proxy(t);
  t.equal((await handshake(port, { servername: 'a.test' })).cn, 'a.test');
  t.equal((await handshake(port, { servername: 'x.w.test' })).cn, '*.w.test');
  t.equal((await handshake(port, { servername: 'X.W.TEST', checkServerIdentity: () => undefined })).cn, '*.w.test', 'names are case-insensitive');
  // A wildcard covers one label only (RFC 6125 §6.4.3): a.b.w.test gets the default.
  t.equal((await handshake(port, { servername: 'a.b.w.test', checkServerIdentity: () => undefined })).cn, 'default.test');
  t.equal((await handshake(port, { servername: 'nobody.test', checkServerIdentity: () => undefined })).cn, 'default.test');
  t.equal((await handshake(port, { checkServerIdentity: () => undefined })).cn, 'default.test', 'no SNI: the default certificate');
  const h = await handshake(port, { servername: 'a.test', ALPNProtocols: ['h2', 'http/1.1'] });
  t.equal(h.alpn, 'http/1.1');
  t.equal(h.protocol, 'TLSv1.3');
  await until('handshakes counted', () => counters.handshakes >= 7);
  t.equal(counters.tls13, counters.handshakes);
  t.equal(counters.failuresTotal, 0);
});

t.test('HTTPS through the proxy with curl: forwarded proto https, keep-alive, the request arrives', async (t) => {
  const { port, srv } = await proxy(t);
  const { stdout } = await run('curl', [
    '-sS',
    '--cacert',
    ca.caFile,
    '--resolve',
    `a.test:${port}:127.0.0.1`,
    `https://a.test:${port}/one`,
    `https://a.test:${port}/two`,
    '-w',
    ' %{http_code} %{num_connects}\n',
  ]);
  t.match(stdout, /a 200 1\na 200 0\n/, 'two requests, one TLS connection');
  t.equal(srv!.seen.length, 2);
  t.equal(srv!.seen[0]!.url, '/one');
  t.equal(srv!.seen[0]!.headers['x-forwarded-proto'], 'https');
  t.equal(srv!.seen[0]!.headers['forwarded'], 'for=127.0.0.1;proto=https');
  // A client's own X-Forwarded-For is extended; the proto is still ours.
  await run('curl', [
    '-sS',
    '--cacert',
    ca.caFile,
    '--resolve',
    `a.test:${port}:127.0.0.1`,
    '-H',
    'X-Forwarded-For: 203.0.113.7',
    '-H',
    'X-Forwarded-Proto: http',
    `https://a.test:${port}/three`,
  ]);
  t.equal(srv!.seen[2]!.headers['x-forwarded-proto'], 'https');
});

t.test('min_version TLSv1.3 refuses a TLS 1.2 client; TLS 1.2 works when allowed', async (t) => {
  const strict = await proxy(t, { tls: { certificates: CERTS, min_version: 'TLSv1.3' } });
  t.not(await failedHandshake(strict.port, { servername: 'a.test', maxVersion: 'TLSv1.2' }), 'connected');
  await until('a version failure counted', () => strict.counters.failures.version === 1);
  const open = await proxy(t);
  const h = await handshake(open.port, { servername: 'a.test', maxVersion: 'TLSv1.2' });
  t.equal(h.protocol, 'TLSv1.2');
  await until('a TLS 1.2 handshake counted', () => open.counters.tls12 === 1);
});

t.test('ciphers: the configured TLS 1.2 cipher is the one negotiated', async (t) => {
  const { port } = await proxy(t, { tls: { certificates: CERTS, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', max_version: 'TLSv1.2' } });
  const h = await handshake(port, { servername: 'a.test' });
  t.equal(h.socket.getCipher().name, 'ECDHE-ECDSA-AES128-GCM-SHA256');
  t.not(await failedHandshake(port, { servername: 'a.test', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', maxVersion: 'TLSv1.2' }), 'connected');
});

t.test('strict_sni: an unknown or missing server name fails the handshake and is counted', async (t) => {
  const { port, counters } = await proxy(t, { tls: { certificates: CERTS, strict_sni: true } });
  t.equal((await handshake(port, { servername: 'a.test' })).cn, 'a.test');
  t.not(await failedHandshake(port, { servername: 'nobody.test' }), 'connected');
  await until('no_certificate counted', () => counters.failures.no_certificate === 1);
  t.not(await failedHandshake(port, { checkServerIdentity: () => undefined }), 'connected', 'no SNI, no default');
  await until('the missing SNI counted', () => counters.failuresTotal === 2);
});

t.test('bad input: garbage, plain HTTP, a stalled client, a partial ClientHello all close cleanly and count', async (t) => {
  const { port, counters, sy } = await proxy(t, { timeouts: { handshake: '400ms' } });
  const closed = (write: Buffer | string | null, endAfter = false) =>
    new Promise<string>((resolve) => {
      const s = netConnect(port, '127.0.0.1', () => {
        if (write !== null) s.write(write);
        if (endAfter) s.end();
      });
      let got = '';
      s.on('data', (d) => {
        got += d.toString('latin1');
      });
      s.on('error', () => {});
      s.on('close', () => resolve(got));
    });
  await closed('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
  await until('plain HTTP counted as protocol', () => counters.failures.protocol === 1);
  await closed(Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)));
  await until('garbage counted as protocol', () => counters.failures.protocol === 2);
  await closed(null);
  await until('a silent client timed out', () => counters.failures.timeout === 1);
  // Half a ClientHello, then silence: the handshake timeout ends it.
  await closed(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec, 0x03, 0x03]));
  await until('a stalled hello timed out', () => counters.failures.timeout === 2);
  // Half a ClientHello, then FIN: the client closed.
  await closed(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00]), true);
  await until('client_closed counted', () => counters.failures.client_closed === 1);
  t.equal(counters.handshakes, 0);
  // Nothing leaked: every connection is released, and the proxy still serves.
  await until('connections released', () => sy.runtime().frontends.get('web')!.counters.scur === 0);
  t.equal((await handshake(port, { servername: 'a.test' })).cn, 'a.test');
});

t.test('TCP frontend with TLS: decrypted bytes to a plain TCP server, both ways', async (t) => {
  const { port } = await proxy(t, {}, 'tcp');
  const reply = await new Promise<string>((resolve, reject) => {
    const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'a.test' }, () => s.end('ping over tls'));
    let got = '';
    s.on('data', (d) => {
      got += d;
    });
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
  t.equal(reply, 'ping over tls', 'the echo server saw plaintext and answered through TLS');
  // Megabytes both ways, the reader stalling first: each read relayed to the TLS client lets
  // its buffer be reused as soon as the TLS socket let go of it (read-buffer.ts writeKept).
  // Were the TLS handle still to read a chunk after write() returned, bytes would be replaced.
  const payload = randomBytes(3 * 1024 * 1024);
  const back = await echoRoundTrip(tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'a.test' }), payload, 500);
  t.equal(back.length, payload.length, '3 MiB back');
  t.ok(back.equals(payload), 'byte for byte, in order');
});

t.test('redirect_https: a plain frontend answers every request with a redirect, never forwards', async (t) => {
  const srv = await httpServer('a');
  const sy: Switchyard = await start(
    load(
      {
        plain: { bind: '127.0.0.1:0', backend: 'api', redirect_https: true },
        other: { bind: '127.0.0.1:0', backend: 'api', redirect_https: { status: 308, port: 8443 } },
      },
      { api: { servers: [{ address: srv.address }] } },
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const port = sy.frontendAddress('plain').port;
  const { stdout } = await run('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{redirect_url} %{num_connects}\n',
    `http://127.0.0.1:${port}/a/b?c=1`,
    '-H',
    'Host: shop.test:8080',
    `http://127.0.0.1:${port}/again`,
  ]);
  t.equal(stdout, 'https://shop.test/a/b?c=1'.replace(/^/, '301 ') + ' 1\n301 https://shop.test/again 0\n', 'same host without the http port; keep-alive kept');
  const other = sy.frontendAddress('other').port;
  const r2 = await run('curl', [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{redirect_url}',
    '-X',
    'POST',
    '-d',
    'x=1',
    '-H',
    'Host: shop.test',
    `http://127.0.0.1:${other}/form`,
  ]);
  t.equal(r2.stdout, '308 https://shop.test:8443/form');
  t.equal(srv.seen.length, 0, 'nothing was forwarded');
});

t.test('handshakes in progress count toward maxconn and are closed at once by a graceful stop', async (t) => {
  const srv = await httpServer('a');
  const sy = await start(
    load(
      { web: { bind: '127.0.0.1:0', backend: 'api', maxconn: 2, tls: { certificates: CERTS }, timeouts: { handshake: '60s' } } },
      { api: { servers: [{ address: srv.address }] } },
    ),
  );
  t.teardown(async () => {
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const frontend = sy.runtime().frontends.get('web')!;
  // Two clients that connect and never start their handshake.
  const closed: Promise<void>[] = [];
  for (let i = 0; i < 2; i++) {
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => {});
    closed.push(new Promise((resolve) => s.on('close', () => resolve())));
  }
  await until('both stalled connections accepted', () => frontend.counters.scur === 2);
  // A third is over maxconn: refused, even though the first two carry no request yet.
  t.not(await failedHandshake(port, { servername: 'a.test' }), 'connected');
  await until('the refusal counted', () => frontend.denied === 1);
  await sy.stop(60_000);
  await Promise.all(closed);
  t.equal(frontend.counters.scur, 0, 'the stop closed them without waiting for the shutdown timeout');
});

t.test('rate_limit.connections on a TLS frontend: the connection over the count gets its 429 after the handshake', async (t) => {
  const { port, sy } = await proxy(t, { rate_limit: { connections: 1 } });
  const open = (): Promise<TLSSocket> =>
    new Promise((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'a.test' }, () => resolve(s));
      s.on('error', reject);
    });
  // One response, read up to its Content-Length.
  const ask = (s: TLSSocket) =>
    new Promise<string>((resolve) => {
      let got = '';
      const onData = (d: Buffer) => {
        got += d.toString('latin1');
        const end = got.indexOf('\r\n\r\n');
        const length = /content-length: (\d+)\r\n/i.exec(got);
        if (end !== -1 && length !== null && got.length >= end + 4 + Number(length[1])) {
          s.off('data', onData);
          resolve(got);
        }
      };
      s.on('data', onData);
      s.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
    });
  const first = await open();
  t.match(await ask(first), /^HTTP\/1\.1 200/);
  const second = await open();
  t.match(await ask(second), /^HTTP\/1\.1 429/, 'over the count: answered 429, never forwarded');
  second.destroy();
  first.destroy();
  const frontend = sy.runtime().frontends.get('web')!;
  await until('both released', () => frontend.counters.scur === 0);
  t.equal(frontend.perSource.size, 0, 'no address left counted');
  const third = await open();
  t.match(await ask(third), /^HTTP\/1\.1 200/, 'the address counts one connection again');
  third.destroy();
});

// How an HTTP client connection ends (http-session.ts close() and reject()), on both client
// socket paths: RawSocket (raw-socket.ts, the default for plain frontends) and net.Socket
// (SWITCHYARD_RAW_SOCKETS=0, the fallback). A client that said it closes after its request
// (HTTP/1.1 `Connection: close`, HTTP/1.0 without keep-alive) is closed at once once its
// response is with the kernel, without waiting for its FIN; a keep-alive client keeps its
// connection; every other close by the proxy lingers (half-close, read and drop what the client
// still sends, close when it closes) but never past `timeouts.client`. The clients are raw
// node:net sockets with allowHalfOpen, so the proxy's FIN and its full close can be told apart.
import t, { type Test } from 'tap';
import { connect, type Socket } from 'node:net';
import type { Switchyard } from '../src/switchyard.js';
import { backendConfig, config, frontendConfig, httpServer, start } from './support/proxy-harness.js';
import { until } from './support/hostile.js';

/** Generous waits for a loaded 2-core machine; what they wait for takes milliseconds. */
const DEADLINE_MS = 10_000;
/** Above every wait in the tests where the close must come from the client's request, not from the client timeout. */
const LONG_CLIENT_MS = 60_000;
const MiB = 1024 * 1024;

/** A 400 (two different Content-Length values: request-framing, HAProxy refuses them too). */
const MALFORMED_HEAD = 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\nContent-Length: 1048577\r\n\r\n';

interface Client {
  socket: Socket;
  /** Everything received, latin1. */
  data(): string;
  /** The proxy's FIN arrived. */
  ended: boolean;
  /** The socket closed (both directions done, or an error). */
  closed: boolean;
  errors: Error[];
}

/** A raw client that keeps its sending side open until told (allowHalfOpen). */
async function client(port: number): Promise<Client> {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const chunks: Buffer[] = [];
  const c: Client = {
    socket,
    data: () => Buffer.concat(chunks).toString('latin1'),
    ended: false,
    closed: false,
    errors: [],
  };
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('end', () => (c.ended = true));
  socket.on('close', () => (c.closed = true));
  socket.on('error', (e) => c.errors.push(e));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return c;
}

/** Complete responses at the start of `data` (Content-Length framed, as every one here is). */
function responses(data: string): { status: number; head: string; body: string }[] {
  const out: { status: number; head: string; body: string }[] = [];
  let at = 0;
  for (;;) {
    const headEnd = data.indexOf('\r\n\r\n', at);
    if (headEnd === -1) return out;
    const head = data.slice(at, headEnd + 4);
    const length = /\r\ncontent-length: *(\d+)\r\n/i.exec(head);
    if (length === null) throw new Error(`a response without Content-Length: ${JSON.stringify(head)}`);
    const bodyEnd = headEnd + 4 + Number(length[1]);
    if (data.length < bodyEnd) return out;
    out.push({ status: Number(/^HTTP\/1\.[01] (\d{3}) /.exec(head)?.[1] ?? 0), head, body: data.slice(headEnd + 4, bodyEnd) });
    at = bodyEnd;
  }
}

/**
 * The backend answers with the path it was asked for, so each response names its request, and
 * always with Content-Length (node:http would answer an HTTP/1.0 request close-delimited).
 */
async function setup(t: Test, path: 'raw' | 'net', clientMs: number): Promise<{ sy: Switchyard; port: number; scur: () => number }> {
  // The client socket path is chosen when the listener starts.
  if (path === 'net') process.env.SWITCHYARD_RAW_SOCKETS = '0';
  else delete process.env.SWITCHYARD_RAW_SOCKETS;
  const srv = await httpServer('echo', (req, res) => {
    const body = `you asked ${req.url}`;
    res.setHeader('content-length', Buffer.byteLength(body));
    res.end(body);
  });
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api', { timeouts: { clientMs, httpRequestMs: 10_000, keepAliveMs: 60_000, handshakeMs: 10_000 } })],
      [backendConfig('api', 'http', [srv.address])],
    ),
  );
  t.teardown(async () => {
    delete process.env.SWITCHYARD_RAW_SOCKETS;
    await sy.stop(200);
    await srv.close();
  });
  const counters = sy.runtime().frontends.get('web')!.counters;
  return { sy, port: sy.frontendAddress('web').port, scur: () => counters.scur };
}

for (const path of ['raw', 'net'] as const) {
  const closingRequests = [
    { name: 'HTTP/1.1 Connection: close', request: 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' },
    { name: 'HTTP/1.0 without keep-alive', request: 'GET /a HTTP/1.0\r\nHost: x\r\n\r\n' },
  ];
  for (const { name, request } of closingRequests) {
    t.test(`${path}: ${name}: the whole response, then the proxy closes without waiting for the client`, async (t) => {
      const { port, scur } = await setup(t, path, LONG_CLIENT_MS);
      const c = await client(port);
      t.teardown(() => c.socket.destroy());
      c.socket.write(request);
      t.ok(await until(() => c.ended, DEADLINE_MS), "the proxy's FIN reached the client");
      const got = responses(c.data());
      t.equal(got.length, 1, `one complete response before the FIN (${JSON.stringify(c.data().slice(0, 60))})`);
      t.equal(got[0]?.status, 200);
      t.equal(got[0]?.body, 'you asked /a', 'its whole body');
      t.equal(c.data().length, got[0]!.head.length + got[0]!.body.length, 'and nothing after it');
      // The lingering close would hold the session until the client's own close or the client
      // timeout (a minute here): the count drops while the client has closed nothing.
      t.ok(await until(() => scur() === 0, DEADLINE_MS), `the session is closed on the proxy (scur ${scur()})`);
      t.notOk(c.closed, 'while the client socket is still open');
      t.ok(c.socket.writable, 'its sending side included');
      t.same(c.errors, [], 'no error on the client');
    });
  }

  const keepAliveRequests = [
    { name: 'HTTP/1.1 keep-alive', request: (p: string) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n` },
    { name: 'HTTP/1.0 Connection: keep-alive', request: (p: string) => `GET ${p} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n` },
  ];
  for (const { name, request } of keepAliveRequests) {
    t.test(`${path}: ${name}: the connection stays open and answers a second request`, async (t) => {
      const { port, scur } = await setup(t, path, LONG_CLIENT_MS);
      const c = await client(port);
      t.teardown(() => c.socket.destroy());
      c.socket.write(request('/first'));
      t.ok(await until(() => responses(c.data()).length === 1, DEADLINE_MS), 'the first response');
      t.equal(responses(c.data())[0]?.body, 'you asked /first');
      t.notOk(c.ended, 'no FIN after it');
      t.equal(scur(), 1, 'the session is still open');
      c.socket.write(request('/second'));
      t.ok(await until(() => responses(c.data()).length === 2 || c.ended, DEADLINE_MS), 'the second response');
      const got = responses(c.data());
      t.equal(got.length, 2, `two responses on the one connection (${JSON.stringify(c.data())})`);
      t.equal(got[1]?.body, 'you asked /second');
      t.notOk(c.ended, 'still no FIN');
      // The client leaves: now the proxy closes too.
      c.socket.end();
      t.ok(await until(() => c.closed && scur() === 0, DEADLINE_MS), 'closed on both sides once the client closes');
      t.same(c.errors, [], 'no error on the client');
    });
  }

  t.test(`${path}: a 400 lingers at most timeouts.client for a client that never closes`, async (t) => {
    const { port, scur } = await setup(t, path, 300);
    const c = await client(port);
    t.teardown(() => c.socket.destroy());
    c.socket.write(MALFORMED_HEAD);
    t.ok(await until(() => c.ended, DEADLINE_MS), "the proxy's FIN reached the client");
    const got = responses(c.data());
    t.equal(got.length, 1, `one complete response (${JSON.stringify(c.data().slice(0, 60))})`);
    t.equal(got[0]?.status, 400, '400 Bad Request');
    // The client never closes: past the client timeout (300 ms) the proxy gives up on it.
    t.ok(await until(() => scur() === 0, DEADLINE_MS), `the session is closed on the proxy (scur ${scur()})`);
    // The proxy's side of the connection is gone: the client learns it on its next write (a
    // reset from the proxy's kernel), unlike a half-closed connection that still reads.
    const probe = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write('x');
    }, 20);
    t.teardown(() => clearInterval(probe));
    t.ok(await until(() => c.closed, DEADLINE_MS), "'close' on the client: the connection is closed");
    clearInterval(probe);
  });

  t.test(`${path}: a 400 lingers without a reset while the client sends 1 MiB more`, async (t) => {
    const { sy, port, scur } = await setup(t, path, LONG_CLIENT_MS);
    const c = await client(port);
    t.teardown(() => c.socket.destroy());
    // The client reads nothing until it has sent everything: a reset arriving meanwhile would
    // destroy the 400 waiting in its receive buffer (why the close lingers, RFC 9112 9.6).
    c.socket.pause();
    c.socket.write(MALFORMED_HEAD);
    const piece = Buffer.alloc(16 * 1024, 0x61);
    for (let sent = 0; sent < MiB && !c.closed; sent += piece.length) {
      // Each write waits for the kernel to take the previous one, so the upload spans many
      // event loop turns of the proxy, the 400 already sent.
      await new Promise<void>((resolve) => c.socket.write(piece, () => resolve()));
    }
    c.socket.resume();
    c.socket.end();
    t.ok(await until(() => c.closed, DEADLINE_MS), 'the connection closed');
    t.same(
      c.errors.map((e) => (e as NodeJS.ErrnoException).code),
      [],
      'no ECONNRESET (or any error) on the client',
    );
    const got = responses(c.data());
    t.equal(got.length, 1, `the whole 400 response (${JSON.stringify(c.data().slice(0, 60))})`);
    t.equal(got[0]?.status, 400);
    t.equal(c.data().length, got[0]!.head.length + got[0]!.body.length, 'and nothing after it');
    // The proxy read through the upload to the client's FIN (a minute before the client timeout).
    t.ok(await until(() => scur() === 0, DEADLINE_MS), `the session is closed on the proxy (scur ${scur()})`);
    const bin = sy.runtime().frontends.get('web')!.counters.bin;
    t.ok(bin >= MALFORMED_HEAD.length + MiB, `every byte the client sent was read and dropped (${bin} bytes in)`);
  });
}

// Response framing past the one-coding case (RFC 9112 §6.3) and the pooled connections'
// idle time: `Transfer-Encoding: gzip, chunked` is proxied; Content-Length next to chunked is
// framed by chunked, its Content-Length dropped, and that server connection closed after it;
// chunked not last means the body runs to the close; pooled connections are closed by
// switchyard after `timeouts.server_keep_alive` (default 4 s, below Node's 5 s).
import t, { type Test } from 'tap';
import type { Socket } from 'node:net';
import { parseConfig } from '../src/config/load.js';
import { backendConfig, config, frontendConfig, httpServer, start, tcpServer } from './support/proxy-harness.js';
import { exchange, until } from './support/hostile.js';

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
const BODY = 'HELLO-WORLD';

/** The status of each response head in a stream (chunked bodies here hold no CRLFCRLF-like text). */
const statuses = (data: string): string[] => [...data.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]!);

/** A proxy in front of a raw server answering `response` to every request; counts connections. */
async function behind(t: Test, response: string) {
  let connections = 0;
  const srv = await tcpServer((s: Socket) => {
    connections++;
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        s.write(response);
      }
    });
    s.on('error', () => {});
  });
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address], { retries: 0 })]));
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  return { port: sy.frontendAddress('web').port, connections: () => connections, sy };
}

t.test('Transfer-Encoding: gzip, chunked is proxied as it came, framed by its chunks', async (t) => {
  const chunked = `b\r\n${BODY}\r\n0\r\n\r\n`;
  const { port, connections } = await behind(t, `HTTP/1.1 200 OK\r\nContent-Encoding: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${chunked}`);
  const ex = await exchange(port, [GET, GET], { gapMs: 300, idleMs: 1000 });
  t.same(statuses(ex.data), ['200', '200'], 'both requests answered 200, not 502');
  t.match(ex.data, /Transfer-Encoding: gzip, chunked\r\n/, 'the codings reach the client');
  t.ok(ex.data.includes(chunked), 'the chunked body byte for byte');
  t.equal(connections(), 1, 'a well-framed response keeps the server connection');
});

t.test('Content-Length next to chunked: framed by chunked, Content-Length dropped, server connection not reused', async (t) => {
  const { port, connections } = await behind(t, `HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n${BODY}\r\n0\r\n\r\n`);
  const ex = await exchange(port, [GET, GET], { gapMs: 300, idleMs: 1000 });
  t.same(statuses(ex.data), ['200', '200'], 'both answered 200, not 502');
  t.notMatch(ex.data, /content-length/i, 'no Content-Length reaches the client');
  t.equal(ex.data.split(`b\r\n${BODY}\r\n0\r\n\r\n`).length - 1, 2, 'each response carries the whole chunked body (11 bytes, not the 3 Content-Length said)');
  t.equal(connections(), 2, 'the server connection was closed after such a response (RFC 9112 §6.1): the second request used a new one');
});

t.test('Transfer-Encoding whose last coding is not chunked: the body runs to the close', async (t) => {
  const { port } = await behind(t, `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n${BODY}`);
  // The raw server keeps its connection open: close it ourselves after the response.
  const ex = await exchange(port, GET, { idleMs: 800 });
  t.match(ex.data, /^HTTP\/1\.1 200 /, '200');
  t.match(ex.data, /\r\nConnection: close\r\n/i, 'the client is told the connection closes');
  t.ok(ex.data.endsWith(BODY), 'the body as sent');
});

t.test('pooled server connections are closed after timeouts.server_keep_alive, before the server would', async (t) => {
  t.equal(
    parseConfig('frontends: { w: { bind: 1, backend: b } }\nbackends: { b: { servers: [{ address: "127.0.0.1:1" }] } }\n', null).backends[0]!.timeouts
      .serverKeepAliveMs,
    4000,
    "default 4 s: below Node's and Apache's 5 s keep-alive",
  );
  const srv = await httpServer('a');
  srv.server.keepAliveTimeout = 60000;
  const closedByPeer: number[] = [];
  srv.server.on('connection', (s: Socket) => s.on('end', () => closedByPeer.push(Date.now())));
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api')],
      [backendConfig('api', 'http', [srv.address], { timeouts: { connectMs: 2000, serverMs: 10000, serverKeepAliveMs: 300 } })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const server = sy.runtime().backends.get('api')!.servers[0]!;
  t.match((await exchange(port, GET, { end: true })).data, /^HTTP\/1\.1 200 /);
  t.ok(await until(() => closedByPeer.length === 1, 10000), 'switchyard closed the idle pooled connection itself');
  t.equal(server.idle.length, 0, 'nothing left in the pool');
  t.match((await exchange(port, GET, { end: true })).data, /^HTTP\/1\.1 200 /, 'the next request opens a new connection and is served');
});

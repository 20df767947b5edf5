import t, { type Test } from 'tap';
import { connect } from 'node:net';
import { request } from 'undici';
import { backendConfig, config, deadPort, frontendConfig, httpServer, rawRequest, start, tcpServer } from './support/proxy-harness.js';

async function oneBackend(
  t: Test,
  handler?: Parameters<typeof httpServer>[1],
  over: Parameters<typeof backendConfig>[3] = {},
  feOver: Parameters<typeof frontendConfig>[3] = {},
) {
  const srv = await httpServer('a', handler);
  const sy = await start(config([frontendConfig('web', 'http', 'api', feOver)], [backendConfig('api', 'http', [srv.address], over)]));
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  return { srv, sy, port: sy.frontendAddress('web').port };
}

t.test('GET goes through, keep-alive reused, round-robin across servers, forwarding headers', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address, b.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
    await b.close();
  });
  const { port } = sy.frontendAddress('web');
  const bodies: string[] = [];
  for (let i = 0; i < 4; i++) {
    const res = await request(`http://127.0.0.1:${port}/x?i=${i}`);
    t.equal(res.statusCode, 200);
    bodies.push(await res.body.text());
  }
  t.same(bodies, ['a', 'b', 'a', 'b']);
  t.equal(a.seen[0]!.url, '/x?i=0');
  t.equal(a.seen[0]!.headers['x-forwarded-for'], '127.0.0.1');
  t.equal(a.seen[0]!.headers['x-forwarded-proto'], 'http');
  t.equal(a.seen[0]!.headers['forwarded'], 'for=127.0.0.1;proto=http');
  // A client's own X-Forwarded-For is replaced unless its peer is a trusted proxy
  // (test/forwarded-headers.test.ts has the rest).
  await (await request(`http://127.0.0.1:${port}/`, { headers: { 'x-forwarded-for': '203.0.113.9' } })).body.text();
  t.equal(a.seen.at(-1)!.headers['x-forwarded-for'], '127.0.0.1');
});

t.test('keep-alive: several requests on one client connection reuse one server connection', async (t) => {
  const srv = await httpServer('a');
  const conns = new Set<unknown>();
  srv.server.on('connection', (s) => conns.add(s));
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const raw = await rawRequest(port, 'GET /1 HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(raw, /^HTTP\/1\.1 200/);
  for (let i = 0; i < 5; i++) await (await request(`http://127.0.0.1:${port}/k${i}`)).body.text();
  t.equal(conns.size, 1, 'one upstream connection served all requests');
});

t.test('pipelined requests are answered in order', async (t) => {
  const { port, srv } = await oneBackend(t, (req, res) => res.end(`you asked ${req.url}`));
  const raw = await rawRequest(
    port,
    'GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  );
  const bodies = [...raw.matchAll(/you asked (\/[a-z]+)/g)].map((m) => m[1]);
  t.same(bodies, ['/one', '/two', '/three']);
  t.equal(srv.seen.length, 3);
});

t.test('POST with Content-Length and chunked bodies, large bodies both ways', async (t) => {
  const { port, srv } = await oneBackend(t, (req, res, body) => {
    res.setHeader('x-len', String(body.length));
    res.end(body.toUpperCase());
  });
  const res = await request(`http://127.0.0.1:${port}/p`, { method: 'POST', body: 'hello' });
  t.equal(await res.body.text(), 'HELLO');
  // chunked request body (raw, so the framing is ours)
  const raw = await rawRequest(port, 'POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n');
  t.match(raw, /HELLO WORLD/);
  t.equal(srv.seen.at(-1)!.body, 'hello world');
  // 3 MiB up and down (the server answers with a chunked response: node:http without CL)
  const big = Buffer.alloc(3 * 1024 * 1024, 'x');
  const r2 = await request(`http://127.0.0.1:${port}/big`, { method: 'POST', body: big });
  const text = await r2.body.text();
  t.equal(text.length, big.length);
  t.equal(r2.headers['x-len'], String(big.length));
});

t.test('HEAD and 204/304 responses have no body; keep-alive continues', async (t) => {
  const { port } = await oneBackend(t, (req, res) => {
    if (req.url === '/204') {
      res.statusCode = 204;
      res.end();
      return;
    }
    if (req.url === '/304') {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.setHeader('content-length', '11');
    res.end(req.method === 'HEAD' ? undefined : 'hello world');
  });
  const raw = await rawRequest(
    port,
    'HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  );
  const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
  t.same(statuses, ['200', '204', '304', '200']);
  t.equal(raw.split('hello world').length - 1, 1, 'only the GET carries the body');
});

t.test('hop-by-hop headers are removed both ways, including those named in Connection', async (t) => {
  const { port, srv } = await oneBackend(t, (_req, res) => {
    res.setHeader('keep-alive', 'timeout=5');
    res.setHeader('x-secret-hop', '1');
    res.setHeader('connection', 'x-secret-hop');
    res.end('ok');
  });
  const raw = await rawRequest(
    port,
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Custom-Hop\r\nKeep-Alive: timeout=9\r\nX-Custom-Hop: 1\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-End: kept\r\n\r\n',
  );
  const h = srv.seen[0]!.headers;
  t.equal(h['x-custom-hop'], undefined);
  t.equal(h['keep-alive'], undefined);
  t.equal(h['te'], undefined);
  t.equal(h['proxy-connection'], undefined);
  t.equal(h['x-end'], 'kept');
  t.notMatch(raw, /x-secret-hop/i);
  t.notMatch(raw, /keep-alive: timeout/i);
  t.match(raw, /^HTTP\/1\.1 200/);
});

t.test("Connection on responses: a server's lone keep-alive is kept as ours; close and HTTP/1.0 get their own", async (t) => {
  // A raw server: one fixed response per request head, `Connection: keep-alive` only.
  const srv = await tcpServer((s) => {
    let pending = '';
    s.on('data', (d) => {
      pending += d.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok');
      }
    });
  });
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const connectionLines = (raw: string) => raw.split('\r\n').filter((l) => /^connection:/i.test(l));
  t.same(
    connectionLines(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')),
    ['Connection: keep-alive'],
    'HTTP/1.1 client kept alive: one keep-alive line',
  );
  t.same(
    connectionLines(await rawRequest(port, 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')),
    ['Connection: keep-alive'],
    'HTTP/1.0 client asking keep-alive: one line, not two',
  );
  t.same(
    connectionLines(await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')),
    ['Connection: close'],
    "client closing: the server's keep-alive is replaced by close",
  );
  t.same(connectionLines(await rawRequest(port, 'GET / HTTP/1.0\r\n\r\n')), ['Connection: close'], 'HTTP/1.0 without keep-alive: close');
});

t.test('X-Forwarded-Proto from the client is replaced, never passed on', async (t) => {
  const { port, srv } = await oneBackend(t);
  await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nx-forwarded-proto: https\r\n\r\n');
  t.equal(srv.seen[0]!.headers['x-forwarded-proto'], 'http', 'only ours, one value');
});

t.test('Expect: 100-continue is relayed', async (t) => {
  const { port } = await oneBackend(t, (_req, res, body) => res.end(`got ${body}`));
  const out = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => {
      data += d.toString();
      if (data.includes('100 Continue') && !data.includes('got')) s.write('abc');
      if (data.includes('got abc')) {
        s.end();
        resolve(data);
      }
    });
    s.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n');
  });
  t.match(out, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
});

t.test('WebSocket-style upgrade is tunnelled', async (t) => {
  const srv = await httpServer('a');
  srv.server.on('upgrade', (req, socket) => {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    void req;
  });
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  const out = await new Promise<string>((resolve) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n\r\n') && !data.includes('echo:')) s.write('ping');
      if (data.includes('echo:ping')) {
        s.destroy();
        resolve(data);
      }
    });
    s.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
  });
  t.match(out, /^HTTP\/1\.1 101 Switching Protocols/);
  t.match(out, /upgrade: websocket/i);
  t.match(out, /echo:ping$/);
});

t.test('502 when no server answers, 503 when none is available, 504 on server timeout', async (t) => {
  const dead1 = await deadPort();
  const dead2 = await deadPort();
  const sy = await start(
    config(
      [frontendConfig('bad', 'http', 'dead'), frontendConfig('none', 'http', 'empty'), frontendConfig('slow', 'http', 'slow')],
      [
        backendConfig('dead', 'http', [`127.0.0.1:${dead1}`, `127.0.0.1:${dead2}`], { retries: 1 }),
        backendConfig('empty', 'http', ['127.0.0.1:1'], { servers: [] }),
        backendConfig('slow', 'http', ['127.0.0.1:1'], { timeouts: { connectMs: 1000, serverMs: 300, serverKeepAliveMs: 4000 } }),
      ],
    ),
  );
  const stall = await tcpServer(() => {
    /* accept, never answer */
  });
  const sy2 = await start(
    config(
      [frontendConfig('slow', 'http', 'slow')],
      [backendConfig('slow', 'http', [stall.address], { timeouts: { connectMs: 1000, serverMs: 300, serverKeepAliveMs: 4000 } })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(100);
    await sy2.stop(100);
    await stall.close();
  });
  const r502 = await request(`http://127.0.0.1:${sy.frontendAddress('bad').port}/`);
  t.equal(r502.statusCode, 502);
  t.match(await r502.body.text(), /backend dead/);
  const r503 = await request(`http://127.0.0.1:${sy.frontendAddress('none').port}/`);
  t.equal(r503.statusCode, 503);
  t.match(await r503.body.text(), /backend empty/);
  const t0 = Date.now();
  const r504 = await request(`http://127.0.0.1:${sy2.frontendAddress('slow').port}/`);
  t.equal(r504.statusCode, 504);
  t.match(await r504.body.text(), /backend slow/);
  t.ok(Date.now() - t0 >= 250, 'waited for the server timeout');
});

t.test('retry: a refused connect goes to another server', async (t) => {
  const a = await httpServer('a');
  const dead = await deadPort();
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [`127.0.0.1:${dead}`, a.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
  });
  const { port } = sy.frontendAddress('web');
  for (let i = 0; i < 4; i++) {
    const res = await request(`http://127.0.0.1:${port}/`);
    t.equal(res.statusCode, 200);
    t.equal(await res.body.text(), 'a');
  }
  const backend = sy.runtime().backends.get('api')!;
  t.ok(backend.counters.wretr >= 1, 'retries counted');
});

t.test('framing-ambiguous requests get 400 and never reach the server', async (t) => {
  const { port, srv } = await oneBackend(t);
  const bad = [
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello',
    'POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello',
    'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n',
    'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n',
    'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    'GET / HTTP/1.1\nHost: x\n\n',
    'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n',
  ];
  for (const req of bad) {
    const raw = await rawRequest(port, req);
    t.match(raw, /^HTTP\/1\.1 400 /, JSON.stringify(req.slice(0, 60)));
  }
  t.equal(srv.seen.length, 0, 'the server saw none of them');
  const v = await rawRequest(port, 'GET / HTTP/2.0\r\nHost: x\r\n\r\n');
  t.match(v, /^HTTP\/1\.1 505 /);
});

t.test('a malformed response becomes 502, never passed through', async (t) => {
  const bad = await tcpServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd')));
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [bad.address], { retries: 0 })]));
  t.teardown(async () => {
    await sy.stop(100);
    await bad.close();
  });
  const raw = await rawRequest(sy.frontendAddress('web').port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  t.match(raw, /^HTTP\/1\.1 502 /);
  t.notMatch(raw, /abcd/);
});

t.test('graceful stop lets an in-flight slow request finish', async (t) => {
  const srv = await httpServer('a', (_req, res) => setTimeout(() => res.end('slow done'), 400));
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address])]));
  t.teardown(() => srv.close());
  const port = sy.frontendAddress('web').port;
  const pending = request(`http://127.0.0.1:${port}/slow`);
  await new Promise((r) => setTimeout(r, 100));
  const stopped = sy.stop(5000);
  const res = await pending;
  t.equal(res.statusCode, 200);
  t.equal(await res.body.text(), 'slow done');
  t.match(String(res.headers['connection'] ?? ''), /close/, 'told the client to close');
  await stopped;
  await t.rejects(request(`http://127.0.0.1:${port}/`), 'no longer accepting');
});

// Hostile servers: the same strictness applies to responses. A malformed response becomes a
// 502 from the proxy and is never passed through; a server that resets mid-response makes the
// proxy close the client connection (no fake success); a stalled server gets 504 within
// `serverMs`; garbage is a 502.
import t, { type Test } from 'tap';
import type { Socket } from 'node:net';
import { backendConfig, config, frontendConfig, start, tcpServer } from './support/proxy-harness.js';
import { exchange, parseResponses } from './support/hostile.js';
import { MAX_INTERIM_RESPONSES } from '../src/balancer/http-head.js';

/** A proxy in front of a raw server that does `onRequest` for each request it gets. */
async function behind(t: Test, onRequest: (s: Socket, n: number) => void, serverMs = 2000) {
  let n = 0;
  const srv = await tcpServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        onRequest(s, ++n);
      }
    });
    s.on('error', () => {});
  });
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api')],
      [backendConfig('api', 'http', [srv.address], { retries: 0, timeouts: { connectMs: 1000, serverMs, serverKeepAliveMs: 4000 } })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  return { port: sy.frontendAddress('web').port, srv, count: () => n };
}

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
const SECRET = 'LEAKED-BODY';

// Transfer-Encoding lists and Content-Length next to chunked are framed per RFC 9112 §6.3, not
// refused: test/response-framing.test.ts.
const MALFORMED: [string, string][] = [
  ['status code of 4 digits', `HTTP/1.1 2000 OK\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['status code of 2 digits', `HTTP/1.1 20 OK\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['status code 600', `HTTP/1.1 600 Odd\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['status code 099', `HTTP/1.1 099 Odd\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['bad protocol name', `HTTX/1.1 200 OK\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['HTTP/2 status line', `HTTP/2 200 OK\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['HTTP/1.2 status line', `HTTP/1.2 200 OK\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['bare LF in the status line', `HTTP/1.1 200 OK\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['CTL in the reason', `HTTP/1.1 200 O\x01K\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['differing CLs', `HTTP/1.1 200 OK\r\nContent-Length: 11\r\nContent-Length: 12\r\n\r\n${SECRET}`],
  ['CL not digits', `HTTP/1.1 200 OK\r\nContent-Length: 0x0b\r\n\r\n${SECRET}`],
  ['obs-fold', `HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['NUL in a value', `HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['space before the colon', `HTTP/1.1 200 OK\r\nContent-Length : 11\r\n\r\n${SECRET}`],
  ['bad chunk size (head and body in one read)', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${SECRET}\r\n0\r\n\r\n`],
  ['chunk data longer than its size', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n${SECRET}\r\n0\r\n\r\n`],
  [
    'bad chunk with a header to drop (rewritten head)',
    `HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n${SECRET}\r\n0\r\n\r\n`,
  ],
  ['CL list', `HTTP/1.1 200 OK\r\nContent-Length: 11, 11\r\n\r\n${SECRET}`],
  ['TE chunked, chunked', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\nb\r\n${SECRET}\r\n0\r\n\r\n`],
  ['TE twice', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n${SECRET}\r\n0\r\n\r\n`],
  ['TE in an HTTP/1.0 response', `HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n${SECRET}\r\n0\r\n\r\n`],
  ['bare CR in a value', `HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['bare LF line ends', `HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 11\r\n\r\n${SECRET}`],
  ['bad chunk extension (CTL)', `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb;x\x01\r\n${SECRET}\r\n0\r\n\r\n`],
  ['garbage', 'HELLO THERE\r\n\r\n'],
  ['binary garbage', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'],
];

t.test('a malformed response is a 502, never passed through', async (t) => {
  for (const [name, response] of MALFORMED) {
    const { port } = await behind(t, (s) => s.write(response));
    const ex = await exchange(port, GET, { idleMs: 1500, end: true });
    const parsed = parseResponses(ex.data);
    // Interim responses before the malformed one were legitimately relayed; the answer is a 502.
    const finals = typeof parsed === 'string' ? [] : parsed.responses.filter((r) => r.status >= 200);
    t.ok(
      typeof parsed !== 'string' && finals.length === 1 && finals[0]!.status === 502 && parsed.rest === '',
      `${name}: 502 (${JSON.stringify(ex.data.slice(0, 30))})`,
    );
    t.notMatch(ex.data, SECRET, `${name}: not passed through`);
  }
});

t.test('1xx floods: a few interim responses are relayed, an endless run is a 502', async (t) => {
  // Three 103 Early Hints then the answer: relayed as sent.
  const few = await behind(t, (s) =>
    s.write(`${'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n'.repeat(3)}HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`),
  );
  const ex = await exchange(few.port, GET, { end: true });
  const parsed = parseResponses(ex.data);
  t.ok(
    typeof parsed !== 'string' && parsed.responses.map((r) => r.status).join() === '103,103,103,200',
    `3 x 103 then 200 (${JSON.stringify(ex.data.slice(0, 40))})`,
  );
  // 1000 interim responses, in one write and spread over many: at most MAX_INTERIM_RESPONSES
  // are relayed, then a 502; the server's final answer never reaches the client.
  for (const spread of [false, true]) {
    const flood = await behind(t, (s) => {
      const one = 'HTTP/1.1 100 Continue\r\n\r\n';
      if (!spread) s.write(`${one.repeat(1000)}HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n${SECRET}`);
      else {
        let n = 0;
        const tick = () => {
          if (s.destroyed) return;
          if (n++ < 1000) {
            s.write(one);
            setImmediate(tick);
          } else s.write(`HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n${SECRET}`);
        };
        tick();
      }
    });
    const fx = await exchange(flood.port, GET, { end: true, idleMs: 1500 });
    const fp = parseResponses(fx.data);
    if (typeof fp === 'string') {
      t.fail(`flood (${spread ? 'spread' : 'one write'}): ${fp}`);
      continue;
    }
    const statuses = fp.responses.map((r) => r.status);
    t.equal(statuses.at(-1), 502, `flood (${spread ? 'spread' : 'one write'}): ends in a 502`);
    t.equal(statuses.filter((x) => x === 100).length, MAX_INTERIM_RESPONSES, `${MAX_INTERIM_RESPONSES} interim responses relayed, no more`);
    t.notMatch(fx.data, SECRET, 'the final answer after the flood is not passed through');
    t.ok(fx.closed, 'closed');
  }
});

t.test('garbage as the answer on a pooled connection: 502 for that request only', async (t) => {
  // The server answers the first request on a connection properly and the second with garbage.
  const { port, count } = await behind(t, (s, n) =>
    s.write(n % 2 === 1 ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' : `\x00\x01garbage ${SECRET}\r\n\r\n`),
  );
  const ex = await exchange(port, [GET, GET], { end: true, gapMs: 100, idleMs: 1500 });
  const parsed = parseResponses(ex.data);
  t.ok(typeof parsed !== 'string' && parsed.responses.map((r) => r.status).join() === '200,502', `200 then 502 (${JSON.stringify(ex.data.slice(0, 60))})`);
  t.notMatch(ex.data, SECRET, 'garbage not passed through');
  t.equal(count(), 2, 'both requests reached the server over one connection');
  // And the next client is served by a fresh connection (the broken one was not pooled).
  const next = await exchange(port, GET, { end: true });
  t.match(next.data, /^HTTP\/1\.1 200 /, 'the next request is served');
});

t.test('garbage that never ends a head: 502 past the size limit; closed without a head: 502', async (t) => {
  const flood = await behind(t, (s) => {
    for (let i = 0; i < 20; i++) s.write('x'.repeat(8192));
  });
  const ex = await exchange(flood.port, GET, { end: true });
  t.match(ex.data, /^HTTP\/1\.1 502 /, 'endless head');
  const closer = await behind(t, (s) => s.end('HTTP/1.1 200 OK\r\nContent-Le'));
  const ex2 = await exchange(closer.port, GET, { end: true });
  t.match(ex2.data, /^HTTP\/1\.1 502 /, 'partial head then close');
  const silent = await behind(t, (s) => s.end());
  const ex3 = await exchange(silent.port, GET, { end: true });
  t.match(ex3.data, /^HTTP\/1\.1 502 /, 'closed without answering');
  const reset = await behind(t, (s) => s.resetAndDestroy());
  const ex4 = await exchange(reset.port, GET, { end: true });
  t.match(ex4.data, /^HTTP\/1\.1 502 /, 'reset without answering');
});

t.test('a server that resets or closes mid-response: the client connection is closed, no fake success', async (t) => {
  // Content-Length promised 100 bytes, 11 sent, then a reset / a FIN.
  // serverMs 60 s and a 10 s client wait: a close seen here was caused by the server's reset / FIN,
  // not by the server timeout (a client connection left open fails `closed`).
  for (const how of ['reset', 'fin'] as const) {
    const { port } = await behind(
      t,
      (s) => {
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${SECRET}`);
        setTimeout(() => (how === 'reset' ? s.resetAndDestroy() : s.end()), 50);
      },
      60_000,
    );
    const ex = await exchange(port, GET, { idleMs: 10_000 });
    t.ok(ex.closed, `${how}: client closed because the server went (${ex.ms} ms)`);
    const parsed = parseResponses(ex.data);
    t.ok(typeof parsed !== 'string' && parsed.responses.length === 0, `${how}: no complete response reached the client`);
  }
  // Chunked: the last chunk never comes.
  const { port } = await behind(
    t,
    (s) => {
      s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n${SECRET}\r\n`);
      setTimeout(() => s.resetAndDestroy(), 50);
    },
    60_000,
  );
  const ex = await exchange(port, GET, { idleMs: 10_000 });
  t.ok(ex.closed, 'chunked: closed');
  t.notMatch(ex.data, /\r\n0\r\n\r\n$/, 'chunked: the client never sees a last chunk');
  // A bad chunk after the head went out: nothing more can be said than a close.
  const late = await behind(
    t,
    (s) => {
      s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n${SECRET}\r\n`);
      setTimeout(() => s.write('zz\r\nmore\r\n0\r\n\r\n'), 50);
    },
    60_000,
  );
  const ex2 = await exchange(late.port, GET, { idleMs: 10_000 });
  t.ok(ex2.closed, `bad chunk mid-response: closed because of it, not by the 60 s server timeout (${ex2.ms} ms)`);
  t.notMatch(ex2.data, /more/, 'bad chunk mid-response: the bad chunk is not relayed');
});

t.test('a stalled server: 504 within serverMs; stalled mid-body: closed within serverMs', async (t) => {
  const serverMs = 500;
  const { port } = await behind(
    t,
    () => {
      /* never answer */
    },
    serverMs,
  );
  // 504 names the server timeout; a lower bound only (it did not fire early): a loaded machine
  // fires timers late, never early. The client waits 10 s, the other timeouts are 30 s or more.
  const ex = await exchange(port, GET, { idleMs: 10_000, end: true });
  t.match(ex.data, /^HTTP\/1\.1 504 /, '504');
  t.ok(ex.firstMs >= serverMs - 60, `answered after ${ex.firstMs} ms (serverMs ${serverMs})`);
  const mid = await behind(t, (s) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n${SECRET}`), serverMs);
  const ex2 = await exchange(mid.port, GET, { idleMs: 10_000 });
  // Closed within the 10 s wait, not before serverMs: the server timeout did it (clientMs is 30 s;
  // a stall left open fails `closed`, a close before serverMs fails the lower bound).
  t.ok(ex2.closed, 'closed');
  t.ok(ex2.ms >= serverMs - 60, `closed after ${ex2.ms} ms (serverMs ${serverMs})`);
  const parsed = parseResponses(ex2.data);
  t.ok(typeof parsed !== 'string' && parsed.responses.length === 0, 'no complete response');
});

t.test('bytes after a complete response are never served as the answer to the next request', async (t) => {
  // The server appends a second, unsolicited response: a response-splitting attempt.
  const { port, count } = await behind(t, (s, n) =>
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nreal-${n}HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED`),
  );
  const ex = await exchange(port, [GET, GET], { idleMs: 800, gapMs: 200 });
  const parsed = parseResponses(ex.data);
  if (typeof parsed === 'string') {
    t.fail(parsed);
    return;
  }
  t.same(
    parsed.responses.map((r) => r.body),
    ['real-1', 'real-2'],
    'each request got its own answer',
  );
  t.notMatch(ex.data, /INJECTED/);
  t.equal(count(), 2);
});

// Hostile requests: every malformed or ambiguous shape is answered (400/414/431/501/505) and
// the connection closed, and the server behind the proxy receives nothing at all: the strict
// backend counts every byte and every complete request it gets.
import t, { type Test } from 'tap';
import type { HttpLimits } from '../src/config/types.js';
import { backendConfig, config, frontendConfig, start } from './support/proxy-harness.js';
import { exchange, parseResponses, strictBackend } from './support/hostile.js';

const LIMITS: HttpLimits = { maxRequestLine: 1024, maxHeaderBytes: 4096, maxHeaders: 20, obsFold: 'reject' };

// Every timeout a minute long: a connection that closes within the tests' 5 s client wait was
// closed because of the request's shape, never by a timeout (no elapsed-time bound needed).
const LONG_FRONTEND = { clientMs: 60_000, httpRequestMs: 60_000, keepAliveMs: 60_000, handshakeMs: 10_000 };
const LONG_BACKEND = { connectMs: 2000, serverMs: 60_000, serverKeepAliveMs: 4000 };

async function setup(t: Test, limits: HttpLimits = LIMITS) {
  const be = await strictBackend();
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api', { limits, timeouts: LONG_FRONTEND })],
      [backendConfig('api', 'http', [be.address], { retries: 0, timeouts: LONG_BACKEND })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await be.close();
  });
  return { be, port: sy.frontendAddress('web').port };
}

const H = 'Host: example.test\r\n';
const long = (n: number) => 'a'.repeat(n);

/** [name, request bytes, expected status] */
const REJECTED: [string, string, number][] = [
  // sizes and counts
  ['request line over the limit', `GET /${long(1100)} HTTP/1.1\r\n${H}\r\n`, 414],
  ['request line over the limit, no LF yet', `GET /${long(1100)}`, 414],
  ['head over the limit', `GET / HTTP/1.1\r\n${H}X-Big: ${long(4200)}\r\n\r\n`, 431],
  ['head over the limit, never ending', `GET / HTTP/1.1\r\n${H}${'X-A: b\r\n'.repeat(600)}`, 431],
  ['too many header fields', `GET / HTTP/1.1\r\n${H}${'X-A: b\r\n'.repeat(20)}\r\n`, 431],
  // tokens
  ['bad char in method', `G(T / HTTP/1.1\r\n${H}\r\n`, 400],
  ['tab after method', `GET\t/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['two spaces after method', `GET  / HTTP/1.1\r\n${H}\r\n`, 400],
  ['space in the target', `GET /a b HTTP/1.1\r\n${H}\r\n`, 400],
  ['CTL in the target', `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, 400],
  ['obs-text in the target', `GET /a\xffb HTTP/1.1\r\n${H}\r\n`, 400],
  ['NUL in the target', `GET /a\x00b HTTP/1.1\r\n${H}\r\n`, 400],
  ['DEL in the target', `GET /a\x7fb HTTP/1.1\r\n${H}\r\n`, 400],
  ['tab in the target', `GET /a\tb HTTP/1.1\r\n${H}\r\n`, 400],
  ['fragment in the target', `GET /a#b HTTP/1.1\r\n${H}\r\n`, 400],
  // request-target forms (RFC 9112 §3.2)
  ['asterisk-form with GET', `GET * HTTP/1.1\r\n${H}\r\n`, 400],
  ['asterisk-form with more after the star', `OPTIONS *x HTTP/1.1\r\n${H}\r\n`, 400],
  ['authority-form outside CONNECT', `GET example.test:80 HTTP/1.1\r\n${H}\r\n`, 400],
  ['relative reference', `GET index.html HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form with another scheme', `GET ftp://example.test/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form, authority differs from Host', `GET http://other.test/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form, authority differs from Host by a port', `GET http://example.test:8080/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form with userinfo', 'GET http://user@example.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n', 400],
  ['absolute-form with an empty authority', `GET http:///x HTTP/1.1\r\n${H}\r\n`, 400],
  ['absolute-form without //', `GET http:example.test/ HTTP/1.1\r\n${H}\r\n`, 400],
  ['trailing space after version', `GET / HTTP/1.1 \r\n${H}\r\n`, 400],
  ['lowercase version', `GET / http/1.1\r\n${H}\r\n`, 400],
  ['empty line first', `\r\nGET / HTTP/1.1\r\n${H}\r\n`, 400],
  ['space in a header name', `GET / HTTP/1.1\r\n${H}X A: 1\r\n\r\n`, 400],
  ['quote in a header name', `GET / HTTP/1.1\r\n${H}X"A: 1\r\n\r\n`, 400],
  ['@ in a header name', `GET / HTTP/1.1\r\n${H}X@A: 1\r\n\r\n`, 400],
  ['empty header name', `GET / HTTP/1.1\r\n${H}: 1\r\n\r\n`, 400],
  ['header line without colon', `GET / HTTP/1.1\r\n${H}X-A 1\r\n\r\n`, 400],
  // field values
  ['NUL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x00b\r\n\r\n`, 400],
  ['bare CR in a value', `GET / HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, 400],
  ['bare LF in a value', `GET / HTTP/1.1\r\n${H}X-A: a\nX-B: b\r\n\r\n`, 400],
  ['DEL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n`, 400],
  ['other CTL in a value', `GET / HTTP/1.1\r\n${H}X-A: a\x0bb\r\n\r\n`, 400],
  ['bare LF line ends', `GET / HTTP/1.1\n${H.replace('\r', '')}\n`, 400],
  ['bare LF after the request line', `GET / HTTP/1.1\n${H}\r\n`, 400],
  ['head ending in LF LF', `GET / HTTP/1.1\r\n${H}X-A: 1\n\n`, 400],
  ['obs-fold', `GET / HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\n\r\n`, 400],
  ['obs-fold with a tab', `GET / HTTP/1.1\r\n${H}X-A: 1\r\n\tfolded\r\n\r\n`, 400],
  ['whitespace before the first field', `GET / HTTP/1.1\r\n ${H}\r\n`, 400],
  ['space before the colon', `GET / HTTP/1.1\r\nHost : example.test\r\n\r\n`, 400],
  ['tab before the colon', `GET / HTTP/1.1\r\nHost\t: example.test\r\n\r\n`, 400],
  // Host
  ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400],
  ['two Hosts', `GET / HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`, 400],
  ['two identical Hosts', `GET / HTTP/1.1\r\n${H}${H}\r\n`, 400],
  ['Host with a space', 'GET / HTTP/1.1\r\nHost: example.test evil.test\r\n\r\n', 400],
  ['Host with a path', 'GET / HTTP/1.1\r\nHost: example.test/evil\r\n\r\n', 400],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: user@example.test\r\n\r\n', 400],
  ['Host with obs-text', 'GET / HTTP/1.1\r\nHost: exampl\xe9.test\r\n\r\n', 400],
  ['Host in HTTP/1.0, twice', 'GET / HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n', 400],
  // Content-Length
  ['CL letters', `POST / HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n`, 400],
  ['CL negative', `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, 400],
  ['CL plus sign', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400],
  ['CL hex', `POST / HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, 400],
  ['CL decimal point', `POST / HTTP/1.1\r\n${H}Content-Length: 5.0\r\n\r\nhello`, 400],
  ['CL inner space', `POST / HTTP/1.1\r\n${H}Content-Length: 5 5\r\n\r\nhello`, 400],
  ['CL list', `POST / HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello`, 400],
  ['CL list of ones', `POST / HTTP/1.1\r\n${H}Content-Length: 1, 1\r\n\r\nh`, 400],
  ['CL list without a space', `POST / HTTP/1.1\r\n${H}Content-Length: 1,1\r\n\r\nh`, 400],
  ['CL list, differing', `POST / HTTP/1.1\r\n${H}Content-Length: 1, 5\r\n\r\nhello`, 400],
  ['CL empty', `POST / HTTP/1.1\r\n${H}Content-Length:\r\n\r\n`, 400],
  ['CL huge', `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999\r\n\r\n`, 400],
  ['CL repeated and differing', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`, 400],
  // Transfer-Encoding
  ['CL then TE', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE then CL', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked, identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
  ['TE gzip, chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE identity', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n`, 400],
  ['TE chunked twice', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked, chunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE Chunked twice, mixed case', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: Chunked\r\ntransfer-encoding: CHUNKED\r\n\r\n0\r\n\r\n`, 400],
  ['TE chunked with a parameter', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n`, 400],
  ['TE quoted', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n`, 400],
  ['TE with vertical tab', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE empty', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\r\n\r\n`, 400],
  ['TE in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
  ['TE in HTTP/1.0 with a Host', 'POST / HTTP/1.0\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', 400],
  ['NUL in a header name', `GET / HTTP/1.1\r\n${H}X\x00A: 1\r\n\r\n`, 400],
  // versions and methods
  ['HTTP/1.2', `GET / HTTP/1.2\r\n${H}\r\n`, 505],
  ['HTTP/2.0', `GET / HTTP/2.0\r\n${H}\r\n`, 505],
  ['HTTP/0.9', `GET / HTTP/0.9\r\n${H}\r\n`, 505],
  ['HTTP/3.0', `GET / HTTP/3.0\r\n${H}\r\n`, 505],
  ['HTTP/1.10', `GET / HTTP/1.10\r\n${H}\r\n`, 400],
  ['HTTP/1', `GET / HTTP/1\r\n${H}\r\n`, 400],
  ['no version (HTTP/0.9 style)', 'GET /\r\n\r\n', 400],
  ['CONNECT', `CONNECT example.test:443 HTTP/1.1\r\n${H}\r\n`, 501],
  // a rejected request followed by a valid one in the same packet: neither is forwarded
  ['bad request then a pipelined good one', `GET / HTTP/1.1\r\n${H}${H}\r\nGET /ok HTTP/1.1\r\n${H}\r\n`, 400],
];

t.test('every rejected shape is answered, the connection closed, and nothing forwarded', async (t) => {
  const { be, port } = await setup(t);
  for (const [name, req, status] of REJECTED) {
    const ex = await exchange(port, req, { idleMs: 5000 });
    const parsed = parseResponses(ex.data);
    if (typeof parsed === 'string') {
      t.fail(`${name}: malformed answer: ${parsed}`);
      continue;
    }
    t.equal(parsed.responses.length, 1, `${name}: one answer`);
    t.equal(parsed.responses[0]?.status, status, `${name}: ${status}`);
    t.equal(parsed.rest, '', `${name}: nothing after the answer`);
    t.ok(
      parsed.responses[0]?.headers.some(([k, v]) => k === 'connection' && v === 'close'),
      `${name}: says connection: close`,
    );
    // closed: the proxy closed before 5 s of silence, while every timeout is 60 s, so it closed
    // because of the rejection (a connection left open fails here).
    t.ok(ex.closed, `${name}: connection closed after the answer, not left to a timeout (${ex.ms} ms)`);
  }
  t.equal(be.connections, 0, 'the server was never even connected to');
  t.equal(be.bytes, 0, 'the server received zero bytes');
  t.equal(be.requests.length, 0, 'the server received zero requests');
});

// Chunked bodies are checked as they stream: the head may already be on its way when the
// body turns out malformed, so the server can see a head, but never a complete request.
const BAD_CHUNKS: [string, string][] = [
  ['chunk size not hex', 'zz\r\nhello\r\n0\r\n\r\n'],
  ['chunk size empty', '\r\nhello\r\n0\r\n\r\n'],
  ['chunk size too long (13 hex digits)', '0000000000005\r\nhello\r\n0\r\n\r\n'],
  ['chunk size with a sign', '+5\r\nhello\r\n0\r\n\r\n'],
  ['chunk ext with a CTL', '5;a=\x01b\r\nhello\r\n0\r\n\r\n'],
  ['chunk ext with a NUL', '5;a\x00\r\nhello\r\n0\r\n\r\n'],
  ['chunk size line ended by bare LF', '5\nhello\r\n0\r\n\r\n'],
  ['chunk size line with bare CR', '5\rhello\r\n0\r\n\r\n'],
  ['missing CRLF after data', '5\r\nhelloX\r\n0\r\n\r\n'],
  ['data longer than the size', '3\r\nhello\r\n0\r\n\r\n'],
  ['bare LF after data', '5\r\nhello\n0\r\n\r\n'],
  ['garbage after the size', '5 x\r\nhello\r\n0\r\n\r\n'],
  ['bad last-chunk line end', '5\r\nhello\r\n0\r\n\rX'],
  ['trailer with a bare LF', '5\r\nhello\r\n0\r\nX-T: 1\n\r\n'],
  ['trailer that is not a field', '5\r\nhello\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n'],
  ['trailer with a space before the colon', '5\r\nhello\r\n0\r\nX-T : 1\r\n\r\n'],
  ['bare LF ending the last-chunk line', '5\r\nhello\r\n0\n\r\n'],
  ['chunk size overflow (16 hex digits)', 'ffffffffffffffff\r\nhello\r\n0\r\n\r\n'],
  ['chunk size with a 0x prefix', '0x5\r\nhello\r\n0\r\n\r\n'],
  ['chunk extension past 4096 bytes', `5;a=${'x'.repeat(4200)}\r\nhello\r\n0\r\n\r\n`],
  ['chunk extension with a bare LF', '5;a=b\nhello\r\n0\r\n\r\n'],
  ['obs-fold in trailers', '5\r\nhello\r\n0\r\nX-T: 1\r\n folded\r\n\r\n'],
  ['Content-Length as a trailer', '5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n'],
  ['Transfer-Encoding as a trailer', '5\r\nhello\r\n0\r\ntransfer-encoding: chunked\r\n\r\n'],
  ['Host as a trailer', '5\r\nhello\r\n0\r\nHOST: evil.test\r\n\r\n'],
  ['trailers past 16 KiB', `5\r\nhello\r\n0\r\n${'X-T: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n'.repeat(300)}\r\n`],
];

t.test('malformed chunked request bodies: answered 400 or closed, never a complete request upstream', async (t) => {
  const { be, port } = await setup(t);
  const head = `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`;
  for (const [name, body] of BAD_CHUNKS) {
    // In one write (head and body together) and with the body a moment after the head.
    for (const pieces of [[head + body], [head, body]]) {
      const ex = await exchange(port, pieces, { idleMs: 5000, gapMs: 50 });
      const parsed = parseResponses(ex.data);
      t.ok(
        typeof parsed !== 'string' && parsed.rest === '' && parsed.responses.every((r) => r.status === 400) && parsed.responses.length <= 1,
        `${name} (${pieces.length} writes): a 400 or nothing: ${JSON.stringify(ex.data.slice(0, 40))}`,
      );
      // Closed by the proxy within 5 s of silence, the timeouts being 60 s: because of the bad chunk.
      t.ok(ex.closed, `${name} (${pieces.length} writes): closed (${ex.ms} ms)`);
    }
  }
  t.equal(be.requests.length, 0, 'the server never got a complete request');
  t.same(be.violations, [], 'and never anything a strict parser rejects');
});

t.test('legal shapes still go through (the strictness does not over-reach)', async (t) => {
  const { be, port } = await setup(t);
  const ok: [string, string, string][] = [
    ['OWS around Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding:  chunked \t\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 'hello'],
    ['Transfer-Encoding is case-insensitive', `POST / HTTP/1.1\r\n${H}transfer-encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`, 'hello'],
    ['repeated identical Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`, 'hello'],
    ['chunk extensions and trailers', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;a=b;c="d e"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n`, 'hello'],
    ['whitespace before chunk ext', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n`, 'hello'],
    ['uppercase hex, leading zeros', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n00000000000A\r\nhelloworld\r\n0\r\n\r\n`, 'helloworld'],
    ['HTTP/1.0 without Host', 'GET / HTTP/1.0\r\n\r\n', ''],
    ['absolute-form whose authority is the Host (case-insensitive)', `GET http://Example.TEST/abs?q=1 HTTP/1.1\r\n${H}\r\n`, ''],
    ['https absolute-form with a port', 'GET HTTPS://example.test:8443/ HTTP/1.1\r\nHost: example.test:8443\r\n\r\n', ''],
    ['absolute-form with a query and no path', 'GET http://example.test?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n', ''],
    ['OPTIONS *', `OPTIONS * HTTP/1.1\r\n${H}\r\n`, ''],
    ['Host as an IPv6 literal with a port', 'GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n', ''],
    ['empty Host (RFC 9110 §7.2)', 'GET / HTTP/1.1\r\nHost:\r\n\r\n', ''],
    ['percent-encoding and sub-delims in the target', `GET /a%20b;c=d/(e)!*'~?x=1&y=%2F HTTP/1.1\r\n${H}\r\n`, ''],
    [
      'a trailer with a framing-like but allowed name',
      `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nContent-Length-X: 1\r\nHosts: 1\r\n\r\n`,
      'hello',
    ],
    ['obs-text in a value', `GET / HTTP/1.1\r\n${H}X-A: caf\xe9\r\n\r\n`, ''],
    ['empty value', `GET / HTTP/1.1\r\n${H}X-A:\r\n\r\n`, ''],
    [
      `request line of exactly maxRequestLine (${LIMITS.maxRequestLine}) bytes`,
      `GET /${long(LIMITS.maxRequestLine - 'GET / HTTP/1.1'.length)} HTTP/1.1\r\n${H}\r\n`,
      '',
    ],
    [`exactly maxHeaders (${LIMITS.maxHeaders}) fields`, `GET / HTTP/1.1\r\n${H}${'X-A: b\r\n'.repeat(LIMITS.maxHeaders - 1)}\r\n`, ''],
  ];
  let i = 0;
  for (const [name, req, body] of ok) {
    const ex = await exchange(port, req, { end: true, idleMs: 1500 });
    t.match(ex.data, /^HTTP\/1\.1 200 /, name);
    i++;
    t.equal(be.requests.length, i, `${name}: forwarded`);
    t.equal(be.requests.at(-1)?.body, body, `${name}: body intact`);
  }
  // A head of exactly maxHeaderBytes is accepted, one byte more is 431.
  const base = `GET / HTTP/1.1\r\n${H}X-Pad: \r\n\r\n`;
  const exact = base.replace('X-Pad: ', `X-Pad: ${long(LIMITS.maxHeaderBytes - base.length)}`);
  t.equal(exact.length, LIMITS.maxHeaderBytes);
  t.match((await exchange(port, exact, { end: true })).data, /^HTTP\/1\.1 200 /, 'head of exactly maxHeaderBytes');
  t.match((await exchange(port, exact.replace('X-Pad: ', 'X-Pad: a'), { end: true })).data, /^HTTP\/1\.1 431 /, 'one byte more');
  t.same(be.violations, []);
  t.same(
    be.requests
      .map((r) => r.target)
      .slice(
        ok.findIndex(([n]) => n.startsWith('absolute-form whose')),
        ok.findIndex(([n]) => n === 'OPTIONS *') + 1,
      ),
    ['http://Example.TEST/abs?q=1', 'HTTPS://example.test:8443/', 'http://example.test?q=1', '*'],
    'absolute-form and * targets are forwarded as sent',
  );
});

// obs-fold (RFC 9112 §5.2): rejected by default (above); with `obsFold: 'unfold'` each fold is
// replaced by spaces before the value is interpreted, so the server gets one plain line and the
// framing and Host checks see the unfolded value.
t.test('obsFold unfold: folded values reach the server as one line; unfolded framing is still checked', async (t) => {
  const { be, port } = await setup(t, { ...LIMITS, obsFold: 'unfold' });
  const ok = await exchange(port, `GET / HTTP/1.1\r\n${H}X-A: one\r\n two\r\n\tthree\r\nX-B: b\r\n\r\n`, { end: true });
  t.match(ok.data, /^HTTP\/1\.1 200 /, 'a folded field is accepted');
  t.equal(be.requests.length, 1);
  t.same(
    be.requests[0]!.headers.filter(([k]) => k === 'x-a' || k === 'x-b'),
    [
      ['x-a', 'one   two  \tthree'],
      ['x-b', 'b'],
    ],
    "unfolded: each CRLF became two spaces, the fold's own whitespace kept",
  );
  t.notMatch(be.requests[0]!.head, /\r\n[ \t]/, 'no continuation line reaches the server');
  const rejected: [string, string][] = [
    ['folded Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\n 5\r\n\r\nhello`],
    ['folded Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n , identity\r\n\r\n0\r\n\r\n`],
    ['folded Host', `GET / HTTP/1.1\r\nHost: example.test\r\n evil.test\r\n\r\n`],
    ['whitespace before the first field (never a fold)', `GET / HTTP/1.1\r\n ${H}\r\n`],
    ['fold with a bare LF', `GET / HTTP/1.1\r\n${H}X-A: 1\n folded\r\n\r\n`],
  ];
  for (const [name, req] of rejected) {
    const ex = await exchange(port, req, { idleMs: 1500 });
    t.match(ex.data, /^HTTP\/1\.1 400 /, `${name}: 400`);
    t.ok(ex.closed, `${name}: closed`);
  }
  t.equal(be.requests.length, 1, 'none of those reached the server');
  t.same(be.violations, []);
});

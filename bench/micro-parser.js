// Micro-benchmark of the HTTP/1.1 head parser and the chunked scanner (benchmark.js): the
// per-request CPU the proxy spends on framing, apart from the sockets.
//
//   npm run build && node bench/micro-parser.js [--quick]
//
// Heads are copied into a larger buffer at moving offsets, as reads land in a socket's read
// buffer, so the parser never sees one object over and over. Figures are ns per parse.
import Benchmark from 'benchmark';
import { HttpHead } from '../dist/balancer/http-head.js';
import { ChunkedScanner } from '../dist/balancer/chunked.js';

const quick = process.argv.includes('--quick');
const maxTime = quick ? 0.25 : 1;
Benchmark.support.decompilation = false;

const LIMITS = { maxRequestLine: 8192, maxHeaderBytes: 32768, maxHeaders: 100, obsFold: 'reject' };
const RESPONSE_LIMITS = { maxRequestLine: 8192, maxHeaderBytes: 65536, maxHeaders: 200 };

const inputs = {
  'request, wrk/autocannon (1 field)': ['request', 'GET /hello HTTP/1.1\r\nHost: 127.0.0.1:19010\r\n\r\n'],
  'request, browser (8 fields)': [
    'request',
    'GET /api/items?page=2 HTTP/1.1\r\nHost: files.example.com\r\n' +
      'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36\r\n' +
      'Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9\r\n' +
      'Accept-Encoding: gzip, deflate, br\r\nCookie: SY_SERVER=abc123; session=0123456789abcdef0123456789abcdef\r\n' +
      'X-Forwarded-For: 203.0.113.7\r\nConnection: keep-alive\r\n\r\n',
  ],
  'response, nginx (5 fields)': [
    'response',
    'HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 07:43:33 GMT\r\n' +
      'Content-Type: text/plain\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\nhello world\n',
  ],
};

const suite = new Benchmark.Suite('parser');
for (const [name, [kind, text]] of Object.entries(inputs)) {
  const bytes = Buffer.from(text, 'latin1');
  const area = Buffer.allocUnsafe(1 << 16);
  const slots = [];
  for (let off = 0; off + bytes.length < area.length && slots.length < 64; off += 1000) {
    bytes.copy(area, off);
    slots.push(area.subarray(off, off + bytes.length));
  }
  const head = new HttpHead(kind === 'request' ? LIMITS : RESPONSE_LIMITS);
  let i = 0;
  const fn =
    kind === 'request'
      ? () => {
          const b = slots[i++ & 63];
          if (head.parseRequest(b, 0, b.length) !== 1) throw new Error(head.error);
        }
      : () => {
          const b = slots[i++ & 63];
          if (head.parseResponse(b, 0, b.length) !== 1) throw new Error(head.error);
        };
  for (let k = 0; k < 100_000; k++) fn();
  suite.add(name, fn, { maxTime });
}
{
  // A 16 KiB chunked body in 1 KiB chunks: the scanner walks sizes and CRLFs, skips data.
  const chunk = `400\r\n${'x'.repeat(1024)}\r\n`;
  const body = Buffer.from(chunk.repeat(16) + '0\r\n\r\n', 'latin1');
  const scanner = new ChunkedScanner();
  const fn = () => {
    scanner.reset();
    if (scanner.scan(body, 0, body.length) !== body.length) throw new Error(scanner.error);
  };
  for (let k = 0; k < 20_000; k++) fn();
  suite.add('chunked scan, 16 x 1 KiB chunks', fn, { maxTime });
}
suite.on('cycle', (e) => {
  const b = e.target;
  console.log(`${b.name.padEnd(40)} ${(1e9 / b.hz).toFixed(0).padStart(7)} ns  ±${b.stats.rme.toFixed(1)}%`);
});
suite.run();

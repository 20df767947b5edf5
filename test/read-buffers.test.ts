import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { backendConfig, config, frontendConfig, start, tcpServer } from './support/proxy-harness.js';

// Byte integrity through every read path of the proxy core (src/balancer/read-buffer.ts): raw
// client sockets on plain HTTP frontends (raw-socket.ts, the default there), net.Sockets reading
// through `onread` into buffers each socket owns (TCP mode, and HTTP with
// SWITCHYARD_RAW_SOCKETS=0), and net's stream reads (SWITCHYARD_STREAM_READS=1, the fallback). Random bytes, so a chunk read into a buffer that a
// queued write still referenced would show; a client that reads slowly, so writes do queue
// (backpressure both ways); a head trickled byte by byte, so partial heads are kept across reads.

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Writes `data`, half-closes, and reads everything back slowly: nothing for the first 200 ms
 * (the kernel's receive window stays small, so the proxy's writes queue), then a pause every
 * 256 KiB.
 */
function slowExchange(port: number, data: Buffer | string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let sinceBreak = 0;
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      sinceBreak += d.length;
      if (sinceBreak >= 256 * 1024) {
        sinceBreak = 0;
        s.pause();
        setTimeout(() => s.resume(), 15);
      }
    });
    s.on('end', () => s.end());
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.pause();
    setTimeout(() => s.resume(), 200);
    const send = async (): Promise<void> => {
      if (Buffer.isBuffer(data)) {
        s.end(data);
        return;
      }
      for (const piece of data) {
        s.write(piece);
        await new Promise((r) => setTimeout(r, 2));
      }
      s.end();
    };
    s.on('connect', () => {
      send().catch(reject);
    });
  });
}

for (const path of ['raw', 'onread', 'stream'] as const) {
  t.test(`${path} reads: bytes arrive intact under backpressure`, async (t) => {
    if (path === 'stream') process.env.SWITCHYARD_STREAM_READS = '1';
    if (path === 'onread') process.env.SWITCHYARD_RAW_SOCKETS = '0';
    t.teardown(() => {
      delete process.env.SWITCHYARD_STREAM_READS;
      delete process.env.SWITCHYARD_RAW_SOCKETS;
    });
    // HTTP: an echo server (node:http answers chunked, no Content-Length) and a TCP echo.
    // GET /dribble: 8 MiB of random bytes in 997-byte writes, one per turn of the event loop, so
    // the proxy's reads from the server are short, not whole buffers, while its writes to the
    // slow client queue up.
    const dribble = randomBytes(8 * MiB);
    const http = createServer((req, res) => {
      if (req.method !== 'GET') {
        req.pipe(res);
        return;
      }
      if (req.url !== '/dribble') {
        res.end(`you asked ${req.url}`);
        return;
      }
      res.setHeader('content-length', dribble.length);
      let p = 0;
      const next = () => {
        if (p >= dribble.length) {
          res.end();
          return;
        }
        res.write(dribble.subarray(p, p + 997));
        p += 997;
        setImmediate(next);
      };
      next();
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const echo = await tcpServer();
    const httpAddress = `127.0.0.1:${(http.address() as AddressInfo).port}`;
    const sy = await start(
      config(
        [frontendConfig('web', 'http', 'api'), frontendConfig('db', 'tcp', 'raw')],
        [backendConfig('api', 'http', [httpAddress]), backendConfig('raw', 'tcp', [echo.address])],
      ),
    );
    t.teardown(async () => {
      await sy.stop(100);
      http.closeAllConnections();
      http.close();
      await echo.close();
    });
    const listener = sy as unknown as { listeners: Map<string, { acceptPath: string }> };
    t.equal(listener.listeners.get('web')?.acceptPath, path === 'stream' ? 'net' : path, `the listener uses ${path} reads`);

    const body = randomBytes(4 * MiB);
    const head = `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const raw = await slowExchange(sy.frontendAddress('web').port, Buffer.concat([Buffer.from(head), body]));
    const split = raw.indexOf('\r\n\r\n');
    t.match(raw.subarray(0, split).toString('latin1'), /^HTTP\/1\.1 200 /, 'HTTP: 200');
    t.match(raw.subarray(0, split).toString('latin1'), /transfer-encoding: chunked/i, 'relayed chunked');
    t.equal(sha(dechunk(raw.subarray(split + 4))), sha(body), 'HTTP: the 4 MiB body came back byte for byte');

    const dribbled = await slowExchange(sy.frontendAddress('web').port, Buffer.from('GET /dribble HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    t.equal(sha(dribbled.subarray(dribbled.indexOf('\r\n\r\n') + 4)), sha(dribble), 'HTTP: 8 MiB in short reads, to a slow client, byte for byte');

    const payload = randomBytes(4 * MiB);
    t.equal(sha(await slowExchange(sy.frontendAddress('db').port, payload)), sha(payload), 'TCP: 4 MiB echoed byte for byte');

    // Three pipelined requests trickled a few bytes at a time: partial heads kept across reads.
    const text = ['/a', '/bb', '/ccc'].map((u, i) => `GET ${u} HTTP/1.1\r\nHost: x\r\n${i === 2 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    const pieces = text.match(/[\s\S]{1,3}/g)!;
    const answers = (await slowExchange(sy.frontendAddress('web').port, pieces)).toString('latin1');
    t.same(
      [...answers.matchAll(/you asked (\/[a-c]+)/g)].map((m) => m[1]),
      ['/a', '/bb', '/ccc'],
      'all answered, in order',
    );
  });
}

/** The payload of a chunked body (no trailers). */
function dechunk(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let p = 0;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', p);
    const size = parseInt(buf.subarray(p, lineEnd).toString('latin1'), 16);
    if (size === 0) break;
    out.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
    p = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

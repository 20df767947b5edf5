// Decrypted reads of terminated TLS connections (src/balancer/tls-read.ts): into the socket's
// own `onread` buffers where the runtime allows it, through 'data' events otherwise. Each path
// moves random bytes in many small TLS records and compares them: directly on a server-side
// TLSSocket (the onread path, a runtime whose handle ignores the user buffer, a runtime
// without the slots), then through a TLS frontend under backpressure on both paths.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { setReader, writeKept, type SocketReader } from '../src/balancer/read-buffer.js';
import { fellBack, onreadSlots, readTlsViaOnread, tlsReadPath } from '../src/balancer/tls-read.js';
import { normalizeConfig } from '../src/config/load.js';
import { start } from './support/proxy-harness.js';
import { makeCa } from './support/tls-certs.js';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const ca = makeCa();
t.teardown(() => ca.cleanup());
const leaf = ca.issue('server', ['read.test', 'IP:127.0.0.1']);
const context = createSecureContext({ cert: leaf.cert, key: leaf.key });

type Setup = 'onread' | 'ignored-buffer' | 'no-slots' | 'env';

/**
 * A TLS server on a bare net server, its TLSSocket prepared as `setup` says, reading through a
 * reader that keeps every chunk it is given (returns true) or copies it (returns false); the
 * client writes `payload` in 1000-byte records. Resolves with what the server read.
 */
async function serve(setup: Setup, keep: boolean, payload: Buffer): Promise<{ received: Buffer; path: string; enabled: boolean }> {
  let result!: (r: { received: Buffer; path: string; enabled: boolean }) => void;
  const done = new Promise<{ received: Buffer; path: string; enabled: boolean }>((r) => {
    result = r;
  });
  const server = createServer({ allowHalfOpen: true }, (raw: Socket) => {
    const socket = new TLSSocket(raw, { isServer: true, secureContext: context });
    if (setup === 'ignored-buffer') {
      // A runtime whose handle takes the buffer but keeps filling its own.
      (socket as unknown as { _handle: { useUserBuffer: () => void } })._handle.useUserBuffer = () => {};
    }
    if (setup === 'env') process.env.SWITCHYARD_STREAM_READS = '1';
    const enabled = readTlsViaOnread(socket, setup === 'no-slots' ? null : onreadSlots());
    delete process.env.SWITCHYARD_STREAM_READS;
    const chunks: Buffer[] = [];
    const reader: SocketReader = {
      onRead(chunk: Buffer): boolean {
        chunks.push(keep ? chunk : Buffer.from(chunk));
        return keep;
      },
    };
    socket.on('secure', () => setReader(socket, reader, false));
    socket.on('end', () => {
      result({ received: Buffer.concat(chunks), path: tlsReadPath(socket), enabled });
      socket.end();
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: ca.caPem, servername: 'read.test' });
  const send = async (): Promise<void> => {
    for (let p = 0; p < payload.length; p += 1000) {
      if (!client.write(payload.subarray(p, p + 1000))) await new Promise((r) => client.once('drain', r));
      // Now and then a pause, so reads are sometimes one record and sometimes many.
      if (p % 64000 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    client.end();
  };
  client.on('secureConnect', () => void send());
  client.resume();
  const r = await done;
  client.destroy();
  server.close();
  return r;
}

t.test('a server-side TLSSocket reads into its own buffers, bytes intact', async (t) => {
  t.ok(onreadSlots(), 'the onread slots of net.Socket are found on this runtime');
  const payload = randomBytes(2 * MiB);
  for (const keep of [false, true]) {
    const r = await serve('onread', keep, payload);
    t.ok(r.enabled, 'the onread path was taken');
    t.equal(r.path, 'onread', 'and still in use after the reads');
    t.equal(sha(r.received), sha(payload), `2 MiB in 1000-byte records, byte for byte (reader ${keep ? 'keeps' : 'copies'} chunks)`);
  }
});

t.test('a handle that ignores the user buffer: the first read falls back to stream reads, nothing lost', async (t) => {
  const before = fellBack;
  const payload = randomBytes(MiB);
  const r = await serve('ignored-buffer', false, payload);
  t.ok(r.enabled, 'the slots were set');
  t.equal(fellBack, before + 1, 'the first decrypted read showed the buffer was not used');
  t.equal(r.path, 'stream', 'the socket reads through data events since');
  t.equal(sha(r.received), sha(payload), '1 MiB byte for byte');
});

t.test('no onread slots (another runtime), or SWITCHYARD_STREAM_READS=1: stream reads', async (t) => {
  const payload = randomBytes(MiB);
  for (const setup of ['no-slots', 'env'] as const) {
    const r = await serve(setup, false, payload);
    t.notOk(r.enabled, `${setup}: onread not set up`);
    t.equal(r.path, 'stream', `${setup}: data events`);
    t.equal(sha(r.received), sha(payload), `${setup}: 1 MiB byte for byte`);
  }
});

t.test('a TLSSocket keeps no written chunk past write() unless its stream queued it (writeKept)', async (t) => {
  // As a session relays server reads to a TLS client: one buffer, overwritten with the next
  // bytes as soon as writeKept() says the last write let go of it, a fresh one otherwise. Were
  // the handle still to read a chunk after write() returned, the client would get the later
  // bytes in its place.
  const payload = randomBytes(2 * MiB);
  let reused = 0;
  let kept = 0;
  const server = createServer((raw: Socket) => {
    const socket = new TLSSocket(raw, { isServer: true, secureContext: context });
    socket.on('error', () => socket.destroy());
    socket.on('secure', () => {
      const send = async (): Promise<void> => {
        let buf = Buffer.allocUnsafe(4096);
        for (let p = 0, i = 0; p < payload.length; i++) {
          const n = Math.min(1 + ((i * 7919) % 4096), payload.length - p);
          payload.copy(buf, 0, p, p + n);
          p += n;
          const queued = socket.writableLength;
          socket.write(buf.subarray(0, n));
          if (writeKept(socket, queued)) {
            kept++;
            buf = Buffer.allocUnsafe(4096);
          } else {
            reused++;
          }
          // Mostly one write at a time, as keep-alive responses come; now and then a burst of
          // three: the first goes to the handle, the stream queues the others behind it.
          if (i % 8 > 2) while (socket.writableLength > 0) await new Promise((r) => setImmediate(r));
        }
        socket.end();
      };
      void send();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const received = await new Promise<Buffer>((resolve, reject) => {
    const client = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: ca.caPem, servername: 'read.test' });
    const chunks: Buffer[] = [];
    client.on('data', (d: Buffer) => chunks.push(d));
    client.on('end', () => {
      resolve(Buffer.concat(chunks));
      client.destroy();
    });
    client.on('error', reject);
  });
  t.ok(reused > 100, `the buffer was overwritten right after most writes (${reused})`);
  t.ok(kept > 0, `writes queued behind another kept their chunk (${kept})`);
  t.equal(sha(received), sha(payload), '2 MiB byte for byte');
});

t.test('writeKept on plain and still-connecting sockets', async (t) => {
  const server = createServer((s) => s.resume());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const plain = await new Promise<Socket>((resolve) => {
    const s = netConnect(port, '127.0.0.1', () => resolve(s));
  });
  plain.write(Buffer.from('a short write completes at once'));
  t.notOk(writeKept(plain, 0), 'plain socket, write completed: not kept');
  plain.cork();
  plain.write(Buffer.from('corked'));
  t.ok(writeKept(plain, 0), 'plain socket, corked: kept');
  plain.uncork();
  plain.destroy();
  const early = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'read.test' });
  early.on('error', () => {});
  early.write(Buffer.from('before the TCP connection opened'));
  t.ok(writeKept(early, 0), 'TLS socket still connecting: kept');
  early.destroy();
});

for (const path of ['onread', 'stream'] as const) {
  t.test(`TLS frontend, ${path} reads: bodies both ways, pipelined heads in pieces`, async (t) => {
    if (path === 'stream') process.env.SWITCHYARD_STREAM_READS = '1';
    t.teardown(() => {
      delete process.env.SWITCHYARD_STREAM_READS;
    });
    const http = createHttpServer((req, res) => {
      if (req.method === 'POST') {
        req.pipe(res);
        return;
      }
      res.end(`you asked ${req.url}`);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const sy = await start(
      normalizeConfig(
        {
          stats: { bind: '127.0.0.1:0' },
          frontends: { web: { bind: '127.0.0.1:0', backend: 'api', tls: { certificates: [{ cert: 'server.pem', key: 'server.key' }] } } },
          backends: { api: { health: { type: 'none' }, servers: [{ address: `127.0.0.1:${(http.address() as AddressInfo).port}` }] } },
        },
        join(ca.dir, 'switchyard.yaml'),
      ),
    );
    t.teardown(async () => {
      await sy.stop(100);
      http.closeAllConnections();
      http.close();
    });
    const port = sy.frontendAddress('web').port;
    const listener = (sy as unknown as { listeners: Map<string, { openSessions(): Iterable<{ socket: TLSSocket }> }> }).listeners.get('web')!;

    // A 4 MiB POST echoed back to a client that reads nothing for 200 ms and then slowly: the
    // proxy's writes queue both ways while it reads decrypted records.
    const body = randomBytes(4 * MiB);
    const head = `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    const paths: string[] = [];
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'read.test' });
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
      s.pause();
      s.on('secureConnect', () => {
        s.write(head);
        s.write(body);
        setTimeout(() => {
          for (const session of listener.openSessions()) paths.push(tlsReadPath(session.socket));
          s.resume();
        }, 200);
      });
    });
    t.same(paths, [path], `the session reads through ${path}`);
    const split = raw.indexOf('\r\n\r\n');
    t.match(raw.subarray(0, split).toString('latin1'), /^HTTP\/1\.1 200 /, '200');
    const text = raw.subarray(0, split).toString('latin1');
    const echoed = /transfer-encoding: chunked/i.test(text) ? dechunk(raw.subarray(split + 4)) : raw.subarray(split + 4);
    t.equal(sha(echoed), sha(body), '4 MiB came back byte for byte');

    // Three pipelined requests, a few bytes per TLS record: partial heads kept across reads.
    const requests = ['/a', '/bb', '/ccc'].map((u, i) => `GET ${u} HTTP/1.1\r\nHost: x\r\n${i === 2 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    const answers = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ port, host: '127.0.0.1', ca: ca.caPem, servername: 'read.test' });
      let out = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        out += d;
      });
      s.on('end', () => resolve(out));
      s.on('error', reject);
      const trickle = async (): Promise<void> => {
        for (const piece of requests.match(/[\s\S]{1,3}/g)!) {
          s.write(piece);
          await new Promise((r) => setTimeout(r, 1));
        }
      };
      s.on('secureConnect', () => void trickle());
    });
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

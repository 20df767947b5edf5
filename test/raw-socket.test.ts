import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, Socket, type AddressInfo, type Server } from 'node:net';
import { acceptWithOnread } from '../src/balancer/accept.js';
import type { ClientSocket } from '../src/model/proxy-socket.js';
import { isTcpHandle, rawConnect, rawConnectSupported, RawSocket, rawSocketsSupported } from '../src/balancer/raw-socket.js';
import { setReader, type SocketReader } from '../src/balancer/read-buffer.js';

// RawSocket (src/balancer/raw-socket.ts): connections on the TCP handle, without a net.Socket.
// Each client-side test accepts real connections through accept.ts on a bare net server and
// checks one of the meanings RawSocket promises to share with net.Socket: bytes intact under
// backpressure both ways, end() as a lingering close, destroy(), the client's half-close,
// inactivity timeouts, addresses, corked writes, a reset mid-write; and the fallback to net.Socket
// (SWITCHYARD_RAW_SOCKETS=0, or a handle of another shape). The server-side tests connect out
// with rawConnect: writes queued until the connection opens, a refused connect, a destroy meanwhile.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A net server whose connections come through accept.ts (raw where supported) to `onSocket`. */
async function rawServer(t: Test, onSocket: (socket: ClientSocket) => void): Promise<number> {
  const server: Server = createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const path = acceptWithOnread(server, { allowHalfOpen: true, pauseOnCreate: false, raw: true }, onSocket, () => {
    throw new Error('onread unsupported');
  });
  t.equal(path, rawSocketsSupported() ? 'raw' : 'onread', 'accept.ts took over the listening handle');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

/** A reader that hands every chunk to `fn` (which may keep it: returns true). */
function reader(fn: (chunk: Buffer) => boolean): SocketReader {
  return { onRead: fn };
}

function closed(socket: ClientSocket): Promise<void> {
  return new Promise((resolve) => socket.on('close', () => resolve()));
}

/** A promise settled from elsewhere (a socket's 'close' seen inside the accept callback). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The kind of socket the next connection to a fresh raw-accepting server is made into. */
async function acceptedKind(t: Test): Promise<ClientSocket> {
  let got: ClientSocket | null = null;
  const port = await rawServer(t, (s) => {
    got = s;
    s.destroy();
  });
  const c = connect(port, '127.0.0.1');
  await new Promise((r) => c.on('close', r));
  if (got === null) throw new Error('no connection accepted');
  return got;
}

t.test('plain connections become RawSockets where the runtime allows', async (t) => {
  t.ok(rawSocketsSupported(), 'this Node offers what RawSocket needs');
  t.ok((await acceptedKind(t)) instanceof RawSocket, 'the accepted connection is a RawSocket');
});

t.test('SWITCHYARD_RAW_SOCKETS=0 keeps net.Socket', async (t) => {
  process.env.SWITCHYARD_RAW_SOCKETS = '0';
  t.teardown(() => {
    delete process.env.SWITCHYARD_RAW_SOCKETS;
  });
  t.notOk(rawSocketsSupported());
  t.ok((await acceptedKind(t)) instanceof Socket, 'a net.Socket');
});

t.test('a handle of another shape is not taken for a TCP handle', async (t) => {
  t.notOk(isTcpHandle(null));
  t.notOk(isTcpHandle({}));
  const almost = {
    readStart() {},
    readStop() {},
    useUserBuffer() {},
    writeBuffer() {},
    writev() {},
    shutdown() {},
    close() {},
    getpeername() {},
    getsockname() {},
  };
  t.notOk(isTcpHandle(almost), 'no setNoDelay: not one');
  t.ok(isTcpHandle({ ...almost, setNoDelay() {} }));
});

t.test('echo under backpressure both ways: 16 MiB intact, write() false until drain', async (t) => {
  const data = randomBytes(16 * 1024 * 1024);
  let sawFalse = 0;
  let drains = 0;
  const port = await rawServer(t, (s) => {
    // Echo: a chunk still queued is kept (return true) and reading pauses until 'drain'.
    setReader(
      s,
      reader((chunk) => {
        if (s.write(chunk)) return false;
        sawFalse++;
        s.pause();
        return true;
      }),
      true,
    );
    s.on('drain', () => {
      drains++;
      s.resume();
    });
    s.on('end', () => s.end());
  });
  const echoed = await new Promise<Buffer>((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    // Read nothing for a while, so the server's writes queue.
    c.pause();
    setTimeout(() => c.resume(), 200);
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('end', () => c.end());
    c.on('close', () => resolve(Buffer.concat(chunks)));
    c.on('error', reject);
    c.end(data);
  });
  t.equal(echoed.length, data.length, 'every byte came back');
  t.equal(sha(echoed), sha(data), 'byte for byte');
  t.ok(sawFalse > 0, 'some writes had to wait for the kernel');
  t.ok(drains > 0, "and 'drain' resumed reading");
});

t.test('end(): the response, then a half-close; bytes the client still sends are read, not reset', async (t) => {
  let server: ClientSocket | null = null;
  let readAfterEnd = 0;
  let ended = false;
  const port = await rawServer(t, (s) => {
    server = s;
    setReader(
      s,
      reader((chunk) => {
        if (ended) readAfterEnd += chunk.length;
        else {
          ended = true;
          s.end(Buffer.from('bye'));
        }
        return false;
      }),
      true,
    );
  });
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let got = '';
  let error: Error | null = null;
  c.on('data', (d: Buffer) => (got += d.toString()));
  c.on('error', (e) => (error = e));
  c.write('hello');
  await new Promise((r) => c.once('end', r));
  t.equal(got, 'bye', 'the answer, then end of stream');
  t.notOk(server!.destroyed, 'the server side waits for the client to close');
  // The client goes on sending (a request body we did not want): read and dropped.
  c.write(Buffer.alloc(256 * 1024, 1));
  const serverClosed = closed(server!);
  await new Promise((r) => setTimeout(r, 50));
  c.end();
  await serverClosed;
  await new Promise((r) => c.on('close', r));
  t.equal(error, null, 'no reset reached the client');
  t.equal(readAfterEnd, 256 * 1024, 'what came after end() was read');
});

t.test("the client's half-close: 'end', then end() closes at once", async (t) => {
  const events: string[] = [];
  const port = await rawServer(t, (s) => {
    setReader(
      s,
      reader(() => false),
      true,
    );
    s.on('end', () => {
      events.push('end');
      s.end(Buffer.from('last words'));
    });
    s.on('close', () => events.push('close'));
  });
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString()));
  c.end('request');
  await new Promise((r) => c.on('close', r));
  t.equal(got, 'last words');
  while (events.length < 2) await new Promise((r) => setTimeout(r, 10));
  t.same(events, ['end', 'close']);
});

t.test("destroy(): 'close' comes from the handle, not inside the call", async (t) => {
  let closedInside = false;
  const after = deferred();
  const port = await rawServer(t, (s) => {
    let inCall = true;
    s.on('close', () => {
      if (inCall) closedInside = true;
      after.resolve();
    });
    s.write(Buffer.from('x'));
    s.destroy();
    s.destroy(); // twice: harmless
    t.ok(s.destroyed);
    t.notOk(s.write(Buffer.from('y')), 'a write after destroy() is refused');
    inCall = false;
  });
  const c = connect(port, '127.0.0.1');
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString()));
  await new Promise((r) => c.on('close', r));
  await after.promise;
  t.notOk(closedInside);
  t.equal(got, 'x', 'what the kernel had still went out');
});

t.test('setTimeout: fires after inactivity, reads and writes put it off', async (t) => {
  let timedOut = 0;
  let reads = 0;
  const port = await rawServer(t, (s) => {
    setReader(
      s,
      reader(() => {
        reads++;
        return false;
      }),
      true,
    );
    s.setTimeout(600, function (this: ClientSocket) {
      timedOut++;
      this.destroy();
    });
  });
  const c = connect(port, '127.0.0.1');
  // Keep it busy for twice the timeout: it must not fire meanwhile.
  for (let i = 0; i < 12; i++) {
    c.write('.');
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(timedOut, 0, 'not while the client keeps sending');
  await new Promise((r) => c.on('close', r));
  t.equal(timedOut, 1, 'once idle, it fired (and closed the connection)');
  t.ok(reads >= 1);
});

t.test('addresses: the client end and ours', async (t) => {
  let seen: { ra?: string; rp?: number; rf?: string; la?: string; lp?: number } = {};
  const port = await rawServer(t, (s) => {
    seen = { ra: s.remoteAddress, rp: s.remotePort, rf: s.remoteFamily, la: s.localAddress, lp: s.localPort };
    s.destroy();
  });
  const c = connect(port, '127.0.0.1');
  await new Promise((r) => c.on('connect', r));
  const local = c.localPort;
  await new Promise((r) => c.on('close', r));
  t.same(seen, { ra: '127.0.0.1', rp: local, rf: 'IPv4', la: '127.0.0.1', lp: port });
});

t.test('cork(): writes wait, count in writableLength, and go out in order on uncork()', async (t) => {
  let lengthCorked = -1;
  const port = await rawServer(t, (s) => {
    s.cork();
    s.write(Buffer.from('one,'));
    s.write(Buffer.from('two,'));
    s.write(Buffer.from('three'));
    lengthCorked = s.writableLength;
    s.uncork();
    t.equal(s.writableLength, 0, 'all taken by the kernel at once');
    s.end();
  });
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString()));
  c.on('end', () => c.end());
  await new Promise((r) => c.on('close', r));
  t.equal(lengthCorked, 13);
  t.equal(got, 'one,two,three');
});

t.test("a client that resets mid-transfer: 'error', then 'close'", async (t) => {
  const events: string[] = [];
  const done = deferred();
  const port = await rawServer(t, (s) => {
    s.on('error', () => events.push('error'));
    s.on('close', () => done.resolve());
    setReader(
      s,
      reader(() => {
        // Write until the kernel queues, then keep writing as drains come.
        const big = Buffer.alloc(1024 * 1024, 7);
        const pump = (): void => {
          while (!s.destroyed && s.write(big));
        };
        s.on('drain', pump);
        pump();
        return false;
      }),
      true,
    );
  });
  const c = connect(port, '127.0.0.1');
  c.write('go');
  c.once('data', () => c.resetAndDestroy());
  await done.promise;
  t.same(events, ['error'], "the failed write said so once before 'close'");
});

// --- connections to servers (rawConnect): what Upstream (src/balancer/upstream.ts) relies on.

/** A server that echoes and ends when the client ends; `port` and what it was sent. */
async function echoServer(t: Test): Promise<{ port: number; received: () => string }> {
  let received = '';
  const server = createServer({ allowHalfOpen: true }, (c) => {
    c.on('data', (d: Buffer) => {
      received += d.toString();
      c.write(d);
    });
    c.on('end', () => c.end());
    c.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, received: () => received };
}

t.test('rawConnect: writes and end() before the connection opens wait for it, in order', async (t) => {
  t.ok(rawConnectSupported(), 'this Node can make outbound raw connections');
  const echo = await echoServer(t);
  const s = rawConnect('127.0.0.1', echo.port, 4, Buffer.allocUnsafe(64))!;
  t.ok(s.connecting, 'connecting at first');
  let echoed = '';
  const events: string[] = [];
  setReader(
    s,
    reader((chunk) => {
      echoed += chunk.toString();
      return false;
    }),
    true,
  );
  s.on('connect', () => events.push('connect'));
  s.on('end', () => events.push('end'));
  s.on('error', () => events.push('error'));
  const done = closed(s);
  t.ok(s.write(Buffer.from('first,')), 'a write while connecting is taken');
  s.write(Buffer.from('second'));
  t.equal(s.writableLength, 12, 'and counted as queued');
  s.end();
  await done;
  t.equal(echo.received(), 'first,second', 'the server got both writes, in order');
  t.equal(echoed, 'first,second', 'and its answer was read (64-byte buffer: grown as needed)');
  t.same(events, ['connect', 'end'], 'connect, then the end of the answer; no error');
});

t.test("rawConnect to a closed port: 'error' with the errno's code, then 'close', never 'connect'", async (t) => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const s = rawConnect('127.0.0.1', port, 4, Buffer.allocUnsafe(64))!;
  const events: string[] = [];
  let code: unknown = null;
  s.on('connect', () => events.push('connect'));
  s.on('error', (error: Error) => {
    events.push('error');
    code = (error as NodeJS.ErrnoException).code;
  });
  s.write(Buffer.from('lost'));
  await closed(s);
  t.same(events, ['error']);
  t.equal(code, 'ECONNREFUSED');
});

t.test('rawConnect, destroyed while connecting: closes quietly', async (t) => {
  const echo = await echoServer(t);
  const s = rawConnect('127.0.0.1', echo.port, 4, Buffer.allocUnsafe(64))!;
  const events: string[] = [];
  s.on('connect', () => events.push('connect'));
  s.on('error', () => events.push('error'));
  s.destroy();
  await closed(s);
  t.same(events, [], 'neither connect nor error');
});

// --- the fallbacks, as another runtime would take them

t.test('no stream binding (a runtime without process.binding): no raw sockets, no raw connects', async (t) => {
  const proc = process as unknown as { binding: (name: string) => unknown };
  const real = proc.binding;
  proc.binding = () => {
    throw new Error('No such module');
  };
  t.teardown(() => {
    proc.binding = real;
  });
  // A fresh copy of the module: the real one has read the bindings already.
  const fresh = await t.mockImport<typeof import('../src/balancer/raw-socket.js')>('../src/balancer/raw-socket.js');
  t.notOk(fresh.rawSocketsSupported(), 'raw client sockets off');
  t.notOk(fresh.rawConnectSupported(), 'raw server connections off');
  t.equal(fresh.rawConnect('127.0.0.1', 9, 4, Buffer.allocUnsafe(64)), null, 'rawConnect declines: upstream.ts uses net.connect');
});

t.test('a handle that does not look like a TCP handle: that connection is a net.Socket', async (t) => {
  const real = await import('../src/balancer/raw-socket.js');
  const { acceptWithOnread: accept } = await t.mockImport<typeof import('../src/balancer/accept.js')>('../src/balancer/accept.js', {
    '../src/balancer/raw-socket.js': { ...real, isTcpHandle: () => false },
  });
  const server: Server = createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  let got: ClientSocket | null = null;
  let echoed = '';
  const path = accept(
    server,
    { allowHalfOpen: true, pauseOnCreate: false, raw: true },
    (s) => {
      got = s;
      setReader(
        s,
        reader((chunk) => {
          s.end(chunk);
          return false;
        }),
        true,
      );
    },
    () => {
      throw new Error('onread unsupported');
    },
  );
  t.equal(path, 'raw', 'the listener asked for raw sockets');
  const c = connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('data', (d: Buffer) => (echoed += d.toString()));
  c.on('end', () => c.end());
  c.write('still served');
  await new Promise((r) => c.on('close', r));
  t.ok(got !== null && (got as ClientSocket) instanceof Socket, 'the connection went the net.Socket way');
  t.equal(echoed, 'still served', 'and was served');
});

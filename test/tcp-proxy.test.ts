import t from 'tap';
import { connect } from 'node:net';
import { backendConfig, config, deadPort, frontendConfig, start, tcpServer } from './support/proxy-harness.js';

/** Connect, send `data`, half-close, and collect everything until the proxy closes. */
function exchange(port: number, data: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => {
      s.end();
    });
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.end(data);
  });
}

t.test('TCP echo with half-close: the server sees our FIN and still answers', async (t) => {
  // The server answers only after the client's FIN: it counts bytes then replies and closes.
  const srv = await tcpServer((s) => {
    let n = 0;
    s.on('data', (d) => {
      n += d.length;
    });
    s.on('end', () => s.end(`got ${n} bytes`));
  });
  const sy = await start(config([frontendConfig('db', 'tcp', 'pg')], [backendConfig('pg', 'tcp', [srv.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const port = sy.frontendAddress('db').port;
  const out = await exchange(port, Buffer.alloc(200_000, 7));
  t.equal(out.toString(), 'got 200000 bytes');
  const fe = sy.runtime().frontends.get('db')!;
  t.equal(fe.counters.bin, 200_000, 'bytes in counted');
  t.equal(fe.counters.bout, 'got 200000 bytes'.length, 'bytes out counted');
});

t.test('TCP echo of a large payload with backpressure', async (t) => {
  const srv = await tcpServer(); // pipes back
  const sy = await start(config([frontendConfig('db', 'tcp', 'pg')], [backendConfig('pg', 'tcp', [srv.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const payload = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
  const out = await exchange(sy.frontendAddress('db').port, payload);
  t.equal(out.length, payload.length);
  t.ok(out.equals(payload), 'same bytes back, in order');
});

t.test('TCP retry: a refused connect goes to the next server', async (t) => {
  const srv = await tcpServer();
  const dead = await deadPort();
  const sy = await start(config([frontendConfig('db', 'tcp', 'pg')], [backendConfig('pg', 'tcp', [`127.0.0.1:${dead}`, srv.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  for (let i = 0; i < 3; i++) {
    const out = await exchange(sy.frontendAddress('db').port, `hello ${i}`);
    t.equal(out.toString(), `hello ${i}`);
  }
  t.ok(sy.runtime().backends.get('pg')!.counters.econ >= 1, 'connect errors counted');
});

t.test('TCP: no server available closes the connection', async (t) => {
  const dead = await deadPort();
  const sy = await start(config([frontendConfig('db', 'tcp', 'pg')], [backendConfig('pg', 'tcp', [`127.0.0.1:${dead}`], { retries: 1 })]));
  t.teardown(() => sy.stop(100));
  const out = await exchange(sy.frontendAddress('db').port, 'hello').catch(() => Buffer.alloc(0));
  t.equal(out.length, 0);
});

t.test('TCP: bytes and a FIN sent while waiting for a server slot reach the server in order', async (t) => {
  // The session reads at accept and holds what comes before its server connection exists
  // (TcpSession.holdEarly): here it waits in the queue behind a connection holding the only slot.
  const srv = await tcpServer(); // pipes back, ends after our FIN
  const be = backendConfig('pg', 'tcp', [srv.address], { maxQueue: 5, queueTimeoutMs: 30_000 });
  const sy = await start(config([frontendConfig('db', 'tcp', 'pg')], [{ ...be, servers: be.servers.map((s) => ({ ...s, maxconn: 1 })) }]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const port = sy.frontendAddress('db').port;
  const first = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  first.on('error', () => {});
  first.write('holding');
  await new Promise<void>((r) => first.once('data', () => r())); // the first holds the slot
  const backend = sy.runtime().backends.get('pg')!;
  const second = exchange(port, Buffer.concat([Buffer.from('queued '), Buffer.alloc(100_000, 9), Buffer.from(' end')]));
  const deadline = Date.now() + 20_000;
  while (backend.overload.waiting === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.equal(backend.overload.waiting, 1, 'the second connection waits in the queue');
  first.end();
  const out = await second;
  t.equal(out.length, 'queued '.length + 100_000 + ' end'.length, 'every byte arrived once');
  t.equal(out.subarray(0, 7).toString(), 'queued ', 'in order: the first bytes first');
  t.equal(out.subarray(out.length - 4).toString(), ' end', 'and the last last');
});

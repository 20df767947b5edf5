import t from 'tap';
import { connect, type Socket } from 'node:net';
import { backendConfig, config, frontendConfig, httpServer, start, tcpServer } from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';
import { healthConfig } from './support/backend-config.js';
import { parseProxyHeader, PROXY_OK, type ProxyAddresses } from '../src/proxy-protocol/parse.js';
import { proxyHeader } from '../src/proxy-protocol/header.js';
import type { FrontendConfig } from '../src/config/types.js';

// accept_proxy and send_proxy through the running proxy: the carried client address is the
// session's client address (X-Forwarded-For, per-source limits), a connection without a valid
// header never reaches a server and is counted, and what we send to servers carries the
// original client's endpoints on every connection, never another client's.

const GET = 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n';

/** Write `chunks` (with a pause between them), collect until the peer closes. */
function converse(port: number, chunks: (string | Buffer)[], gapMs = 0): Promise<{ data: string; closedBy: 'end' | 'reset' }> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let data = '';
    let how: 'end' | 'reset' = 'end';
    s.on('data', (d) => {
      data += d.toString('latin1');
    });
    s.on('error', () => {
      how = 'reset';
    });
    s.on('close', () => resolve({ data, closedBy: how }));
    let i = 0;
    const next = (): void => {
      if (i >= chunks.length || s.destroyed) return;
      s.write(chunks[i++]!);
      if (gapMs > 0) setTimeout(next, gapMs);
      else next();
    };
    next();
  });
}

function proxiedFrontend(over: Partial<FrontendConfig> = {}): FrontendConfig {
  return frontendConfig('edge', 'http', 'app', { acceptProxy: true, trustedSources: [], ...over });
}

t.test('HTTP: v1 and v2 headers set the client address; X-Forwarded-For carries it', async (t) => {
  const app = await httpServer('app', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
  const sy = await start(config([proxiedFrontend()], [backendConfig('app', 'http', [app.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await app.close();
  });
  const port = sy.frontendAddress('edge').port;
  const a = await converse(port, [`PROXY TCP4 203.0.113.7 10.0.0.1 40000 443\r\n${GET}`]);
  t.match(a.data, /^HTTP\/1\.1 200[^]*\r\n\r\n203\.0\.113\.7$/, 'v1: the server sees the carried address');
  const v2 = proxyHeader(2, { srcIp: '2001:db8::42', srcPort: 1234, dstIp: '2001:db8::1', dstPort: 443 });
  const b = await converse(port, [v2, GET]);
  t.match(b.data, /\r\n\r\n2001:db8::42$/, 'v2 over IPv6');
  // The header split over many small writes is reassembled.
  const header = Buffer.from('PROXY TCP4 198.51.100.9 10.0.0.1 1 2\r\n');
  const pieces = [...header].map((byte) => Buffer.from([byte]));
  const c = await converse(port, [...pieces, GET], 2);
  t.match(c.data, /\r\n\r\n198\.51\.100\.9$/, 'a header trickled byte by byte');
  t.equal(sy.runtime().frontends.get('edge')!.proxyRefused, 0);
});

t.test('missing, malformed, slow and untrusted headers: refused, counted, never forwarded', async (t) => {
  const app = await httpServer('app');
  const sy = await start(
    config(
      [
        proxiedFrontend({ timeouts: { clientMs: 30000, httpRequestMs: 300, keepAliveMs: 60000, handshakeMs: 10_000 } }),
        frontendConfig('strict', 'http', 'app', { acceptProxy: true, trustedSources: ['10.0.0.0/8'] }),
      ],
      [backendConfig('app', 'http', [app.address])],
    ),
  );
  t.teardown(async () => {
    await sy.stop(100);
    await app.close();
  });
  const port = sy.frontendAddress('edge').port;
  const edge = sy.runtime().frontends.get('edge')!;
  const bad = [
    GET, // no header at all
    `PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n${GET}`,
    `PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n${GET}`,
    `PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n${GET}`,
    Buffer.concat([Buffer.from('\r\n\r\n\0\r\nQUIT\n'), Buffer.from([0x21, 0x11, 0x00, 0x04, 1, 2, 3, 4]), Buffer.from(GET)]),
    `PROXY ${'A'.repeat(200)}\r\n`,
  ];
  for (const input of bad) {
    const r = await converse(port, [input]);
    t.equal(r.data, '', `nothing answered to ${JSON.stringify(input.toString().slice(0, 30))}`);
  }
  t.equal(edge.proxyRefused, bad.length, 'each counted');
  // Slow: half a header, then silence past the frontend's request timeout.
  const slow = await converse(port, ['PROXY TCP4 1.2.3.4 ']);
  t.equal(slow.data, '');
  t.equal(edge.proxyRefused, bad.length + 1, 'the slow one counted too');
  // Untrusted: 127.0.0.1 is not in 10.0.0.0/8.
  const strict = await converse(sy.frontendAddress('strict').port, [`PROXY TCP4 10.1.1.1 10.0.0.1 1 2\r\n${GET}`]);
  t.equal(strict.data, '', 'a header from an untrusted peer is refused');
  t.equal(sy.runtime().frontends.get('strict')!.proxyRefused, 1);
  t.equal(app.seen.length, 0, 'the server never saw a request');
  // And the frontend still serves good connections.
  const good = await converse(port, [`PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n${GET}`]);
  t.match(good.data, /^HTTP\/1\.1 200/);
  // The CSV shows them in `dcon` (connections denied at accept).
  t.equal(edge.counters.stot, 1, 'only the good connection became a session');
});

t.test('per-source limits count the carried address, not the proxy in front', async (t) => {
  const app = await httpServer('app');
  const sy = await start(config([proxiedFrontend({ maxconnPerSource: 1 })], [backendConfig('app', 'http', [app.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await app.close();
  });
  const port = sy.frontendAddress('edge').port;
  // Hold one connection from 203.0.113.1 open.
  const held: Socket = connect({ port, host: '127.0.0.1' });
  held.on('error', () => {});
  held.write('PROXY TCP4 203.0.113.1 10.0.0.1 1 2\r\n');
  t.teardown(() => held.destroy());
  await waitFor('the first connection admitted', () => (sy.runtime().frontends.get('edge')!.counters.scur === 1 ? true : undefined));
  const same = await converse(port, [`PROXY TCP4 203.0.113.1 10.0.0.1 3 2\r\n${GET}`]);
  t.equal(same.data, '', 'a second connection from the same carried address is refused');
  const other = await converse(port, [`PROXY TCP4 203.0.113.2 10.0.0.1 3 2\r\n${GET}`]);
  t.match(other.data, /^HTTP\/1\.1 200/, 'another carried address is admitted, through the same peer');
});

/** A TCP server that reads one PROXY header per connection, then answers with what it said. */
async function proxyAwareServer(mode: 'http' | 'tcp') {
  const headers: (ProxyAddresses | null)[] = [];
  const srv = await tcpServer((s) => {
    let buf = Buffer.alloc(0);
    let got = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!got) {
        const r = parseProxyHeader(buf);
        if (r.status !== PROXY_OK) return;
        got = true;
        headers.push(r.addresses);
        buf = buf.subarray(r.length);
      }
      if (mode === 'tcp') {
        if (buf.length > 0) s.write(buf);
        buf = Buffer.alloc(0);
        return;
      }
      // One answer per complete request head; keep-alive.
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        buf = buf.subarray(end + 4);
        const a = headers[headers.length - 1];
        const body = a === null || a === undefined ? 'local' : `${a.srcIp}:${a.srcPort}`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      }
    });
  });
  return { ...srv, headers };
}

t.test('TCP: accept_proxy in, send_proxy v2 out: the server gets the original endpoints', async (t) => {
  const srv = await proxyAwareServer('tcp');
  const sy = await start(
    config(
      [frontendConfig('db', 'tcp', 'pg', { acceptProxy: true, trustedSources: ['127.0.0.0/8'] })],
      [backendConfig('pg', 'tcp', [srv.address], { sendProxy: 2 })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const r = await new Promise<string>((resolve) => {
    const s = connect({ port: sy.frontendAddress('db').port, host: '127.0.0.1' });
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
      if (out === 'hello') s.end();
    });
    s.on('close', () => resolve(out));
    s.write(Buffer.concat([proxyHeader(1, { srcIp: '192.0.2.10', srcPort: 4321, dstIp: '192.0.2.1', dstPort: 5432 }), Buffer.from('hello')]));
  });
  t.equal(r, 'hello', 'bytes after the header flow both ways');
  t.same(srv.headers[0], { family: 'tcp4', srcIp: '192.0.2.10', srcPort: 4321, dstIp: '192.0.2.1', dstPort: 5432 }, 'v1 in, v2 out, same endpoints');
});

t.test('HTTP send_proxy v1: every server connection speaks for its own client only', async (t) => {
  const srv = await proxyAwareServer('http');
  const sy = await start(config([frontendConfig('web', 'http', 'app')], [backendConfig('app', 'http', [srv.address], { sendProxy: 1 })]));
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  const port = sy.frontendAddress('web').port;
  // Two clients from different loopback addresses, each with two keep-alive requests.
  const run = (localAddress: string) =>
    new Promise<string[]>((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1', localAddress });
      const bodies: string[] = [];
      let buf = '';
      s.on('data', (d) => {
        buf += d.toString();
        const m = /^HTTP\/1\.1 200 OK\r\n[^]*?\r\n\r\n/.exec(buf);
        if (m === null) return;
        const len = Number(/content-length: (\d+)/i.exec(m[0])?.[1]);
        if (buf.length < m[0].length + len) return;
        bodies.push(buf.slice(m[0].length, m[0].length + len));
        buf = buf.slice(m[0].length + len);
        if (bodies.length === 2) s.end();
        else s.write('GET /2 HTTP/1.1\r\nHost: t\r\n\r\n');
      });
      s.on('error', reject);
      s.on('close', () => resolve(bodies));
      s.write('GET /1 HTTP/1.1\r\nHost: t\r\n\r\n');
    });
  const a = await run('127.0.0.2');
  const b = await run('127.0.0.3');
  t.equal(a.length, 2);
  t.ok(
    a.every((x) => x.startsWith('127.0.0.2:')),
    `client A's requests carry A (${a.join(', ')})`,
  );
  t.ok(
    b.every((x) => x.startsWith('127.0.0.3:')),
    `client B's requests carry B, never A's pooled connection (${b.join(', ')})`,
  );
  t.ok(
    srv.headers.every((h) => h !== null && h.family === 'tcp4' && h.dstPort === port),
    'the destination is the frontend the client reached',
  );
});

t.test('check_send_proxy: health checks send PROXY UNKNOWN (v1) / LOCAL (v2)', async (t) => {
  const srv = await proxyAwareServer('tcp');
  const health = healthConfig({ type: 'tcp', intervalMs: 100, fastIntervalMs: 100, downIntervalMs: 100, timeoutMs: 100, rise: 1, fall: 1 });
  const { startSwitchyard } = await import('../src/switchyard.js');
  const { HealthChecker } = await import('../src/health/checker.js');
  const { quietLogger } = await import('./support/proxy-harness.js');
  const sy = await startSwitchyard({
    config: config([frontendConfig('db', 'tcp', 'pg')], [backendConfig('pg', 'tcp', [srv.address], { sendProxy: 2, health })]),
    logger: quietLogger,
    watch: false,
    components: async () => [new HealthChecker({ log: quietLogger })],
  });
  t.teardown(async () => {
    await sy.stop(100);
    await srv.close();
  });
  await waitFor('a check with a PROXY header', () => (srv.headers.length > 0 ? true : undefined));
  t.equal(srv.headers[0], null, 'a v2 LOCAL header: the check speaks for the balancer');
});

t.test('the stream-reads fallback (SWITCHYARD_STREAM_READS=1) hands the socket over just as well', async (t) => {
  const app = await httpServer('app', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
  const srv = await proxyAwareServer('tcp');
  process.env.SWITCHYARD_STREAM_READS = '1';
  let sy;
  try {
    sy = await start(
      config(
        [proxiedFrontend(), frontendConfig('db', 'tcp', 'pg', { acceptProxy: true, trustedSources: [] })],
        [backendConfig('app', 'http', [app.address]), backendConfig('pg', 'tcp', [srv.address], { sendProxy: 1 })],
      ),
    );
  } finally {
    delete process.env.SWITCHYARD_STREAM_READS;
  }
  t.teardown(async () => {
    await sy.stop(100);
    await app.close();
    await srv.close();
  });
  const header = Buffer.from('PROXY TCP4 198.51.100.77 10.0.0.1 1 2\r\n');
  const r = await converse(sy.frontendAddress('edge').port, [header.subarray(0, 10), header.subarray(10), GET], 5);
  t.match(r.data, /\r\n\r\n198\.51\.100\.77$/, 'HTTP: one request, read once');
  const echoed = await new Promise<string>((resolve) => {
    const s = connect({ port: sy.frontendAddress('db').port, host: '127.0.0.1' });
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
      if (out.length >= 6) s.end();
    });
    s.on('close', () => resolve(out));
    s.write(Buffer.concat([proxyHeader(2, { srcIp: '192.0.2.5', srcPort: 9, dstIp: '192.0.2.1', dstPort: 1 }), Buffer.from('abc')]));
    setTimeout(() => s.write('def'), 20);
  });
  t.equal(echoed, 'abcdef', 'TCP: bytes after the header, not doubled');
  t.equal(srv.headers[0]?.srcIp, '192.0.2.5');
});

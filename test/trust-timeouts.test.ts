// Timeouts that blame the right side (HAProxy's model): `timeouts.client` is the client's
// inactivity while we wait on it (its request body, its reading of our response) and ends in
// 408 or a close, never counted against the server; `timeouts.server` is the server's
// inactivity while we wait on it, from the last byte sent to or received from it, and ends in
// 504, counted against the server. A slow but steady upload of any length goes through.
import t from 'tap';
import { connect } from 'node:net';
import type { Config } from '../src/config/types.js';
import { HealthChecker } from '../src/health/checker.js';
import { startSwitchyard } from '../src/switchyard.js';
import { backendConfig, config, frontendConfig, httpServer, quietLogger, tcpServer } from './support/proxy-harness.js';
import { exchange, until } from './support/hostile.js';

/** switchyard with its health component, so that passive detection watches the traffic. */
const start = (cfg: Config) =>
  startSwitchyard({ config: cfg, logger: quietLogger, watch: false, components: async () => [new HealthChecker({ log: quietLogger })] });

const passive = { consecutiveFailures: 1, baseEjectionMs: 30000, maxEjectionMs: 300000, maxEjectedPercent: 100 };

/**
 * A client timeout (800 ms) shorter than the server's (1500 ms): a stalled client must be
 * timed out as the client's fault, never blamed on the server.
 */
const clientBeforeServer = (serverAddress: string): Config =>
  config(
    [frontendConfig('web', 'http', 'api', { timeouts: { clientMs: 800, httpRequestMs: 10000, keepAliveMs: 5000, handshakeMs: 10_000 } })],
    [backendConfig('api', 'http', [serverAddress], { passive, timeouts: { connectMs: 2000, serverMs: 1500, serverKeepAliveMs: 4000 } })],
  );

t.test('a steady slow upload (a byte every 400 ms, 4 s in all) goes through timeouts.server 2s and timeouts.client 1s', async (t) => {
  const srv = await httpServer('echo', (_req, res, body) => res.end(`got ${body}`));
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api', { timeouts: { clientMs: 1000, httpRequestMs: 10000, keepAliveMs: 5000, handshakeMs: 10_000 } })],
      [backendConfig('api', 'http', [srv.address], { passive, timeouts: { connectMs: 2000, serverMs: 2000, serverKeepAliveMs: 4000 } })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const body = '0123456789';
  const ex = await exchange(sy.frontendAddress('web').port, ['POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n', ...body.split('')], {
    gapMs: 400,
    idleMs: 8000,
    end: true,
  });
  t.match(ex.data, /^HTTP\/1\.1 200 /, `200, not a timeout (${JSON.stringify(ex.data.slice(0, 40))})`);
  t.match(ex.data, /got 0123456789$/, 'the whole body reached the server');
  const server = sy.runtime().backends.get('api')!.servers[0]!;
  t.equal(server.counters.eresp, 0, 'no response error counted');
  t.equal(server.ejected, false, 'the server was not ejected');
});

t.test('a client that stalls in its body gets 408 after timeouts.client; the server is not blamed', async (t) => {
  const srv = await httpServer('a');
  const sy = await start(clientBeforeServer(srv.address));
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const ex = await exchange(sy.frontendAddress('web').port, 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n012', { idleMs: 10000 });
  t.match(ex.data, /^HTTP\/1\.1 408 /, `408 Request Timeout (${JSON.stringify(ex.data.slice(0, 40))})`);
  t.ok(ex.closed, 'and the connection closed');
  const backend = sy.runtime().backends.get('api')!;
  const server = backend.servers[0]!;
  t.equal(server.counters.eresp, 0, 'no response error counted against the server');
  t.equal(server.consecutiveFailures, 0, 'no passive failure');
  t.equal(server.ejected, false, 'the server stays in');
  t.equal(sy.runtime().frontends.get('web')!.counters.cliAbrt, 1, 'counted as a client abort');
  t.equal(srv.seen.length, 0, 'the server never got a complete request');
});

t.test('a client that stops reading a large response is closed after timeouts.client; the server is not blamed', async (t) => {
  const chunk = Buffer.alloc(1 << 20, 120);
  const srv = await tcpServer((s) => {
    s.once('data', () => {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${64 * chunk.length}\r\n\r\n`);
      let n = 0;
      const more = (): void => {
        while (n < 64) {
          n++;
          if (!s.write(chunk)) {
            s.once('drain', more);
            return;
          }
        }
      };
      more();
    });
    s.on('error', () => {});
  });
  const sy = await start(clientBeforeServer(srv.address));
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  // Connect, send the request, never read: the kernel buffers fill and the proxy must wait on us.
  const client = connect(sy.frontendAddress('web').port, '127.0.0.1');
  client.on('error', () => {});
  client.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  client.pause();
  let closed = false;
  client.on('close', () => {
    closed = true;
  });
  t.teardown(() => client.destroy());
  const frontend = sy.runtime().frontends.get('web')!;
  const server = sy.runtime().backends.get('api')!.servers[0]!;
  t.ok(await until(() => frontend.counters.cliAbrt > 0 || server.counters.eresp > 0, 15000), 'one side timed out');
  t.equal(frontend.counters.cliAbrt, 1, 'the client timed out');
  t.equal(server.counters.eresp, 0, 'nothing counted against the server');
  t.equal(server.ejected, false, 'the server stays in');
  client.resume();
  t.ok(await until(() => closed, 10000), 'the client connection is closed (the response had started)');
});

t.test('a server that goes quiet after the request gets 504 after timeouts.server, counted against it', async (t) => {
  const srv = await tcpServer((s) => {
    s.on('data', () => {});
    s.on('error', () => {});
  });
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api', { timeouts: { clientMs: 30000, httpRequestMs: 10000, keepAliveMs: 5000, handshakeMs: 10_000 } })],
      [backendConfig('api', 'http', [srv.address], { passive, retries: 0, timeouts: { connectMs: 2000, serverMs: 600, serverKeepAliveMs: 4000 } })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const ex = await exchange(sy.frontendAddress('web').port, 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc', { idleMs: 10000, end: true });
  t.match(ex.data, /^HTTP\/1\.1 504 /, '504 Gateway Timeout');
  const server = sy.runtime().backends.get('api')!.servers[0]!;
  t.equal(server.counters.eresp, 1, 'counted against the server');
  t.equal(server.ejected, true, 'passive detection saw it (consecutive_failures 1)');
  t.equal(sy.runtime().frontends.get('web')!.counters.cliAbrt, 0, 'not a client abort');
});

t.test('a server that stops reading a request body gets 504 after timeouts.server, though the client keeps sending', async (t) => {
  // The server reads the head, then nothing: once the kernel buffers are full our writes
  // queue, and the wait is on the server.
  const srv = await tcpServer((s) => {
    s.once('data', () => s.pause());
    s.on('error', () => {});
  });
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api', { timeouts: { clientMs: 30000, httpRequestMs: 10000, keepAliveMs: 5000, handshakeMs: 10_000 } })],
      [backendConfig('api', 'http', [srv.address], { retries: 0, timeouts: { connectMs: 2000, serverMs: 800, serverKeepAliveMs: 4000 } })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const size = 64 << 20;
  const client = connect(sy.frontendAddress('web').port, '127.0.0.1');
  let data = '';
  let closed = false;
  client.on('data', (d) => {
    data += d.toString('latin1');
  });
  client.on('error', () => {});
  client.on('close', () => {
    closed = true;
  });
  t.teardown(() => client.destroy());
  client.write(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
  const piece = Buffer.alloc(1 << 16, 97);
  let sent = 0;
  const pump = (): void => {
    while (sent < size && !closed) {
      sent += piece.length;
      if (!client.write(piece)) {
        client.once('drain', pump);
        return;
      }
    }
  };
  pump();
  t.ok(await until(() => closed || data.length > 0, 15000), 'answered');
  t.match(data, /^HTTP\/1\.1 504 /, `504 (${JSON.stringify(data.slice(0, 30))})`);
  t.equal(sy.runtime().backends.get('api')!.servers[0]!.counters.eresp, 1, 'counted against the server');
});

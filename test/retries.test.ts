// Retries (HAProxy `retry-on`): a request refused at connect (nothing sent) goes to another
// server whatever its method, body included; after bytes went out, a re-send needs the
// keyword (`empty-response`, `junk-response`, `response-timeout`, a status) and a body of at
// most MAX_REPLAY_BODY; every re-send counts against `retries`.
import t from 'tap';
import { connect, type Socket } from 'node:net';
import type { RetryOn } from '../src/config/types.js';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/errors.js';
import { MAX_REPLAY_BODY } from '../src/balancer/http-exchange.js';
import { backendConfig, config, deadPort, frontendConfig, httpServer, start, tcpServer } from './support/proxy-harness.js';
import { exchange, until } from './support/hostile.js';

const retryOn = (over: Partial<RetryOn>): RetryOn => ({
  connFailure: true,
  emptyResponse: false,
  junkResponse: false,
  responseTimeout: false,
  statuses: [],
  ...over,
});

/** A raw server that reads each request whole (Content-Length bodies) and answers `reply(n)`. */
async function rawServer(reply: (n: number, s: Socket) => void) {
  let n = 0;
  const bodies: number[] = [];
  const srv = await tcpServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const m = /content-length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
        const len = m === null ? 0 : Number(m[1]);
        if (buf.length < end + 4 + len) return;
        bodies.push(len);
        buf = buf.subarray(end + 4 + len);
        reply(++n, s);
      }
    });
    s.on('error', () => {});
  });
  return { ...srv, bodies, count: () => n };
}

t.test('conn-failure: a POST with its body goes to another server, counted as one retry', async (t) => {
  const good = await httpServer('good', (_req, res, body) => res.end(`good got ${body.length}`));
  const dead = await deadPort();
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [`127.0.0.1:${dead}`, good.address], { retries: 1 })]));
  t.teardown(async () => {
    await sy.stop(200);
    await good.close();
  });
  const port = sy.frontendAddress('web').port;
  // The head and a small body in one write; then a body far larger than anything held.
  for (const size of [5, 3 << 20]) {
    const body = 'x'.repeat(size);
    const ex = await exchange(port, `POST /op HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n${body}`, { idleMs: 3000, end: true });
    t.match(ex.data, /^HTTP\/1\.1 200 /, `${size} bytes: 200 from the other server (${JSON.stringify(ex.data.slice(0, 30))})`);
    t.match(ex.data, new RegExp(`good got ${size}$`), `${size} bytes: the whole body arrived`);
  }
  const backend = sy.runtime().backends.get('api')!;
  t.ok(backend.counters.wretr >= 1, `retries counted (${backend.counters.wretr})`);
  t.equal(good.seen.filter((r) => r.method === 'POST').length, 2, 'each POST delivered once');
});

t.test('conn-failure left out of retry_on: a refused connection is a 502', async (t) => {
  const good = await httpServer('good');
  const dead = await deadPort();
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api')],
      [backendConfig('api', 'http', [`127.0.0.1:${dead}`, good.address], { retries: 2, retryOn: retryOn({ connFailure: false, statuses: [503] }) })],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await good.close();
  });
  const ex = await exchange(sy.frontendAddress('web').port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 1000, end: true });
  t.match(ex.data, /^HTTP\/1\.1 502 /);
});

t.test('retry_on 503: the 503 is dropped unseen and the request (body included) goes to another server', async (t) => {
  const busy = await rawServer((_n, s) => s.write('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy'));
  const good = await rawServer((_n, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood'));
  t.teardown(async () => {
    await busy.close();
    await good.close();
  });
  const run = async (on: RetryOn, size: number) => {
    const sy = await start(
      config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [busy.address, good.address], { retries: 2, retryOn: on })]),
    );
    const ex = await exchange(sy.frontendAddress('web').port, `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n${'y'.repeat(size)}`, {
      idleMs: 1000,
      end: true,
    });
    const wretr = sy.runtime().backends.get('api')!.counters.wretr;
    await sy.stop(200);
    return { data: ex.data, wretr };
  };
  const plain = await run(retryOn({}), 10);
  t.match(plain.data, /^HTTP\/1\.1 503 [^]*busy$/, 'without 503 in retry_on the client gets the 503');
  const good0 = good.count();
  const retried = await run(retryOn({ statuses: [503] }), 10);
  t.match(retried.data, /^HTTP\/1\.1 200 [^]*good$/, 'with it, the answer of the other server');
  t.notMatch(retried.data, /busy/, 'nothing of the 503 reached the client');
  t.equal(good.count() - good0, 1, 'the other server got it once');
  t.equal(good.bodies.at(-1), 10, 'with its body');
  t.equal(retried.wretr, 1, 'one retry counted');
  const big = await run(retryOn({ statuses: [503] }), MAX_REPLAY_BODY + 1);
  t.match(big.data, /^HTTP\/1\.1 503 /, `a body over ${MAX_REPLAY_BODY} bytes is not sent twice: the client gets the 503`);
});

t.test('junk-response and response-timeout re-send to another server when asked', async (t) => {
  const junk = await rawServer((_n, s) => s.write('SPEAKING SMTP\r\n\r\n'));
  const silent = await rawServer(() => {});
  const good = await rawServer((_n, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood'));
  t.teardown(async () => {
    await junk.close();
    await silent.close();
    await good.close();
  });
  for (const [name, bad, on] of [
    ['junk-response', junk, retryOn({ junkResponse: true })],
    ['response-timeout', silent, retryOn({ responseTimeout: true })],
  ] as const) {
    for (const enabled of [false, true]) {
      const sy = await start(
        config(
          [frontendConfig('web', 'http', 'api')],
          [
            backendConfig('api', 'http', [bad.address, good.address], {
              retries: 1,
              retryOn: enabled ? on : retryOn({}),
              timeouts: { connectMs: 1000, serverMs: 400, serverKeepAliveMs: 4000 },
            }),
          ],
        ),
      );
      const ex = await exchange(sy.frontendAddress('web').port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 2000, end: true });
      await sy.stop(200);
      if (enabled) t.match(ex.data, /^HTTP\/1\.1 200 [^]*good$/, `${name}: answered by the other server`);
      else t.match(ex.data, name === 'junk-response' ? /^HTTP\/1\.1 502 / : /^HTTP\/1\.1 504 /, `${name} not asked for: the error`);
    }
  }
});

t.test('retry_on in the config file: keywords and statuses, errors with their path', async (t) => {
  const yaml = (v: string) => `frontends:\n  w: { bind: 1, backend: b }\nbackends:\n  b:\n    servers: [{ address: "127.0.0.1:1" }]\n${v}`;
  t.same(parseConfig(yaml(''), null).backends[0]!.retryOn, retryOn({}), 'default: conn-failure only');
  t.same(
    parseConfig(yaml('    retry_on: [conn-failure, empty-response, 503, 503, 502]\n'), null).backends[0]!.retryOn,
    retryOn({ emptyResponse: true, statuses: [503, 502] }),
  );
  for (const bad of ['[418]', '[sometimes]']) {
    const error = (() => {
      try {
        parseConfig(yaml(`    retry_on: ${bad}\n`), 'f.yaml');
      } catch (e) {
        return e as ConfigError;
      }
      return null;
    })();
    t.type(error, ConfigError, `${bad} is refused`);
    t.equal(error?.issues[0]?.path, 'backends.b.retry_on[0]', `${bad}: the error names the key path`);
  }
});

t.test('a 100 Continue closes the re-send window: the body that follows is streamed, not kept (and nothing breaks)', async (t) => {
  // PUT is idempotent and `retries` is left: before the interim answer its body would be kept
  // for a re-send. After it, the request will not be sent again, so the body goes straight on.
  const srv = await tcpServer((s) => {
    let buf = Buffer.alloc(0);
    let continued = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      if (!continued) {
        continued = true;
        s.write('HTTP/1.1 100 Continue\r\n\r\n');
      }
      if (buf.length >= end + 4 + 5) s.write('HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngot all');
    });
    s.on('error', () => {});
  });
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [srv.address], { retries: 2 })]));
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });
  const client = connect(sy.frontendAddress('web').port, '127.0.0.1');
  let data = '';
  client.setEncoding('latin1');
  client.on('data', (d: string) => {
    data += d;
  });
  client.on('error', () => {});
  client.write('PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
  t.ok(await until(() => data.includes('100 Continue'), 10000), 'the 100 Continue was relayed');
  client.write('hello');
  t.ok(await until(() => data.endsWith('got all'), 10000), `the 200 came after the body (${JSON.stringify(data)})`);
  client.destroy();
});

// Nothing of a broken request reaches a server: a chunked body already invalid in the bytes
// that came with the head gets 400 before a server is picked (HAProxy refuses it the same
// way); one that turns bad later cuts the exchange, and that server connection is closed
// before the message completes, never reused, and the error is counted.
import t from 'tap';
import { backendConfig, config, frontendConfig, start } from './support/proxy-harness.js';
import { exchange, strictBackend, until } from './support/hostile.js';

const HEAD = 'POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';

t.test('a chunked body broken in the bytes that came with the head: 400 and nothing forwarded, even with a pooled connection ready', async (t) => {
  const be = await strictBackend();
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [be.address])]));
  t.teardown(async () => {
    await sy.stop(200);
    await be.close();
  });
  const port = sy.frontendAddress('web').port;
  // A warm pooled server connection: a head would go out on it at once.
  t.match((await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 500, end: true })).data, /^HTTP\/1\.1 200 /, 'warm-up');
  const bytes = be.bytes;
  const broken = [
    ['a size that is not hex', 'zz\r\nhello\r\n0\r\n\r\n'],
    ['data longer than its size', '2\r\nhello\r\n0\r\n\r\n'],
    ['a control character in an extension', '5;a\x01\r\nhello\r\n0\r\n\r\n'],
    ['a forbidden trailer', '5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n'],
  ];
  for (const [name, body] of broken) {
    const ex = await exchange(port, HEAD + body!, { idleMs: 2000 });
    t.match(ex.data, /^HTTP\/1\.1 400 /, `${name}: 400`);
    t.ok(ex.closed, `${name}: closed`);
  }
  t.equal(be.bytes, bytes, 'not a byte forwarded');
  t.equal(be.incomplete, 0, 'no message cut short at the server');
  t.equal(be.connections, 1, 'the pooled connection stayed (nothing was written into it)');
  t.equal(sy.runtime().frontends.get('web')!.counters.ereq, broken.length, 'each counted as a request error');
  t.equal(sy.runtime().backends.get('api')!.counters.reqTot, 1, 'only the warm-up counted on the backend');
});

t.test('a chunked body that turns bad later: 400, the server connection is closed before the message ends and not reused', async (t) => {
  const be = await strictBackend();
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [be.address])]));
  t.teardown(async () => {
    await sy.stop(200);
    await be.close();
  });
  const port = sy.frontendAddress('web').port;
  const ex = await exchange(port, [HEAD + '5\r\nhello\r\n', 'zz\r\nworld\r\n0\r\n\r\n'], { gapMs: 300, idleMs: 2000 });
  t.match(ex.data, /^HTTP\/1\.1 400 /, '400');
  t.ok(ex.closed, 'the client connection closed');
  t.equal(be.connections, 1, 'the head and the good chunk had gone to a server');
  t.ok(await until(() => be.sockets.size === 0, 5000), 'that server connection is closed');
  t.equal(be.requests.length, 0, 'the server never got a complete request');
  t.equal(be.incomplete, 1, 'it saw the message cut short');
  t.equal(sy.runtime().frontends.get('web')!.counters.ereq, 1, 'counted as a request error');
  const ok = await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 500, end: true });
  t.match(ok.data, /^HTTP\/1\.1 200 /, 'the next request is served');
  t.equal(be.connections, 2, 'over a new server connection');
});

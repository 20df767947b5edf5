// Slow and numerous clients: slowloris gets 408, idle keep-alive connections close on time,
// maxconn and maxconn_per_source refuse extra connections with a log line and serve again
// when others close, and 2000 idle connections neither stop service nor cost much memory
// (measured in a child process whose open-files limit is raised as needed).
import t from 'tap';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { startSwitchyard } from '../src/switchyard.js';
import { backendConfig, config, frontendConfig, httpServer, start } from './support/proxy-harness.js';
import { captureLogger, exchange, sleep, strictBackend, until } from './support/hostile.js';

t.test('slowloris: one header byte every 200 ms with http_request 1000 ms gets 408 and is closed', async (t) => {
  const be = await strictBackend();
  const sy = await start(
    config(
      [frontendConfig('web', 'http', 'api', { timeouts: { clientMs: 30000, httpRequestMs: 1000, keepAliveMs: 5000, handshakeMs: 10_000 } })],
      [backendConfig('api', 'http', [be.address])],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await be.close();
  });
  const port = sy.frontendAddress('web').port;
  const req = 'GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: 1\r\n\r\n';
  // The whole head takes ~10 s to trickle in: a proxy that does not cut it answers 200 (or nothing
  // within the client's 15 s wait), so the 408 says the request timeout did it; and not early.
  const ex = await exchange(port, req.split(''), { gapMs: 200, idleMs: 15_000 });
  t.match(ex.data, /^HTTP\/1\.1 408 /, '408');
  t.ok(ex.closed, 'closed');
  t.ok(ex.ms >= 950, `closed after ${ex.ms} ms (httpRequestMs 1000)`);
  t.equal(be.bytes, 0, 'nothing forwarded');
  // The clock runs from the first byte of the head, not from the last one: a keep-alive
  // connection that starts a second request slowly is cut the same way.
  // A clock restarted at each byte would never fire: the slow request would complete and get a 200.
  // Its first byte goes out 200 ms in, so the 408 comes no sooner than 200 + 1000 ms (less slack).
  const ex2 = await exchange(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', ...req.split('')], { gapMs: 200, idleMs: 15_000 });
  t.match(ex2.data, /^HTTP\/1\.1 200 [^]*HTTP\/1\.1 408 /, 'first request served, slow second one 408');
  t.ok(ex2.closed && ex2.ms >= 1150, `closed after ${ex2.ms} ms`);
});

t.test('idle connections: keep-alive closes after keepAliveMs; a silent new connection after http_request', async (t) => {
  // Two frontends, each with only ONE short timeout and the others a minute long: a close within
  // the client's 10 s wait was made by that timeout (no upper bound on time needed to tell them
  // apart), and the lower bound says it did not fire early.
  const be = await strictBackend();
  const sy = await start(
    config(
      [
        frontendConfig('keepalive', 'http', 'api', { timeouts: { clientMs: 60_000, httpRequestMs: 60_000, keepAliveMs: 400, handshakeMs: 10_000 } }),
        frontendConfig('request', 'http', 'api', { timeouts: { clientMs: 60_000, httpRequestMs: 800, keepAliveMs: 60_000, handshakeMs: 10_000 } }),
      ],
      [backendConfig('api', 'http', [be.address])],
    ),
  );
  t.teardown(async () => {
    await sy.stop(200);
    await be.close();
  });
  const ex = await exchange(sy.frontendAddress('keepalive').port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 10_000 });
  t.match(ex.data, /^HTTP\/1\.1 200 /);
  t.ok(ex.closed, 'closed by the proxy: keepAliveMs is the only short timeout');
  t.ok(ex.ms - ex.firstMs >= 350, `closed ${ex.ms - ex.firstMs} ms after the response (keepAliveMs 400)`);
  // A new connection that sends nothing is on the request clock, not the keep-alive one: with
  // keepAliveMs a minute it would stay open past the 10 s wait and fail `closed`.
  const silent = await exchange(sy.frontendAddress('request').port, [], { idleMs: 10_000 });
  t.equal(silent.data, '', 'a connection that never sent anything is closed quietly');
  t.ok(silent.closed && silent.ms >= 750, `after ${silent.ms} ms (httpRequestMs 800)`);
});

/** Open a connection and resolve once connected; `closed` tells whether the proxy dropped it. */
function hold(port: number, localAddress = '127.0.0.1'): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    let closed = false;
    socket.on('close', () => {
      closed = true;
    });
    socket.on('error', () => {});
    socket.on('connect', () => resolve({ socket, closed: () => closed }));
  });
}

t.test('maxconn and maxconn_per_source refuse extra connections, log it, and serve again after others close', async (t) => {
  const srv = await httpServer('a');
  const { logger, lines } = captureLogger();
  const sy = await startSwitchyard({
    config: config(
      [frontendConfig('capped', 'http', 'api', { maxconn: 3 }), frontendConfig('persrc', 'http', 'api', { maxconnPerSource: 2 })],
      [backendConfig('api', 'http', [srv.address])],
    ),
    logger,
    watch: false,
  });
  t.teardown(async () => {
    await sy.stop(200);
    await srv.close();
  });

  const capped = sy.frontendAddress('capped').port;
  const held = await Promise.all([hold(capped), hold(capped), hold(capped)]);
  const extra = await hold(capped);
  // 5 s: half the 10 s http_request timeout, so a close seen here is the refusal, not that timeout.
  t.ok(await until(extra.closed, 5000), 'the 4th connection is closed by the proxy');
  t.ok(
    held.every((h) => !h.closed()),
    'the first 3 stay open',
  );
  const refusal = lines.find((l) => typeof l.msg === 'string' && l.msg.includes('maxconn 3 reached'));
  t.ok(refusal, 'a log line says why');
  t.equal(refusal?.level, 40, 'at warn level');
  t.equal(refusal?.frontend, 'capped', 'naming the frontend');
  t.equal(sy.runtime().frontends.get('capped')!.counters.dreq, 1, 'counted as denied');
  held[0].socket.destroy();
  // Polled, not a fixed sleep: the proxy has seen the close once its count is back to 2.
  t.ok(await until(() => sy.runtime().frontends.get('capped')!.counters.scur === 2, 10_000), 'the closed one is no longer counted');
  const res = await request(`http://127.0.0.1:${capped}/`);
  t.equal(res.statusCode, 200, 'serves again once one closed');
  await res.body.text();

  const persrc = sy.frontendAddress('persrc').port;
  const mine = await Promise.all([hold(persrc), hold(persrc)]);
  const third = await hold(persrc);
  t.ok(await until(third.closed, 5000), 'a 3rd connection from 127.0.0.1 is closed');
  const other = await hold(persrc, '127.0.0.2');
  await sleep(100);
  t.notOk(other.closed(), 'another source address is still accepted');
  other.socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const got = await new Promise<string>((r) => {
    let d = '';
    other.socket.on('data', (c) => {
      d += c.toString();
    });
    other.socket.on('close', () => r(d));
  });
  t.match(got, /^HTTP\/1\.1 200 /, 'and served');
  await sleep(1100); // the refusal log is rate-limited to one line a second
  const again = await hold(persrc);
  t.ok(await until(again.closed, 5000), 'still refused while both are held');
  t.ok(
    await until(() => lines.some((l) => typeof l.msg === 'string' && l.msg.includes('maxconn_per_source 2 reached for 127.0.0.1')), 10_000),
    'per-source log line',
  );
  for (const m of mine) m.socket.destroy();
  t.ok(await until(() => !sy.runtime().frontends.get('persrc')!.perSource.has('127.0.0.1'), 10_000), 'its connections are no longer counted');
  const res2 = await request(`http://127.0.0.1:${persrc}/`);
  t.equal(res2.statusCode, 200, 'serves that source again once its connections closed');
  await res2.body.text();
  for (const h of held) h.socket.destroy();
});

// 2000 idle connections. Everything runs in child processes so that (1) the proxy process's
// memory is the proxy's alone and (2) each process can raise its soft open-files limit: 2000
// sockets need more than Debian's default soft `ulimit -n` of 1024, and Node cannot call
// setrlimit itself, so each child is started through `sh -c 'ulimit -Sn N; exec node ...'`
// (up to the hard limit) and reports the limit it got.
const ROOT = new URL('..', import.meta.url).pathname;

/** The proxy from source (tap's TypeScript loader), driven over stdin: `mem` prints its memory. */
const PROXY = `
import { createInterface } from 'node:readline';
const [root, cfg] = process.argv.slice(1);
const { startSwitchyard } = await import(root + 'src/switchyard.ts');
const { pino } = await import('pino');
const sy = await startSwitchyard({ config: JSON.parse(cfg), logger: pino({ level: 'silent' }), watch: false });
console.log('port ' + sy.frontendAddress('web').port);
const counters = () => sy.runtime().frontends.get('web').counters;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'mem') return;
  gc(); gc();
  const m = process.memoryUsage();
  console.log('mem ' + JSON.stringify({ heapUsed: m.heapUsed, rss: m.rss, scur: counters().scur }));
}).on('close', () => sy.stop(200).then(() => process.exit(0)));
`;

// The clients (and the backend). Each client sends one request, reads the answer and stays
// open (keep-alive), or connects and sends nothing (silent).
const CLIENTS = `
import { connect } from 'node:net';
import { createServer } from 'node:http';
const [port, n, mode] = process.argv.slice(1).map((x, i) => i < 2 ? Number(x) : x);
if (mode === 'backend') {
  const s = createServer((req, res) => res.end('ok'));
  s.keepAliveTimeout = 120000;
  s.listen(0, '127.0.0.1', () => console.log('port ' + s.address().port));
} else {
  const sockets = [];
  let ok = 0;
  const one = () => new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', (e) => { console.log('error ' + e.message); resolve(); });
    sockets.push(s);
    if (mode === 'silent') { s.on('connect', resolve); return; }
    s.once('data', (d) => { if (/^HTTP\\/1\\.1 200/.test(d.toString())) ok++; resolve(); });
    s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');
  });
  for (let i = 0; i < n; i += 50) await Promise.all(Array.from({ length: Math.min(50, n - i) }, one));
  console.log('ready ' + ok);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
`;

interface Child {
  lines: string[];
  next: (prefix: string, ms: number) => Promise<string>;
  send: (line: string) => void;
  stop: () => void;
}

/** node `nodeArgs` under `ulimit -Sn nofile`; its first line is `nofile N`, the limit it got. */
function child(nodeArgs: string[], nofile: number): Child {
  const script = 'ulimit -Sn "$1" 2>/dev/null; shift; echo "nofile $(ulimit -Sn)"; exec "$@"';
  const p = spawn('sh', ['-c', script, 'sh', String(nofile), process.execPath, ...nodeArgs], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  let taken = 0;
  p.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) !== -1) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return {
    lines,
    // The next line (after those already taken) starting with `prefix`.
    next: async (prefix, ms) => {
      const find = () => lines.findIndex((l, k) => k >= taken && l.startsWith(prefix));
      await until(() => find() !== -1, ms);
      const k = find();
      if (k === -1) return '';
      taken = k + 1;
      return lines[k]!;
    },
    send: (line) => {
      p.stdin.write(`${line}\n`);
    },
    stop: () => {
      p.stdin.end();
      setTimeout(() => p.kill('SIGKILL'), 3000).unref();
    },
  };
}

const limitOf = async (c: Child) => Number((await c.next('nofile', 5000)).split(' ')[1]);

t.test('2000 idle connections do not stop service; memory per idle connection', async (t) => {
  const N = 2000;
  const backend = child(['--input-type=module', '-e', CLIENTS, '0', '0', 'backend'], 4096);
  t.teardown(() => backend.stop());
  await limitOf(backend);
  const bePort = Number((await backend.next('port', 5000)).split(' ')[1]);
  const cfg = config(
    [frontendConfig('web', 'http', 'api', { timeouts: { clientMs: 120000, httpRequestMs: 120000, keepAliveMs: 120000, handshakeMs: 10_000 } })],
    [backendConfig('api', 'http', [`127.0.0.1:${bePort}`])],
  );
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const want = N + 1000;
  const proxy = child([...loader, '--expose-gc', '--input-type=module', '-e', PROXY, ROOT, JSON.stringify(cfg)], want);
  t.teardown(() => proxy.stop());
  const proxyLimit = await limitOf(proxy);
  t.ok(proxyLimit >= want, `the proxy process may open ${want} files (soft limit ${proxyLimit}; raise the hard limit if this fails)`);
  const port = Number((await proxy.next('port', 60000)).split(' ')[1]);
  t.ok(port > 0, 'the proxy started');
  const mem = async () => {
    proxy.send('mem');
    return JSON.parse((await proxy.next('mem', 10000)).slice(4)) as { heapUsed: number; rss: number; scur: number };
  };
  for (const mode of ['silent', 'keep-alive'] as const) {
    // warm up: code paths compiled, pools and the sweeper started
    for (let i = 0; i < 20; i++) await (await request(`http://127.0.0.1:${port}/`, { reset: true })).body.text();
    await sleep(100);
    const before = await mem();
    const clients = child(['--input-type=module', '-e', CLIENTS, String(port), String(N), mode], N + 500);
    t.ok((await limitOf(clients)) >= N + 500, 'the client process may open enough files');
    const ready = await clients.next('ready', 60000);
    t.equal(
      ready,
      mode === 'silent' ? 'ready 0' : `ready ${N}`,
      `${N} ${mode} connections open (${mode === 'silent' ? 'never sent a byte' : 'each served once'})`,
    );
    // The client's connect completes in the kernel before the proxy accepts: wait for the accepts.
    let after = await mem();
    for (let k = 0; k < 50 && after.scur < N; k++) {
      await sleep(200);
      after = await mem();
    }
    t.ok(after.scur >= N && after.scur <= N + 10, `the frontend counts them (${after.scur})`);
    const heap = (after.heapUsed - before.heapUsed) / N;
    const rss = (after.rss - before.rss) / N;
    t.comment(
      `memory per idle ${mode} connection: heapUsed ${(heap / 1024).toFixed(2)} KiB, rss ${(rss / 1024).toFixed(2)} KiB (N=${N}, proxy process only, after gc)`,
    );
    t.ok(heap < 16 * 1024, `heap per connection under 16 KiB (${Math.round(heap)} B)`);
    // Service continues: a normal request on a new connection is answered while they are held.
    const t0 = Date.now();
    const res = await request(`http://127.0.0.1:${port}/`, { reset: true, headersTimeout: 10000 });
    await res.body.text();
    t.equal(res.statusCode, 200, `a normal request still gets 200 (in ${Date.now() - t0} ms)`);
    t.equal((await mem()).scur >= N, true, 'with the idle connections still open');
    clients.stop();
    let left = await mem();
    for (let k = 0; k < 50 && left.scur > 10; k++) {
      await sleep(200);
      left = await mem();
    }
    t.ok(left.scur <= 10, `all closed when the clients leave (${left.scur})`);
  }
});

// Hot swap: a watched config file, POST /api/reload, PUT /api/backends/NAME/strategy and SIGHUP
// each apply a new config atomically. Under a steady load of keep-alive requests and an open
// TCP session, several reloads change strategy, weights, servers and sticky settings: no request
// fails, no client connection is closed, servers that stay keep their state and counters, a
// removed server finishes what it carries, and an invalid config changes nothing.
// Waits are for progress (requests served, a generation applied), never fixed delays asserted on.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request, Agent } from 'undici';
import { loadConfigFile } from '../src/config/load.js';
import { startStats } from '../src/stats/listener.js';
import { startSwitchyard, type Switchyard } from '../src/switchyard.js';
import { serverConfigs } from './support/backend-config.js';
import { backendConfig, config, deadPort, frontendConfig, httpServer, start, tcpServer } from './support/proxy-harness.js';

const AUTH = `Basic ${Buffer.from('admin:secret').toString('base64')}`;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A logger whose lines the test can read. */
function captureLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        lines.push(JSON.parse(line));
      },
    },
  );
  return { logger, lines };
}

/** The config file: YAML, as a user writes it. */
function yaml(o: { api: string; strategy: string; sticky?: string; echo: string }): string {
  return `stats:
  bind: 127.0.0.1:0
  auth: { username: admin, password: secret }
frontends:
  web: { mode: http, bind: 127.0.0.1:0, backend: api }
  raw: { mode: tcp, bind: 127.0.0.1:0, backend: echo }
backends:
  api:
    mode: http
    strategy: ${o.strategy}
${o.sticky ? `    sticky: ${o.sticky}\n` : ''}    health: { type: none }
    retries: 0
    servers: [ ${o.api} ]
  echo:
    mode: tcp
    health: { type: none }
    servers: [ ${o.echo} ]
`;
}

t.test('hot swap under load: file watch, admin API and reload, zero failed requests, no connection dropped', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  // c answers after 20 ms; while `hold` is set it keeps requests until released, so some are
  // surely in flight on it when it is removed.
  let hold = false;
  const held: import('node:http').ServerResponse[] = [];
  const c = await httpServer('c', (_req, res) => {
    if (hold) held.push(res);
    else setTimeout(() => res.end('c'), 20);
  });
  const e1 = await tcpServer();
  const e2 = await tcpServer();
  const dir = mkdtempSync(join(tmpdir(), 'sy-reload-'));
  const file = join(dir, 'switchyard.yaml');
  const server = (name: string, address: string, weight = 1) => `{ name: ${name}, address: ${address}, weight: ${weight} }`;
  const write = (text: string) => writeFileSync(file, text);
  /** As editors and ConfigMaps do: a new file renamed over the old one. */
  const replace = (text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  write(yaml({ api: `${server('a', a.address)}, ${server('b', b.address)}`, strategy: 'round-robin', echo: server('e1', e1.address) }));

  const { logger, lines } = captureLogger();
  let stats: Awaited<ReturnType<typeof startStats>> | null = null;
  const sy = await startSwitchyard({
    config: await loadConfigFile(file),
    loadConfig: loadConfigFile,
    logger,
    components: async (s) => [(stats = await startStats(s, s.runtime().config.stats, logger))],
  });
  const statsPort = () => stats!.address().port;
  const admin = async (method: 'POST' | 'PUT', path: string, body: unknown = {}) => {
    const res = await request(`http://127.0.0.1:${statsPort()}${path}`, {
      method,
      headers: { authorization: AUTH, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  };
  const api = () => sy.runtime().backends.get('api')!;
  const generation = () => sy.runtime().generation;

  // The load: 12 workers over 8 keep-alive connections, for the whole test.
  const agent = new Agent({ connections: 8, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 });
  let disconnects = 0;
  agent.on('disconnect', () => {
    disconnects++;
  });
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const seen = new Set<string>();
  const url = `http://127.0.0.1:${sy.frontendAddress('web').port}/`;
  const worker = async () => {
    while (!stop) {
      try {
        const res = await request(url, { dispatcher: agent });
        const text = await res.body.text();
        if (res.statusCode === 200) {
          ok++;
          seen.add(text);
        } else failures.push(`${res.statusCode} ${text}`);
      } catch (error) {
        failures.push(String(error));
      }
    }
  };
  const workers = Array.from({ length: 12 }, worker);
  const served = async (n: number) => {
    const from = ok;
    await until(`${n} more requests`, () => ok >= from + n);
  };

  // And one TCP session, echoing a numbered line every few ms, across every reload.
  const tcp: Socket = connect(sy.frontendAddress('raw').port, '127.0.0.1');
  let echoed = '';
  let sent = 0;
  let tcpClosed = false;
  tcp.on('data', (d) => {
    echoed += d.toString();
  });
  tcp.on('close', () => {
    tcpClosed = true;
  });
  const pinger = (async () => {
    while (!stop) {
      tcp.write(`${sent++}\n`);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  t.teardown(async () => {
    stop = true;
    tcp.destroy();
    await agent.close();
    await sy.stop(200);
    for (const s of [a, b, c, e1, e2]) await s.close();
  });

  await served(200);
  const s1 = api().serverByName('a')!;
  const s2 = api().serverByName('b')!;
  const g0 = generation();

  // 1. The file is replaced (rename over it) with new weights: the watcher applies it.
  replace(yaml({ api: `${server('a', a.address, 1)}, ${server('b', b.address, 3)}`, strategy: 'round-robin', echo: server('e1', e1.address) }));
  await until('the watcher to apply the new weights', () => s2.weight === 3);
  t.equal(generation(), g0 + 1, 'one save, one reload');
  await served(200);

  // 2. The admin API: the strategy, live; and b drained (a state that must survive reloads).
  t.same(await admin('PUT', '/api/backends/api/strategy', { strategy: 'least-connections' }), {
    status: 200,
    body: { backend: 'api', strategy: 'least-connections' },
  });
  t.equal((await admin('POST', '/api/backends/api/servers/b/state', { state: 'drain' })).status, 200);
  await served(200);
  const s1Count = s1.counters.reqTot;

  // 3. Written in place this time: server c added, strategy random, sticky cookies on, and the
  // TCP backend's only server replaced while the session is open on it. POST /api/reload applies
  // it (the watcher, seeing the same text afterwards, does not apply it twice).
  write(
    yaml({
      api: `${server('a', a.address)}, ${server('b', b.address, 3)}, ${server('c', c.address, 2)}`,
      strategy: 'random',
      sticky: '{ type: cookie, name: SY }',
      echo: server('e2', e2.address),
    }),
  );
  const r3 = await admin('POST', '/api/reload');
  t.equal(r3.status, 200);
  t.equal(r3.body.ok, true);
  t.equal(api().strategyName, 'random', 'the file names the strategy now');
  await until('c to get traffic', () => seen.has('c'));
  await served(300);
  t.equal(api().serverByName('a'), s1, 'a server that stays is the same object');
  t.ok(s1.counters.reqTot > s1Count, 'and its counters went on counting');
  t.equal(s2.state, 'DRAIN', 'b is still DRAIN after two reloads');
  const gAfter3 = generation();

  // 4. c removed while requests are in flight on it: they finish (no failure below).
  const s3 = api().serverByName('c')!;
  hold = true;
  await until('requests held on c', () => held.length >= 2);
  replace(
    yaml({
      api: `${server('a', a.address)}, ${server('b', b.address)}`,
      strategy: 'ip-hash',
      sticky: '{ type: cookie, name: SY }',
      echo: server('e2', e2.address),
    }),
  );
  const r4 = await admin('POST', '/api/reload');
  t.equal(r4.body.ok, true);
  t.equal(s3.retired, true, 'c is out of the config');
  // Requests picked for c just before the swap may still be on their way to it: once they
  // arrive, every request c counts as active is one its server holds.
  await until('the requests sent to c before the swap to reach it', () => held.length === s3.active);
  t.ok(s3.active >= 2, `${s3.active} requests in flight on c after its removal`);
  await served(200);
  t.equal(s3.active, held.length, 'and no new request went to c');
  hold = false;
  for (const res of held.splice(0)) res.end('c');
  await until('c to finish what it carried', () => s3.active === 0);
  await served(100);

  // 5. Reloads in quick succession, each while the load runs: weights and strategies change.
  const strategies = ['round-robin', 'least-connections', 'random', 'ip-hash', 'round-robin', 'random'];
  for (const [i, strategy] of strategies.entries()) {
    replace(
      yaml({
        api: `${server('a', a.address, 1 + i)}, ${server('b', b.address, 6 - i)}`,
        strategy,
        sticky: '{ type: cookie, name: SY }',
        echo: server('e2', e2.address),
      }),
    );
    const r = await admin('POST', '/api/reload');
    t.equal(r.body.ok, true, `quick reload ${i + 1}: ${strategy}, weights ${1 + i}:${6 - i}`);
    await served(50);
  }
  t.equal(api().serverByName('a'), s1, 'still the same server object for a');

  // 6. Invalid configs: rejected with their errors (API answer, log, stats), nothing changes.
  const before = sy.runtime();
  write(yaml({ api: `${server('a', 'not-an-address')}`, strategy: 'ip-hash', echo: server('e2', e2.address) }));
  const r5 = await admin('POST', '/api/reload');
  t.equal(r5.status, 422);
  t.match((r5.body.errors as string[]).join('\n'), /backends\.api\.servers\[0\]\.address: expected host:port/);
  write(yaml({ api: `${server('a', a.address)}`, strategy: './nowhere.js', echo: server('e2', e2.address) }));
  const r6 = await admin('POST', '/api/reload');
  t.match((r6.body.errors as string[]).join('\n'), /backends\.api\.strategy: strategy module not found/);
  t.equal(sy.runtime(), before, 'the running config stays');
  t.same(
    api().servers.map((s) => s.name),
    ['a', 'b'],
  );
  t.ok(
    lines.some((l) => l.msg === 'reload rejected; the running config stays' && JSON.stringify(l.errors).includes('servers[0].address')),
    'the errors are logged',
  );
  await served(200);

  stop = true;
  await Promise.all([...workers, pinger]);
  await until('the last echoes', () => echoed.split('\n').length - 1 === sent);
  t.same(failures, [], `no request failed (${ok} served across ${generation() - g0} reloads)`);
  t.equal(disconnects, 0, 'no client keep-alive connection was closed');
  t.ok(generation() >= gAfter3 + 1);
  t.equal(tcpClosed, false, 'the TCP session is still open');
  t.equal(echoed, Array.from({ length: sent }, (_, i) => `${i}\n`).join(''), `every one of ${sent} lines echoed, in order`);
  t.ok(e1.received.length > 0 && e2.received.length === 0, 'the session stayed on e1, removed from the config two reloads ago');
});

t.test('the watcher follows a file replaced again and again; a bad save is rejected and the next good one applied', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const dir = mkdtempSync(join(tmpdir(), 'sy-watch-'));
  const file = join(dir, 'switchyard.yaml');
  const text = (address: string) =>
    yaml({ api: `{ name: only, address: ${address} }`, strategy: 'round-robin', echo: `{ name: e, address: ${a.address} }` }).replace(/ {2}auth: .*\n/, '');
  writeFileSync(file, text(a.address));
  const { logger, lines } = captureLogger();
  const sy = await startSwitchyard({ config: await loadConfigFile(file), loadConfig: loadConfigFile, logger });
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
    await b.close();
  });
  const get = async () => await (await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`)).body.text();
  const address = () => sy.runtime().backends.get('api')!.servers[0]!.address;
  for (let i = 0; i < 3; i++) {
    for (const target of [b, a]) {
      writeFileSync(`${file}.new`, text(target.address));
      renameSync(`${file}.new`, file);
      await until(`replace ${i}: ${target.address}`, () => address() === target.address);
      t.equal(await get(), target === a ? 'a' : 'b');
    }
  }
  const g = sy.runtime().generation;
  writeFileSync(file, 'backends: [ this is not : valid');
  await until('the rejection', () => sy.lastReload()?.ok === false);
  t.ok(
    lines.some((l) => l.msg === 'reload rejected; the running config stays'),
    'logged',
  );
  t.equal(sy.runtime().generation, g, 'nothing applied');
  t.equal(await get(), 'a', 'still serving the running config');
  writeFileSync(file, text(b.address));
  await until('the fixed file', () => address() === b.address);
  t.equal(sy.lastReload()?.ok, true);
});

t.test('SIGHUP reloads the config file (the CLI, in its own process)', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const port = await deadPort();
  // The CLI is given a symlink; the file it points to lives in another folder, out of the
  // watcher's sight (it watches the symlink's folder), so only SIGHUP can apply an edit.
  const real = join(mkdtempSync(join(tmpdir(), 'sy-sighup-real-')), 'real.yaml');
  const file = join(mkdtempSync(join(tmpdir(), 'sy-sighup-')), 'switchyard.yaml');
  const write = (address: string) =>
    writeFileSync(
      real,
      `stats: { bind: 127.0.0.1:0 }
frontends:
  web: { mode: http, bind: 127.0.0.1:${port}, backend: api }
backends:
  api: { mode: http, health: { type: none }, servers: [ { name: s, address: ${address} } ] }
`,
    );
  write(a.address);
  symlinkSync(real, file);
  // The CLI from source, under the same TypeScript loader as this test.
  const child = spawn(process.execPath, [...process.execArgv, new URL('../src/main.ts', import.meta.url).pathname, '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await a.close();
    await b.close();
  });
  const get = async () => {
    try {
      const res = await request(`http://127.0.0.1:${port}/`, { reset: true });
      return await res.body.text();
    } catch {
      return '';
    }
  };
  await until('the CLI to serve', async () => (await get()) === 'a', 60_000);
  write(b.address);
  await new Promise((r) => setTimeout(r, 400)); // longer than the watcher's debounce: it saw nothing
  t.equal(await get(), 'a', 'an edit the watcher cannot see changes nothing by itself');
  child.kill('SIGHUP');
  await until('the new server to answer', async () => (await get()) === 'b').catch((error: Error) => {
    throw new Error(`${error.message}; the CLI said:\n${output}`);
  });
  t.match(output, /config applied/);
  // An invalid file on SIGHUP: rejected, logged, the running config stays.
  writeFileSync(real, 'frontends: 12\n');
  child.kill('SIGHUP');
  await until('the rejection in the log', () => /reload rejected; the running config stays/.test(output));
  t.equal(await get(), 'b', 'still serving');
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.equal(code, 0, 'and it stops cleanly');
});

t.test('a config that fails to build leaves the running one serving', async (t) => {
  const a = await httpServer('a');
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
  });
  const before = sy.runtime();
  const bad = config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address], { strategy: './does-not-exist.js' })]);
  const r = await sy.apply(bad);
  t.equal(r.ok, false);
  t.match(r.errors.join('\n'), /backends\.api\.strategy/);
  t.equal(sy.runtime(), before, 'the runtime was not swapped');
  const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`);
  t.equal(await res.body.text(), 'a');
});

t.test('a user factory that throws half-way through a reload: every backend is put back as it was', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const dir = mkdtempSync(join(tmpdir(), 'sy-factory-'));
  writeFileSync(
    join(dir, 'picky.mjs'),
    `export default (options) => {
    if (!options.ok) throw new Error('strategy_options.ok is required');
    let s = []; return { update(e) { s = e; }, pick() { return s[0] ?? null; } };
  };`,
  );
  const fe = [frontendConfig('one', 'http', 'first'), frontendConfig('two', 'http', 'second')];
  const v1 = config(fe, [backendConfig('first', 'http', [a.address, b.address]), backendConfig('second', 'http', [a.address])]);
  const sy = await start(v1);
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
    await b.close();
  });
  const first = sy.runtime().backends.get('first')!;
  const [sa, sb] = [first.servers[0]!, first.servers[1]!];
  sb.counters.reqTot = 7; // something only the same object would remember
  await sy.setStrategy('first', 'least-connections'); // an admin API choice, running now
  // `first` loses server b and changes strategy; then `second`'s factory throws.
  const v2 = config(fe, [
    backendConfig('first', 'http', [a.address], { strategy: 'random' }),
    backendConfig('second', 'http', [a.address], { strategy: join(dir, 'picky.mjs'), strategyOptions: {} }),
  ]);
  const r = await sy.apply(v2);
  t.equal(r.ok, false);
  t.match(r.errors.join('\n'), /strategy_options\.ok is required/);
  t.equal(first.strategyName, 'least-connections', 'first: the strategy that was running is back (the admin choice stands)');
  t.ok(first.servers.length === 2 && first.servers[0] === sa && first.servers[1] === sb, 'first: the same two server objects');
  t.equal(sb.retired, false, 'b serves again');
  t.equal(sb.counters.reqTot, 7, 'with its counters');
  const got = new Set<string>();
  for (let i = 0; i < 4; i++) got.add(await (await request(`http://127.0.0.1:${sy.frontendAddress('one').port}/`)).body.text());
  t.same([...got].sort(), ['a', 'b'], 'balanced over both again');
});

t.test('a config whose new bind fails is rolled back: servers and strategy stay as they were', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const busy = await httpServer('busy');
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [backendConfig('api', 'http', [a.address])]));
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
    await b.close();
    await busy.close();
  });
  const server = sy.runtime().backends.get('api')!.servers[0];
  const next = config(
    [frontendConfig('web', 'http', 'api'), frontendConfig('extra', 'http', 'api', { bind: { host: '127.0.0.1', port: busy.port } })],
    [
      backendConfig('api', 'http', [b.address], {
        servers: serverConfigs([{ name: 'other', address: b.address }]),
      }),
    ],
  );
  const r = await sy.apply(next);
  t.equal(r.ok, false);
  t.match(r.errors.join('\n'), /cannot listen/);
  t.equal(sy.runtime().backends.get('api')!.servers[0], server, 'the same server object is back');
  for (let i = 0; i < 3; i++) {
    const res = await request(`http://127.0.0.1:${sy.frontendAddress('web').port}/`);
    t.equal(await res.body.text(), 'a', 'still served by the old server list');
  }
});

t.test('applies run one at a time; a reload asked for during a reload runs after it', async (t) => {
  const a = await httpServer('a');
  const b = await httpServer('b');
  const dir = mkdtempSync(join(tmpdir(), 'sy-queue-'));
  const file = join(dir, 'switchyard.yaml');
  const text = (address: string) => `stats: { bind: 127.0.0.1:0 }
frontends: { web: { mode: http, bind: 127.0.0.1:0, backend: api } }
backends: { api: { mode: http, health: { type: none }, servers: [ { name: s, address: ${address} } ] } }
`;
  writeFileSync(file, text(a.address));
  const sy: Switchyard = await startSwitchyard({
    config: await loadConfigFile(file),
    loadConfig: loadConfigFile,
    logger: pino({ level: 'silent' }),
    watch: false,
  });
  t.teardown(async () => {
    await sy.stop(100);
    await a.close();
    await b.close();
  });
  const first = sy.reload(); // reads the file as it is now (a)
  writeFileSync(file, text(b.address)); // changed while the first reload runs
  const second = sy.reload();
  t.not(first, second, 'the second call does not just share the running attempt');
  await first;
  t.equal((await second).ok, true);
  t.equal(sy.runtime().backends.get('api')!.servers[0]!.address, b.address, 'the later change is applied');
});

t.test('a server moved to a new address by a reload: a connection busy during the reload is not pooled', async (t) => {
  // The request in flight at the reload holds a connection to the old address; pooling it
  // afterwards would keep the server's traffic on the old address for as long as it is reused.
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  let arrived!: () => void;
  const slowArrived = new Promise<void>((r) => {
    arrived = r;
  });
  const a = await httpServer('a', (req, res) => {
    if (req.url === '/slow') {
      arrived();
      void held.then(() => res.end('a slow'));
      return;
    }
    res.end('a');
  });
  const b = await httpServer('b');
  // Both configs name the one server s1: the same identity, a new address.
  const server = (address: string) => backendConfig('api', 'http', [address]);
  const sy = await start(config([frontendConfig('web', 'http', 'api')], [server(a.address)]));
  t.teardown(async () => {
    release();
    await sy.stop(100);
    await a.close();
    await b.close();
  });
  const port = sy.frontendAddress('web').port;
  const agent = new Agent({ connections: 1 });
  t.teardown(() => agent.close());
  const slow = request(`http://127.0.0.1:${port}/slow`, { dispatcher: agent }).then((r) => r.body.text());
  await slowArrived;
  const r = await sy.apply(config([frontendConfig('web', 'http', 'api')], [server(b.address)]));
  t.equal(r.ok, true, 'the reload moving s to b applied');
  release();
  t.equal(await slow, 'a slow', 'the request in flight finished on the old address');
  const after: string[] = [];
  for (let i = 0; i < 5; i++) after.push(await (await request(`http://127.0.0.1:${port}/`, { dispatcher: agent })).body.text());
  t.same(after, ['b', 'b', 'b', 'b', 'b'], 'every later request goes to the new address');
});

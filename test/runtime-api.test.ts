import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { backendConfig, config, frontendConfig, httpServer, quietLogger, tcpServer } from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';
import { healthConfig } from './support/backend-config.js';
import { startSwitchyard, type Switchyard } from '../src/switchyard.js';
import { startStats } from '../src/stats/listener.js';
import { startRuntimeApi, type RuntimeApiListener } from '../src/runtime-api/listener.js';
import { HealthChecker } from '../src/health/checker.js';
import type { BackendConfig, Config, RuntimeSocketConfig } from '../src/config/types.js';

// The runtime API driven by Debian's socat, as operators' scripts drive HAProxy's
// (`echo "show stat" | socat stdio UNIX-CONNECT:/run/haproxy.sock`): HAProxy 2.6's answers and
// error lines, levels by socket, the interactive prompt, changes that land in the same model as
// the HTTP admin API (and so on the page's JSON), and a drain under load that fails nothing.

const dir = mkdtempSync(join(tmpdir(), 'sy-runtime-api-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function socketConfig(over: Partial<RuntimeSocketConfig> = {}): RuntimeSocketConfig {
  return { path: join(dir, `admin-${++n}.sock`), address: null, mode: 0o600, user: null, group: null, level: 'admin', timeoutMs: 10_000, ...over };
}

interface Fixture {
  sy: Switchyard;
  admin: string;
  user: string;
  operator: string;
  statsBase: string;
  api: RuntimeApiListener;
}

async function startFixture(t: Test, backends: BackendConfig[], extra: Partial<Config> = {}): Promise<Fixture> {
  const sockets = [
    socketConfig(),
    socketConfig({ level: 'user' }),
    socketConfig({ level: 'operator' }),
    socketConfig({ path: null, address: { host: '127.0.0.1', port: 0 } }),
  ];
  const cfg = config([frontendConfig('web', backends[0]!.mode, backends[0]!.name)], backends, extra);
  let api: RuntimeApiListener | null = null;
  let statsBase = '';
  const sy = await startSwitchyard({
    config: { ...cfg, stats: { ...cfg.stats, sockets } },
    logger: quietLogger,
    watch: false,
    components: async (s) => {
      const stats = await startStats(s, s.runtime().config.stats, quietLogger);
      statsBase = `http://127.0.0.1:${stats.address().port}`;
      api = await startRuntimeApi(s, sockets, quietLogger, { rates: stats.tracker, version: '9.9.9' });
      return [new HealthChecker({ log: quietLogger }), stats, api];
    },
  });
  t.teardown(() => sy.stop(100));
  const paths = api!.addresses();
  return { sy, admin: paths[0]!, user: paths[1]!, operator: paths[2]!, statsBase, api: api! };
}

/** `echo "$input" | socat -t 5 stdio UNIX-CONNECT:$path` (or TCP:host:port). */
function socat(target: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const address = target.startsWith('/') ? `UNIX-CONNECT:${target}` : `TCP:${target}`;
    const p = spawn('socat', ['-t', '5', 'stdio', address]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`socat exited ${code}: ${err}`))));
    p.stdin.end(input);
  });
}

async function statsJson(
  f: Fixture,
): Promise<{ backends: { name: string; servers: { name: string; state: string; weight: number; address: string; source: string }[] }[] }> {
  const res = await request(`${f.statsBase}/api/stats`);
  return (await res.body.json()) as never;
}

t.test('show info, show backend, show servers state, help and unknown commands', async (t) => {
  const app = await httpServer('app');
  t.teardown(() => app.close());
  const f = await startFixture(t, [backendConfig('app', 'http', [app.address, app.address])]);
  const info = await socat(f.admin, 'show info\n');
  t.match(info, /^Name: switchyard\nVersion: 9\.9\.9\n/, 'HAProxy field names, our values');
  t.match(info, new RegExp(`\\nPid: ${process.pid}\\n`));
  t.ok(info.endsWith('\n\n'), 'the answer ends with the empty line that marks its end');
  const typed = await socat(f.admin, 'show info typed\n');
  t.match(typed, /^0\.Name\.1:POS:str:switchyard\n1\.Version\.1:POS:str:9\.9\.9\n/m, 'typed: position.name.process:tags:type:value');
  t.equal(await socat(f.admin, 'show backend\n'), '# name\napp\n\n');
  const state = await socat(f.admin, 'show servers state\n');
  const lines = state.split('\n');
  t.equal(lines[0], '1', 'format version 1');
  t.equal(
    lines[1],
    '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port',
  );
  t.match(
    lines[2],
    new RegExp(`^2 app 1 s1 127\\.0\\.0\\.1 2 0 1 1 \\d+ 1 0 2 0 0 0 0 - ${app.port} - 0 0 - - 0$`),
    'as HAProxy 2.6.12 prints an unchecked server',
  );
  t.equal(lines[2]!.split(' ').length, 25, '25 fields');
  t.match(await socat(f.admin, 'show servers state nope\n'), /^Can't find backend\.\n/);
  const help = await socat(f.admin, 'help\n');
  t.match(help, /^The following commands are valid at this level:\n/);
  t.match(help, /\n {2}set server <bk>\/<srv> \[opts\] +: change a server's state, weight or address\n/);
  t.match(help, /\n {2}quit +: disconnect\n\n$/);
  t.match(await socat(f.admin, '\n'), /^Unknown command\. Please enter one of the following commands only:\n/, 'an empty line: the full usage, as HAProxy');
  t.match(await socat(f.admin, 'frobnicate\n'), /^Unknown command, but maybe one of the following ones is a better match:\n/);
  t.match(
    await socat(f.admin, 'show frobs\n'),
    /^Unknown command, but maybe one of the following ones is a better match:\n {2}show backend /,
    'a partial match lists the commands under it',
  );
  t.equal(await socat(f.admin, 'set server app state drain\n'), "Require 'backend/server'.\n\n");
  t.equal(await socat(f.admin, 'set server nope/s1 state drain\n'), 'No such backend.\n\n');
  t.equal(await socat(f.admin, 'set server app/nope state drain\n'), 'No such server.\n\n');
  t.equal(await socat(f.admin, 'set server app/s1 state sleepy\n'), "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n");
  t.equal(await socat(f.admin, 'set server app/s1 weight 300\n'), 'Absolute weight can only be between 0 and 256 inclusive.\n\n');
  t.equal(await socat(f.admin, 'set server app/s1 weight 3x\n'), 'Trailing garbage in weight string\n');
  t.equal(await socat(f.admin, 'set server app/s1 frob\n'), 'usage: set server <backend>/<server> addr | health | state | weight\n\n');
  t.equal(await socat(f.admin, 'enable health app/s1\n'), 'Health check was not configured on this server, cannot enable.\n\n');
  t.equal(await socat(f.admin, 'show cli level\n'), 'admin\n\n');
});

t.test('levels by socket: user reads, operator sees sessions, only admin changes', async (t) => {
  const app = await httpServer('app');
  t.teardown(() => app.close());
  const f = await startFixture(t, [backendConfig('app', 'http', [app.address])]);
  t.equal(await socat(f.user, 'show cli level\n'), 'user\n\n');
  t.match(await socat(f.user, 'show stat\n'), /^# pxname,svname,/);
  t.equal(await socat(f.user, 'set server app/s1 state maint\n'), 'Permission denied\n\n');
  t.equal(await socat(f.user, 'show sess\n'), 'Permission denied\n\n');
  t.equal(await socat(f.operator, 'show sess\n'), '\n', 'operator may list sessions (none open)');
  t.equal(await socat(f.operator, 'disable server app/s1\n'), 'Permission denied\n\n');
  t.equal(f.sy.runtime().backends.get('app')!.servers[0]!.state, 'UP', 'nothing changed');
  t.equal(statSync(f.admin).mode & 0o777, 0o600, 'the Unix socket has the configured mode');
  t.match(await socat(f.api.addresses()[3]!, 'show backend\n'), /^# name\napp\n/, 'the loopback TCP socket answers too');
});

t.test('show stat is byte-identical to /stats;csv, with HAProxy filters and typed output', async (t) => {
  const app = await httpServer('app');
  t.teardown(() => app.close());
  const f = await startFixture(t, [backendConfig('app', 'http', [app.address, app.address])]);
  await request(`http://127.0.0.1:${f.sy.frontendAddress('web').port}/`).then((r) => r.body.text());
  // Two reads a moment apart may straddle a rate tick or a second boundary: poll for a match.
  const same = await waitFor('show stat equal to /stats;csv', async () => {
    const [sock, http] = await Promise.all([socat(f.admin, 'show stat\n'), request(`${f.statsBase}/stats;csv`).then((r) => r.body.text())]);
    return sock === `${http}\n` ? sock : undefined;
  });
  t.ok(same.startsWith('# pxname,svname,qcur,'), 'the CSV header');
  const servers = await socat(f.admin, 'show stat -1 4 -1\n');
  t.same(
    servers
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',').slice(0, 2).join(',')),
    ['app,s1', 'app,s2'],
    'type 4: servers only',
  );
  const one = await socat(f.admin, 'show stat app 4 2\n');
  t.same(
    one
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',')[1]),
    ['s2'],
    'by proxy name and server id',
  );
  const fe = await socat(f.admin, 'show stat 1 1 -1\n');
  t.same(
    fe
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',')[1]),
    ['FRONTEND'],
    'by proxy id, frontends only',
  );
  t.equal(await socat(f.admin, 'show stat nope 1 -1\n'), 'No such proxy.\n\n');
  const typed = await socat(f.admin, 'show stat typed\n');
  t.match(typed, /^F\.1\.0\.0\.pxname\.1:KNS:str:web\n/);
  t.match(typed, /\nS\.2\.1\.1\.svname\.1:KNS:str:s1\n/);
  t.match(typed, /\nS\.2\.1\.17\.status\.1:SOS:str:UP\n/);
});

t.test('interactive mode: prompt, several commands, ; separators, quit', async (t) => {
  const app = await httpServer('app');
  t.teardown(() => app.close());
  const f = await startFixture(t, [backendConfig('app', 'http', [app.address])]);
  const s: Socket = connect(f.admin);
  let out = '';
  s.on('data', (d) => {
    out += d.toString();
  });
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.write('prompt\n');
  await waitFor('the prompt', () => (out === '\n> ' ? true : undefined));
  s.write('show backend\n');
  await waitFor('the answer and a new prompt', () => (out.endsWith('app\n\n> ') ? true : undefined));
  s.write('set server app/s1 state drain; get weight app/s1\n');
  await waitFor('two answers', () => (out.endsWith('\n> \n> 1 (initial 1)\n\n> ') ? true : undefined));
  t.equal(f.sy.runtime().backends.get('app')!.servers[0]!.state, 'DRAIN');
  s.write('quit\n');
  await closed;
  t.pass('quit closes the connection');
  // Non-interactive: several commands on one line, each answer ended by an empty line.
  t.equal(await socat(f.admin, 'show backend;show cli level\n'), '# name\napp\n\nadmin\n\n');
  t.equal(await socat(f.admin, 'get weight app\\/s1\n'), '1 (initial 1)\n\n', 'a backslash escapes');
});

t.test('changes go through the model: state, weight, address, maxconn, health, page JSON', async (t) => {
  const a = await httpServer('A');
  const b = await httpServer('B');
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const health = healthConfig({ type: 'tcp', intervalMs: 200, fastIntervalMs: 200, downIntervalMs: 200, timeoutMs: 200, rise: 1, fall: 1 });
  const f = await startFixture(t, [backendConfig('app', 'http', [a.address, a.address], { health })]);
  const backend = f.sy.runtime().backends.get('app')!;
  const [s1, s2] = backend.servers;
  t.equal(await socat(f.admin, 'set server app/s1 state maint\n'), '\n');
  t.equal(s1!.state, 'MAINT');
  let json = await statsJson(f);
  t.equal(json.backends[0]!.servers[0]!.state, 'MAINT', "the page's JSON shows it");
  t.equal(await socat(f.admin, 'enable server app/s1\n'), '\n');
  t.equal(s1!.state, 'UP');
  t.equal(await socat(f.admin, 'disable server app/s1;set server app/s1 state ready\n'), '\n\n');
  t.equal(await socat(f.admin, 'set server app/s2 weight 7\n'), '\n');
  t.equal(s2!.weight, 7);
  t.equal(await socat(f.admin, 'set server app/s2 weight 50%\n'), '\n');
  t.equal(s2!.weight, 0, '50% of the initial weight 1, rounded down as HAProxy does');
  t.equal(await socat(f.admin, 'get weight app/s2\n'), '0 (initial 1)\n\n');
  t.equal(await socat(f.admin, 'set server app/s2 weight 100%\n'), '\n');
  json = await statsJson(f);
  t.equal(json.backends[0]!.servers[1]!.weight, 1);
  // Move s2 to server B: the next requests it takes reach B.
  t.equal(
    await socat(f.admin, `set server app/s2 addr 127.0.0.1 port ${b.port}\n`),
    `no need to change the addr, port changed from '${a.port}' to '${b.port}' by 'stats socket command'\n\n`,
  );
  t.equal(s2!.address, `127.0.0.1:${b.port}`);
  t.equal(await socat(f.admin, 'set server app/s2 addr 10.0.0.300\n'), "Invalid addr '10.0.0.300' by 'stats socket command'\n\n");
  t.equal(await socat(f.admin, 'set server app/s1 state maint\n'), '\n');
  const body = await request(`http://127.0.0.1:${f.sy.frontendAddress('web').port}/`).then((r) => r.body.text());
  t.equal(body, 'B', 'traffic follows the new address');
  t.equal(await socat(f.admin, 'set maxconn server app/s2 5\n'), '\n');
  t.equal(s2!.maxconn, 5);
  t.equal(await socat(f.admin, 'set maxconn server app/s2 x\n'), 'maxconn string empty or preceded by garbage\n');
  // Health: disable stops the checks (the server counts as UP by checks); enable resumes them.
  await b.close();
  await waitFor('s2 DOWN by its checks', () => (s2!.state === 'DOWN' ? true : undefined));
  t.equal(await socat(f.admin, 'disable health app/s2\n'), '\n');
  await waitFor('s2 UP with checks disabled', () => (s2!.state === 'UP' ? true : undefined));
  const state = await socat(f.admin, 'show servers state app\n');
  t.match(state.split('\n')[3], / 2 0 1 1 \d+ \d+ 0 \d+ 2 0 /, 'check state: configured, not enabled');
  t.equal(await socat(f.admin, 'enable health app/s2\n'), '\n');
  await waitFor('s2 DOWN again once checked', () => (s2!.state === 'DOWN' ? true : undefined));
});

t.test('add server and del server, as HAProxy requires (maint, then no connection)', async (t) => {
  const a = await httpServer('A');
  const c = await httpServer('C');
  t.teardown(async () => {
    await a.close();
    await c.close();
  });
  const f = await startFixture(t, [backendConfig('app', 'http', [a.address])]);
  const backend = f.sy.runtime().backends.get('app')!;
  t.equal(await socat(f.admin, `add server app/c1 ${c.address} weight 3\n`), 'New server registered.\n\n');
  const c1 = backend.serverByName('c1')!;
  t.equal(c1.state, 'MAINT', 'a new server starts in maintenance');
  t.equal(c1.weight, 3);
  t.equal(await socat(f.admin, `add server app/c1 ${c.address}\n`), 'Already exists a server with the same name in backend.\n\n');
  t.equal(
    await socat(f.admin, 'add server app/c2 not-an-ip:80\n'),
    "'add server' expects <backend>/<server> <addr>:<port> [weight <w>] [maxconn <n>] [backup] [enabled|disabled].\n",
  );
  t.equal(await socat(f.admin, `add server nope/c2 ${c.address}\n`), 'No such backend.\n');
  t.equal(await socat(f.admin, 'set server app/c1 state ready;set server app/s1 state maint\n'), '\n\n');
  const body = await request(`http://127.0.0.1:${f.sy.frontendAddress('web').port}/`).then((r) => r.body.text());
  t.equal(body, 'C', 'the added server takes traffic once enabled');
  const json = await statsJson(f);
  t.same(
    json.backends[0]!.servers.map((s) => `${s.name}:${s.source}`),
    ['s1:static', 'c1:runtime'],
    'and shows on the page',
  );
  t.equal(await socat(f.admin, 'del server app/c1\n'), 'Only servers in maintenance mode can be deleted.\n');
  t.equal(await socat(f.admin, 'set server app/c1 state maint;del server app/c1\n'), '\nServer deleted.\n');
  t.equal(backend.serverByName('c1'), undefined);
  t.equal(await socat(f.admin, 'del server app/c1\n'), 'No such server.\n');
  // A static server can go too, once in maintenance; a discovery update does not bring it back.
  t.equal(await socat(f.admin, 'del server app/s1\n'), 'Server deleted.\n');
  backend.setDiscovered([]);
  t.equal(backend.servers.length, 0);
});

t.test('shutdown sessions server closes what the server carries', async (t) => {
  const srv = await tcpServer();
  t.teardown(() => srv.close());
  const f = await startFixture(t, [backendConfig('pg', 'tcp', [srv.address])]);
  const s = connect({ port: f.sy.frontendAddress('web').port, host: '127.0.0.1' });
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  s.write('ping');
  await new Promise<void>((r) => s.once('data', () => r()));
  const sess = await socat(f.operator, 'show sess\n');
  t.match(sess, /^0x[0-9a-f]{8}: proto=tcpv4 src=127\.0\.0\.1:\d+ fe=web be=pg srv=s1 age=\d+s\n\n$/);
  t.equal(await socat(f.admin, 'shutdown sessions server pg/s1\n'), '\n');
  await closed;
  t.pass('the client connection was closed');
});

t.test('a drain under load through socat fails no request', async (t) => {
  const a = await httpServer('A');
  const b = await httpServer('B');
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const f = await startFixture(t, [backendConfig('app', 'http', [a.address, b.address])]);
  const url = `http://127.0.0.1:${f.sy.frontendAddress('web').port}/`;
  const seen: string[] = [];
  let failures = 0;
  const worker = async (): Promise<void> => {
    for (let i = 0; i < 150; i++) {
      try {
        const res = await request(url);
        const body = await res.body.text();
        if (res.statusCode !== 200) failures++;
        seen.push(body);
      } catch {
        failures++;
      }
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);
  await waitFor('load under way', () => (seen.length >= 100 ? true : undefined));
  t.equal(await socat(f.admin, 'set server app/s1 state drain\n'), '\n');
  const drained = seen.length;
  await load;
  t.equal(failures, 0, 'no request failed');
  t.equal(seen.length, 600);
  // Each of the 4 workers may have had one request on A in flight at the switch; every request
  // picked after it went to B.
  t.ok(seen.slice(drained).filter((x) => x === 'A').length <= 4, 'after the drain, new requests go to B only');
  t.ok(seen.slice(drained).filter((x) => x === 'B').length >= seen.length - drained - 4);
  t.ok(seen.slice(0, drained).includes('A'), 'A served before the drain');
});

t.test('garbage on the socket gets error lines, never a crash', async (t) => {
  const app = await httpServer('app');
  t.teardown(() => app.close());
  const f = await startFixture(t, [backendConfig('app', 'http', [app.address])]);
  const inputs = [
    '\n',
    ';;;\n',
    '\\\n',
    'set\n',
    'set server\n',
    'set server /\n',
    'set server a/\n',
    'set weight app/s1\n',
    'add server\n',
    'add server app/x 1.2.3.4:99999\n',
    'del server\n',
    'show stat a b\n',
    'show stat -1 -1\n',
    'set maxconn server app/s1 -5\n',
    'shutdown sessions server\n',
    `${'x'.repeat(20000)}\n`,
    '\u0000\u0001\u00ff\n',
    'set server app/s1 addr\n',
    'set server app/s1 addr ::1 port 0\n',
  ];
  for (const input of inputs) await socat(f.admin, input);
  for (let i = 0; i < 50; i++) {
    const bytes = Buffer.alloc(40).map((_, j) => (i * 131 + j * 17) & 0xff);
    await new Promise<void>((r) => {
      const s = connect(f.admin);
      s.resume();
      s.on('error', () => r());
      s.on('close', () => r());
      s.end(Buffer.concat([bytes, Buffer.from('\n')]));
    });
  }
  t.equal(await socat(f.admin, 'show backend\n'), '# name\napp\n\n', 'still answering');
  t.equal(f.sy.uncaughtExceptions(), 0);
  t.equal(f.sy.runtime().backends.get('app')!.servers[0]!.state, 'UP');
});

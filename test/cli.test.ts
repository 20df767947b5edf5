import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The CLI as users run it after `npm ci`: the linked bin (`npx switchyard`), `check`, --version,
// --help, and `npm start`'s embedded demo (the contract's fixed ports 11099-11101: this is the
// only test that binds them).

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'node_modules/.bin/switchyard');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function cli(args: string[], cwd = ROOT) {
  const r = spawnSync(BIN, args, { cwd, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'sy-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('--version and --help', async (t) => {
  const v = cli(['--version']);
  t.equal(v.code, 0);
  t.equal(v.stdout.trim(), VERSION, 'prints the package version');
  const h = cli(['--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /--config <file>/, 'help lists --config');
  t.match(h.stdout, /check/, 'help lists the check command');
});

t.test('check: a valid config exits 0 with a one-line summary', async (t) => {
  const r = cli(['check', '--config', 'examples/mcp-network.yaml']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim().split('\n').length, 1, 'one line');
  t.match(r.stdout, /^ok: 6 frontends \(http 5, tcp 1\), 6 backends/, 'summary counts frontends and backends');
});

t.test('check: an invalid config exits 1 and names every error with its path', async (t) => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(
    file,
    `frontends:
  web: { mode: http, bind: 127.0.0.1:18080, backend: api }
  db: { mode: tcp, bind: 127.0.0.1:18081, backend: missing }
backends:
  api:
    mode: http
    strategy: fastest
    servers:
      - { address: 127.0.0.1:9001 }
      - { address: nope }
`,
  );
  const r = cli(['check', '--config', file]);
  t.equal(r.code, 1);
  t.equal(r.stdout, '', 'nothing on stdout');
  t.match(r.stderr, /3 errors/, 'counts the errors');
  t.match(r.stderr, /backends\.api\.servers\[1\]\.address: expected host:port \(line 10\)/, 'server address error with path and line');
  t.match(r.stderr, /backends\.api\.strategy: unknown strategy "fastest"/, 'strategy error with path');
  t.match(r.stderr, /frontends\.db\.backend: .*missing/, 'dangling backend reference with path');
});

t.test('check: an unreadable file and a YAML syntax error are clear errors, exit 1', async (t) => {
  const missing = cli(['check', '--config', join(dir, 'nope.yaml')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /nope\.yaml/, 'names the file');
  const file = join(dir, 'syntax.yaml');
  writeFileSync(file, 'frontends:\n  web: { mode: http\n');
  const syntax = cli(['check', '--config', file]);
  t.equal(syntax.code, 1);
  t.match(syntax.stderr, /line \d+/, 'points at a line');
});

t.test('with no config file, `npm start` runs the embedded demo on the contract ports', async (t) => {
  const empty = mkdtempSync(join(dir, 'empty-'));
  // npm start == node bin/switchyard.js; run the linked bin from a folder with no switchyard.yaml.
  const child = spawn(BIN, [], { cwd: empty, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const until = Date.now() + 20_000;
  while (!/switchyard demo is running/.test(out)) {
    if (Date.now() > until || child.exitCode !== null) t.fail(`demo did not start:\n${out}`);
    if (Date.now() > until || child.exitCode !== null) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const password = /admin login: admin \/ (\S+)\)/.exec(out)?.[1];
  t.ok(password, 'prints an admin password for the stats page');

  const servers = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const res = await fetch('http://127.0.0.1:11101/hello');
    t.equal(res.status, 200);
    servers.add(((await res.json()) as { server: string }).server);
  }
  t.same([...servers].sort(), ['echo1', 'echo2', 'echo3'], 'HTTP on 11101 is balanced over the three echo backends');

  const echoed = await new Promise<string>((resolve, reject) => {
    const s = connect(11100, '127.0.0.1');
    let got = '';
    s.on('connect', () => s.end('hi over tcp\n'));
    s.on('data', (d) => {
      got += d.toString();
    });
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
  t.equal(echoed, 'hi over tcp\n', 'TCP on 11100 echoes, half-close included');

  const health = await fetch('http://127.0.0.1:11099/health');
  t.same(await health.json(), { status: 'ok' }, 'stats /health on 11099');
  const page = await fetch('http://127.0.0.1:11099/');
  t.match(await page.text(), /<html/i, 'the stats page is served on 11099');
  const auth = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
  const denied = await fetch('http://127.0.0.1:11099/api/reload', { method: 'POST' });
  t.equal(denied.status, 401, 'admin without credentials: 401');
  const drain = await fetch('http://127.0.0.1:11099/api/backends/demo-http/servers/echo1/state', {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: '{"state":"drain"}',
  });
  t.equal(drain.status, 200, `the printed password works for admin actions (${await drain.text()})`);
  // The demo has no file to reload: said so, every time, and the balancer keeps answering.
  for (let i = 0; i < 3; i++) {
    const reload = await fetch('http://127.0.0.1:11099/api/reload', {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: '{}',
    });
    t.match(await reload.text(), /no config file to reload/, `reload ${i + 1} in the demo is refused with its reason`);
  }
  t.equal((await fetch('http://127.0.0.1:11101/hello')).status, 200, 'and the demo still serves');

  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM exits 0');
});

import t, { type Test } from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendConfig, config, deadPort, frontendConfig, httpServer, start } from './support/proxy-harness.js';
import { waitFor } from './support/polling.js';

// Debian's HAProxy on both sides of the PROXY protocol, with the original client address
// checked at the far end. The client connects from 127.0.0.x addresses other than the
// 127.0.0.1 the balancers use between them, so only a header that made it through end to end
// can explain the address the far end reports.

const haproxy = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
if (haproxy.status !== 0) throw new Error('haproxy is not installed: scripts/ensure-system-deps.sh installs it');

const dir = mkdtempSync(join(tmpdir(), 'sy-haproxy-pp-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function startHaproxy(t: Test, name: string, text: string, port: number): Promise<ChildProcess> {
  const file = join(dir, `${name}.cfg`);
  writeFileSync(file, text);
  const check = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`haproxy -c: ${check.stdout}${check.stderr}`);
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  await waitFor(
    `haproxy listening on ${port} (${stderr})`,
    () =>
      new Promise<true | undefined>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.on('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(undefined));
      }),
  );
  return child;
}

/** One HTTP/1.1 request from `localAddress`, the body back. */
function get(port: number, localAddress: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    let out = '';
    s.on('data', (d) => {
      out += d.toString();
    });
    s.on('error', reject);
    s.on('close', () => {
      const i = out.indexOf('\r\n\r\n');
      if (!out.startsWith('HTTP/1.1 200')) reject(new Error(`unexpected answer: ${JSON.stringify(out.slice(0, 200))}`));
      else resolve(out.slice(i + 4));
    });
    s.write('GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
  });
}

const DEFAULTS = `global
  maxconn 100
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
`;

t.test('HAProxy send-proxy / send-proxy-v2 → switchyard accept_proxy: X-Forwarded-For is the original client', async (t) => {
  const echo = await httpServer('echo', (req, res) => res.end(String(req.headers['x-forwarded-for'])));
  t.teardown(() => echo.close());
  const sy = await start(
    config([frontendConfig('edge', 'http', 'app', { acceptProxy: true, trustedSources: ['127.0.0.1/32'] })], [backendConfig('app', 'http', [echo.address])]),
  );
  t.teardown(() => sy.stop(100));
  const syPort = sy.frontendAddress('edge').port;
  const v2 = await deadPort();
  const v1 = await deadPort();
  await startHaproxy(
    t,
    'to-sy',
    `${DEFAULTS}
listen v2
  bind 127.0.0.1:${v2}
  server sy 127.0.0.1:${syPort} send-proxy-v2
listen v1
  bind 127.0.0.1:${v1}
  server sy 127.0.0.1:${syPort} send-proxy
`,
    v1,
  );
  t.equal(await get(v2, '127.0.0.7'), '127.0.0.7', 'v2 from HAProxy: switchyard forwards the original client');
  t.equal(await get(v1, '127.0.0.8'), '127.0.0.8', 'v1 from HAProxy too');
  t.equal(sy.runtime().frontends.get('edge')!.proxyRefused, 0);
});

t.test('switchyard send_proxy v1/v2 (HTTP and TCP) → HAProxy accept-proxy reports the original client', async (t) => {
  const hp1 = await deadPort();
  const hp2 = await deadPort();
  // HAProxy answers itself with the source and destination it believes in (%[src] comes from the header).
  const answer = 'http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port] %[dst]:%[dst_port]"';
  await startHaproxy(
    t,
    'from-sy',
    `${DEFAULTS}
frontend v1
  bind 127.0.0.1:${hp1} accept-proxy
  ${answer}
frontend v2
  bind 127.0.0.1:${hp2} accept-proxy
  ${answer}
`,
    hp2,
  );
  const sy = await start(
    config(
      [frontendConfig('h1', 'http', 'to-v1'), frontendConfig('h2', 'http', 'to-v2'), frontendConfig('t2', 'tcp', 'tcp-v2')],
      [
        backendConfig('to-v1', 'http', [`127.0.0.1:${hp1}`], { sendProxy: 1 }),
        backendConfig('to-v2', 'http', [`127.0.0.1:${hp2}`], { sendProxy: 2 }),
        backendConfig('tcp-v2', 'tcp', [`127.0.0.1:${hp2}`], { sendProxy: 2 }),
      ],
    ),
  );
  t.teardown(() => sy.stop(100));
  for (const [fe, from] of [
    ['h1', '127.0.0.11'],
    ['h2', '127.0.0.12'],
    ['t2', '127.0.0.13'],
  ] as const) {
    const port = sy.frontendAddress(fe).port;
    const body = await get(port, from);
    const [src, dst] = body.split(' ');
    t.match(src, new RegExp(`^${from.replace(/\./g, '\\.')}:\\d+$`), `${fe}: HAProxy sees the client ${from}`);
    t.equal(dst, `127.0.0.1:${port}`, `${fe}: and the address it reached switchyard on`);
  }
});

import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

// The container, built and run for real: a local base image (Debian minbase + Node from the npm
// registry, no image registry; cached), the repo's Dockerfile built on it with buildah, the image
// run with podman on the host network with a mounted config. Checks: non-root, /health, an HTTP
// and a TCP frontend reaching backends on the host, the image's HEALTHCHECK, a graceful
// `podman stop` (exit 0, an in-flight request finishes), no dev dependencies in the image.
// Prints the build times and the image size (docs/container.md quotes them).
//
// Needs root with buildah, podman, runc and debootstrap; installs them with apt when missing.
// It fails (never skips) when it cannot.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IMAGE = 'localhost/switchyard:test';
const STORAGE = ['--storage-driver', process.env.STORAGE_DRIVER ?? 'vfs'];
const PODMAN_GLOBAL = [...STORAGE, '--cgroup-manager', 'cgroupfs', '--runtime', 'runc', '--events-backend', 'file'];
const NEEDED: Record<string, string> = { buildah: 'buildah', podman: 'podman', runc: 'runc', debootstrap: 'debootstrap' };

t.setTimeout(25 * 60_000); // a cold run debootstraps Debian and runs npm ci in the build

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The children's environment. Without tap's NODE_OPTIONS (`--import @tapjs/processinfo/...`):
 * build-base.sh runs the image's own node in a chroot, where that module does not exist.
 */
function env(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, STORAGE_DRIVER: process.env.STORAGE_DRIVER ?? 'vfs' };
  delete out.NODE_OPTIONS;
  return out;
}

/** Runs a command; `echo` streams its stderr to ours (builds are long, show progress). */
function run(cmd: string, args: string[], opts: { echo?: boolean; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (opts.echo) process.stderr.write(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (opts.echo) process.stderr.write(d);
    });
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function must(cmd: string, args: string[], opts: { echo?: boolean; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-4000)}${r.stdout.slice(-2000)}`);
  return r.stdout;
}

const podman = (args: string[], opts: { echo?: boolean; timeoutMs?: number } = {}) => run('podman', [...PODMAN_GLOBAL, ...args], opts);

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** buildah, podman, runc, debootstrap: installed with apt when missing (root), else a clear failure. */
function ensureTools(): void {
  const missing = Object.keys(NEEDED).filter((c) => !has(c));
  if (missing.length === 0) return;
  const pkgs = missing.map((c) => NEEDED[c]!);
  if (process.getuid?.() !== 0 || !has('apt-get')) {
    throw new Error(`the container test needs ${pkgs.join(', ')}: install them (apt-get install -y ${pkgs.join(' ')}) and run it as root`);
  }
  process.stderr.write(`container test: installing ${pkgs.join(' ')} with apt-get\n`);
  const opts = { stdio: 'inherit' as const, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  spawnSync('apt-get', ['update', '-qq'], opts);
  const r = spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], opts);
  const still = Object.keys(NEEDED).filter((c) => !has(c));
  if (r.status !== 0 || still.length > 0) throw new Error(`apt-get install ${pkgs.join(' ')} failed (still missing: ${still.join(', ')})`);
}

/** The sandbox refuses podman's default rlimits: a containers.conf without them (CONTAINERS.md). */
function ensureContainersConf(dir: string): void {
  if (process.env.CONTAINERS_CONF) return;
  const file = join(dir, 'containers.conf');
  writeFileSync(file, '[containers]\ndefault_ulimits = []\n');
  process.env.CONTAINERS_CONF = file;
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function listen(server: HttpServer | NetServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tcpRoundTrip(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let got = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('TCP echo timed out')));
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (d) => {
      got += d.toString();
      if (got.length >= payload.length) socket.end();
    });
    socket.on('close', () => resolve(got));
    socket.on('error', reject);
  });
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

interface ComposeService {
  image?: string;
  build?: { context?: string; args?: Record<string, string> };
  networks?: Record<string, unknown>;
  ports?: { published?: number | string; target?: number | string }[];
  volumes?: string[];
  environment?: Record<string, string>;
}

t.test('the MCP network compose file validates and has the promised shape', async (t) => {
  const out = await run('bash', ['scripts/container/check-compose.sh'], { timeoutMs: 5 * 60_000 });
  t.equal(out.code, 0, `docker-compose config accepts docker/compose.mcp-network.yml${out.code === 0 ? '' : `:\n${out.stderr}`}`);
  if (out.code !== 0) return;
  const compose = parseYaml(out.stdout) as {
    services: Record<string, ComposeService>;
    networks: Record<string, { internal?: boolean; name?: string; ipam?: { config?: { subnet?: string }[] } }>;
  };
  const { services, networks } = compose;
  const published = (svc: ComposeService | undefined) => (svc?.ports ?? []).map((p) => `${p.published}:${p.target}`);
  const nets = (svc: ComposeService | undefined) => Object.keys(svc?.networks ?? {}).sort();

  t.equal(networks['mcp-internal']?.internal, true, 'mcp-internal is internal');
  t.same(
    networks['mcp-internal']?.ipam?.config?.map((c) => c.subnet),
    ['172.20.0.0/24'],
    'mcp-internal is 172.20.0.0/24',
  );
  t.equal(networks['sutazai-network']?.name, 'sutazai-network', 'sutazai-network keeps its name');
  t.same(published(services.consul), ['11090:8500'], 'Consul UI and API on 11090');
  t.same(nets(services.consul), ['mcp-internal', 'sutazai-network'], 'Consul on both networks (the services register with it)');
  const sy = services.switchyard;
  t.same(
    published(sy),
    ['11099:11099', ...[0, 1, 2, 3, 4, 5].map((i) => `${11100 + i}:${11100 + i}`)],
    'switchyard publishes stats 11099 and frontends 11100-11105',
  );
  t.same(nets(sy), ['mcp-internal', 'sutazai-network'], 'switchyard joins both networks');
  t.ok(sy?.build?.context, 'switchyard is built from the repo Dockerfile');
  t.ok(
    (sy?.volumes ?? []).some((v) => /examples\/mcp-network\.yaml:\/etc\/switchyard\/switchyard\.yaml(:ro)?$/.test(v)),
    'the MCP network config is mounted at /etc/switchyard/switchyard.yaml',
  );
  for (const name of ['mcp-postgres', 'mcp-files', 'mcp-http', 'mcp-ddg', 'mcp-github', 'mcp-memory']) {
    const svc = services[name];
    t.ok(svc, `${name} is defined`);
    t.same(nets(svc), ['mcp-internal'], `${name} is only on mcp-internal`);
    t.same(published(svc), [], `${name} publishes no port (reachable only through the balancer)`);
    t.equal(svc?.environment?.SERVICE_NAME, name, `${name} registers in Consul as ${name}`);
  }
});

t.test('the container image: built on a local base, run with podman, checked end to end', async (t) => {
  ensureTools();
  const dir = mkdtempSync(join(tmpdir(), 'sy-container-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  ensureContainersConf(dir);

  // ---- build ----------------------------------------------------------------------------------
  let t0 = Date.now();
  const baseOut = await must('bash', ['scripts/container/build-base.sh'], { echo: true, timeoutMs: 15 * 60_000 });
  const base = baseOut.trim().split('\n').pop()!.trim();
  const baseSeconds = (Date.now() - t0) / 1000;
  t.match(base, /^localhost\/switchyard-base:node\d+\.\d+\.\d+$/, `base image ${base}`);

  const before = (await run('buildah', [...STORAGE, 'inspect', '--type', 'image', '--format', '{{.FromImageID}}', IMAGE])).stdout.trim();
  t0 = Date.now();
  await must(
    'buildah',
    [...STORAGE, 'bud', '--isolation', 'chroot', '--format', 'docker', '--build-arg', `BASE=${base}`, '-t', IMAGE, '-f', 'Dockerfile', '.'],
    { echo: true, timeoutMs: 15 * 60_000 },
  );
  const buildSeconds = (Date.now() - t0) / 1000;
  const imageId = (await must('buildah', [...STORAGE, 'inspect', '--type', 'image', '--format', '{{.FromImageID}}', IMAGE])).trim();
  if (before && before !== imageId) await run('buildah', [...STORAGE, 'rmi', before]); // the previous build, now untagged

  const size = Number((await must('podman', [...PODMAN_GLOBAL, 'image', 'inspect', '--format', '{{.Size}}', IMAGE])).trim());
  const baseSize = Number((await must('podman', [...PODMAN_GLOBAL, 'image', 'inspect', '--format', '{{.Size}}', base])).trim());
  const figures =
    `base ${base}: ${baseSeconds.toFixed(1)}s (cached when unchanged), ${mb(baseSize)}; ` +
    `image build: ${buildSeconds.toFixed(1)}s; image ${IMAGE}: ${mb(size)} (app layers ${mb(size - baseSize)})`;
  t.comment(figures);
  process.stderr.write(`container figures: ${figures}\n`);
  t.ok(size > 0, `image size ${mb(size)}`);

  const [inspect] = JSON.parse(await must('podman', [...PODMAN_GLOBAL, 'image', 'inspect', IMAGE])) as {
    Config: { User?: string; StopSignal?: string; ExposedPorts?: Record<string, unknown>; Entrypoint?: string[]; Cmd?: string[] };
    Healthcheck?: { Test?: string[] };
  }[];
  const config = inspect!.Config;
  const healthcheck = inspect!.Healthcheck;
  t.not(config.User ?? '', '', 'image sets a USER');
  t.same(config.Entrypoint, ['node', '/app/bin/switchyard.js'], 'entrypoint runs the CLI');
  t.same(config.Cmd, ['--config', '/etc/switchyard/switchyard.yaml'], 'default config path');
  t.equal(config.StopSignal, 'SIGTERM', 'stop signal');
  // buildah keeps a range as written (`11100-11105/tcp`); docker expands it port by port.
  const exposed = Object.keys(config.ExposedPorts ?? {});
  const exposes = (port: number) =>
    exposed.some((e) => {
      const m = /^(\d+)(?:-(\d+))?\/tcp$/.exec(e);
      return m !== null && port >= Number(m[1]) && port <= Number(m[2] ?? m[1]);
    });
  t.ok([11099, 11100, 11101, 11102, 11103, 11104, 11105].every(exposes), `exposes 11099 and 11100-11105 (${exposed.join(', ')})`);
  t.match(healthcheck?.Test?.join(' ') ?? '', /node -e .*fetch\(.*\/health/, "image has a HEALTHCHECK with node's fetch on /health");

  // The shipped default config and the MCP network example both pass `switchyard check` in the image.
  const checkDefault = await podman([
    'run',
    '--rm',
    '--network',
    'host',
    '--health-interval',
    'disable',
    IMAGE,
    'check',
    '--config',
    '/etc/switchyard/switchyard.yaml',
  ]);
  t.equal(checkDefault.code, 0, `the image's default config is valid: ${checkDefault.stdout.trim() || checkDefault.stderr.trim()}`);
  const checkMcp = await podman([
    'run',
    '--rm',
    '--network',
    'host',
    '--health-interval',
    'disable',
    '-v',
    `${join(ROOT, 'examples/mcp-network.yaml')}:/etc/switchyard/switchyard.yaml:ro`,
    IMAGE,
    'check',
    '--config',
    '/etc/switchyard/switchyard.yaml',
  ]);
  t.equal(checkMcp.code, 0, `examples/mcp-network.yaml is valid in the image: ${checkMcp.stdout.trim() || checkMcp.stderr.trim()}`);

  // ---- host backends and the mounted config ---------------------------------------------------
  let slowArrived!: () => void;
  const slowSeen = new Promise<void>((r) => {
    slowArrived = r;
  });
  const web = createHttpServer((req, res) => {
    if (req.url === '/slow') {
      slowArrived();
      setTimeout(() => res.end('slow done'), 2000);
      return;
    }
    res.setHeader('content-type', 'text/plain');
    res.end(`host backend saw ${req.method} ${req.url} xff=${String(req.headers['x-forwarded-for'] ?? '')}`);
  });
  const echo = createNetServer((s) => s.pipe(s));
  const webPort = await listen(web);
  const echoPort = await listen(echo);
  t.teardown(() => {
    web.closeAllConnections();
    web.close();
    echo.close();
  });
  const [statsPort, httpPort, tcpPort] = [await freePort(), await freePort(), await freePort()];

  const configFile = join(dir, 'switchyard.yaml');
  writeFileSync(
    configFile,
    `# container test config (mounted at /etc/switchyard/switchyard.yaml)
stats: { bind: 127.0.0.1:${statsPort} }
shutdown_timeout: 15s
frontends:
  web: { mode: http, bind: 127.0.0.1:${httpPort}, backend: host-web }
  echo: { mode: tcp, bind: 127.0.0.1:${tcpPort}, backend: host-echo }
backends:
  host-web:
    mode: http
    health: { type: http, path: /health, expect: 200, interval: 1s }
    servers: [ { name: web1, address: 127.0.0.1:${webPort} } ]
  host-echo:
    mode: tcp
    health: { type: tcp, interval: 1s }
    servers: [ { name: echo1, address: 127.0.0.1:${echoPort} } ]
`,
  );
  chmodSync(dir, 0o755);
  chmodSync(configFile, 0o644);

  // ---- run ------------------------------------------------------------------------------------
  const name = `sy-test-${process.pid}-${Date.now().toString(36)}`;
  t.teardown(async () => {
    await podman(['rm', '-f', '-t', '0', name]);
  });
  await must('podman', [
    ...PODMAN_GLOBAL,
    'run',
    '-d',
    '--name',
    name,
    '--network',
    'host',
    '--health-interval',
    'disable', // no systemd timers here; the check is run by hand below
    '-e',
    `SWITCHYARD_HEALTH_URL=http://127.0.0.1:${statsPort}/health`,
    '-v',
    `${configFile}:/etc/switchyard/switchyard.yaml:ro`,
    IMAGE,
  ]);
  const logs = async () => {
    const r = await podman(['logs', name]);
    return r.stdout + r.stderr;
  };

  try {
    // Ready when the HTTP frontend answers; every check below reports on its own.
    const res = await waitFor(
      'HTTP through the frontend',
      async () => {
        const r = await fetch(`http://127.0.0.1:${httpPort}/hello?x=1`);
        return r.status === 200 ? r : undefined;
      },
      60_000,
    );
    const body = await res.text();
    t.match(body, /^host backend saw GET \/hello\?x=1 xff=127\.0\.0\.1/, 'an HTTP request through the frontend reaches the host backend');

    const health = await waitFor(
      '/health',
      async () => {
        const r = await fetch(`http://127.0.0.1:${statsPort}/health`);
        return r.status === 200 ? await r.json() : undefined;
      },
      15_000,
    ).catch((error: unknown) => String(error));
    t.same(health, { status: 'ok' }, '/health answers 200 {"status":"ok"}');

    // The page's bundle is built in the image (scripts/build-page.js in the build stage).
    const page = await fetch(`http://127.0.0.1:${statsPort}/`);
    const script = /<script src="(\/assets\/main-[A-Z0-9]+\.js)"><\/script>/.exec(await page.text())?.[1];
    t.equal(page.status, 200, 'the stats page is served from the image');
    const bundle = script === undefined ? null : await fetch(`http://127.0.0.1:${statsPort}${script}`);
    t.equal(bundle?.status, 200, `its script is in the image (${script ?? 'not named in the page'})`);

    const uid = (await must('podman', [...PODMAN_GLOBAL, 'exec', name, 'id', '-u'])).trim();
    t.not(uid, '0', `exec runs as the image user (uid ${uid})`);
    const status = await must('podman', [...PODMAN_GLOBAL, 'exec', name, 'cat', '/proc/1/status']);
    const pid1 = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
    t.ok(pid1 && pid1[1] !== '0' && pid1[2] !== '0', `the balancer (PID 1) runs as uid ${pid1?.[1]}, not root`);
    const cmdline = (await must('podman', [...PODMAN_GLOBAL, 'exec', name, 'cat', '/proc/1/cmdline'])).split('\0').join(' ');
    t.match(
      cmdline,
      /node \/app\/bin\/switchyard\.js --config \/etc\/switchyard\/switchyard\.yaml/,
      'PID 1 is node running the CLI with the default config path',
    );

    const payload = `ping ${Date.now()}\n`;
    const echoed = await waitFor(
      'TCP echo through the frontend',
      async () => {
        const got = await tcpRoundTrip(tcpPort, payload);
        return got === payload ? got : undefined;
      },
      30_000,
    );
    t.equal(echoed, payload, 'a TCP connection through the frontend reaches the host echo server');

    const hc = await podman(['healthcheck', 'run', name]);
    t.equal(hc.code, 0, `the image's HEALTHCHECK passes (podman healthcheck run: ${(hc.stdout + hc.stderr).trim() || 'healthy'})`);

    const modules = JSON.parse(
      (
        await must('podman', [
          ...PODMAN_GLOBAL,
          'exec',
          name,
          'node',
          '-e',
          "const fs=require('fs');const d='/app/node_modules';const out=[];for(const n of fs.readdirSync(d)){if(n.startsWith('@')){for(const m of fs.readdirSync(d+'/'+n))out.push(n+'/'+m)}else if(!n.startsWith('.'))out.push(n)}console.log(JSON.stringify(out))",
        ])
      ).trim(),
    ) as string[];
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const devInImage = [...Object.keys(pkg.devDependencies), 'typescript', 'tap', '@tapjs/core'].filter((d) => modules.includes(d) && !(d in pkg.dependencies));
    t.same(devInImage, [], 'no dev dependencies in /app/node_modules');
    t.same(
      Object.keys(pkg.dependencies).filter((d) => !modules.includes(d)),
      [],
      'every production dependency is in the image',
    );
    const srcInImage = await podman(['exec', name, 'test', '-e', '/app/src']);
    t.not(srcInImage.code, 0, 'no TypeScript sources in the image');

    // ---- graceful stop: an in-flight request started before `podman stop` finishes ------------
    const inflight = fetch(`http://127.0.0.1:${httpPort}/slow`).then(async (r) => ({ status: r.status, body: await r.text() }));
    await slowSeen;
    const stopStarted = Date.now();
    const stop = await podman(['stop', '-t', '30', name]);
    const stopSeconds = (Date.now() - stopStarted) / 1000;
    t.equal(stop.code, 0, `podman stop returned (${stopSeconds.toFixed(1)}s)`);
    t.same(await inflight, { status: 200, body: 'slow done' }, 'the in-flight request finished with 200 during the stop');
    const exit = (await must('podman', [...PODMAN_GLOBAL, 'inspect', '--format', '{{.State.ExitCode}}', name])).trim();
    // Exit code 0, not 137: it stopped on SIGTERM, not on the SIGKILL after the 30 s timeout (no
    // elapsed-time bound needed).
    t.equal(exit, '0', 'SIGTERM ended the balancer with exit code 0, not the SIGKILL after the timeout');
  } catch (error) {
    process.stderr.write(`container logs:\n${await logs()}\n`);
    throw error;
  }
  if (t.passing()) return;
  process.stderr.write(`container logs:\n${await logs()}\n`);
});

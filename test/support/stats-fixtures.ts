// A hand-built Config, a runtime from it and a fake StatsHost for the stats tests: no proxy,
// no YAML, counters bumped by hand.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { BackendConfig, Config, FrontendConfig, HealthConfig, Mode, StatsConfig } from '../../src/config/types.js';
import type { ReloadResult, StatsHost } from '../../src/host.js';
import { buildRuntime, type Runtime } from '../../src/model/runtime.js';
import { loadStrategyFactory } from '../../src/strategies/registry.js';
import { startStats, type StatsListener, type StatsOptions } from '../../src/stats/listener.js';
import { startSwitchyard } from '../../src/switchyard.js';
import { backendConfig, healthConfig } from './backend-config.js';
import { frontendConfig } from './proxy-harness.js';

export const quiet = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export const ADMIN = { username: 'admin', password: 's3cret pass' } as const;

export function statsConfig(over: Partial<StatsConfig> = {}): StatsConfig {
  return { bind: { host: '127.0.0.1', port: 0 }, auth: ADMIN, read: 'public', allowedHosts: [], sockets: [], ...over };
}

export function health(over: Partial<HealthConfig> = {}): HealthConfig {
  return healthConfig({ path: '/health', ...over });
}

/** proxy-harness.ts's frontendConfig, arguments in this file's order. */
export function frontend(name: string, backend: string, mode: Mode = 'http', over: Partial<FrontendConfig> = {}): FrontendConfig {
  return frontendConfig(name, mode, backend, over);
}

/** `servers`: names, or `name@host:port`. */
export function backend(name: string, servers: readonly string[], mode: Mode = 'http', over: Partial<BackendConfig> = {}): BackendConfig {
  const sketches = servers.map((s) => {
    const [serverName, address] = s.split('@');
    return address === undefined ? { name: serverName } : { name: serverName, address };
  });
  return backendConfig(sketches, { name, mode, health: health(), ...over });
}

export function config(frontends: FrontendConfig[], backends: BackendConfig[], over: Partial<Config> = {}): Config {
  return {
    source: null,
    stats: statsConfig(),
    consul: null,
    workers: 1,
    shutdownTimeoutMs: 1000,
    logging: { level: 'silent', access: { enabled: false, sample: 1 } },
    frontends,
    backends,
    ...over,
  };
}

/** The usual shape: an HTTP frontend `web` → backend `api` (s1..s3, HTTP checks), a TCP frontend `db` → `pg` (p1, p2). */
export function sampleConfig(): Config {
  return config(
    [frontend('web', 'api', 'http', { maxconn: 500 }), frontend('db', 'pg', 'tcp')],
    [
      backend('api', ['s1', 's2', 's3'], 'http', { health: health({ type: 'http' }), sticky: { type: 'cookie', name: 'SY' } }),
      backend('pg', ['p1', 'p2'], 'tcp'),
    ],
  );
}

export class FakeHost implements StatsHost {
  readonly startedAt = Date.now() - 65_000;
  readonly strategyCalls: [string, string][] = [];
  reloads = 0;
  /** What the next reload() answers (default: ok). */
  nextReload: ((rt: Runtime) => ReloadResult) | null = null;
  private last: ReloadResult | null = null;

  constructor(public rt: Runtime) {}

  runtime(): Runtime {
    return this.rt;
  }

  async reload(): Promise<ReloadResult> {
    this.reloads++;
    this.last = this.nextReload ? this.nextReload(this.rt) : { ok: true, at: Date.now(), errors: [], generation: this.rt.generation };
    return this.last;
  }

  lastReload(): ReloadResult | null {
    return this.last;
  }

  async setStrategy(backendName: string, strategy: string): Promise<void> {
    this.strategyCalls.push([backendName, strategy]);
    const b = this.rt.backends.get(backendName);
    if (!b) throw new Error(`unknown backend "${backendName}"`);
    b.setStrategy(strategy, await loadStrategyFactory(strategy, null));
  }

  workers(): null {
    return null;
  }

  /** Tests set it to see it in /metrics. */
  uncaught = 0;

  uncaughtExceptions(): number {
    return this.uncaught;
  }
}

export interface StatsFixture {
  host: FakeHost;
  runtime: Runtime;
  stats: StatsListener;
  base: string;
  close: () => Promise<void>; // a closure: `t.teardown(f.close)`
}

export async function startFixture(cfg: Config = sampleConfig(), options: StatsOptions = {}): Promise<StatsFixture> {
  const runtime = await buildRuntime(cfg, null);
  const host = new FakeHost(runtime);
  const stats = await startStats(host, cfg.stats, quiet, options);
  const { port } = stats.address();
  return { host, runtime, stats, base: `http://127.0.0.1:${port}`, close: () => stats.close() };
}

export function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

export const ADMIN_AUTH = basic(ADMIN.username, ADMIN.password);

/** Split a CSV body into rows of cells (our cells hold no commas in these tests). */
export function parseCsv(text: string): { header: string[]; rows: Record<string, string>[] } {
  const lines = text.split('\n').filter((l) => l !== '');
  const header = lines[0]!.replace(/^# /, '').split(',').slice(0, -1);
  const rows = lines.slice(1).map((line) => {
    const cells = line.split(',');
    const row: Record<string, string> = {};
    header.forEach((h, i) => {
      row[h] = cells[i]!;
    });
    return row;
  });
  return { header, rows };
}

/**
 * A real HTTP backend for the end-to-end stats tests: `/health` answers 200, `/missing` 404,
 * `/boom` 500, anything else `name` after `delayMs` (so response times differ per server).
 * `kill()` closes it and every open connection, as a dead process would; `restart()` listens
 * again on the same port.
 */
export interface Origin {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
}

export async function startOrigin(name: string, delayMs = 0): Promise<Origin> {
  const make = (): HttpServer => {
    const server = createHttpServer((req, res) => {
      if (req.url === '/health') {
        res.end('ok');
        return;
      }
      const status = req.url === '/missing' ? 404 : req.url === '/boom' ? 500 : 200;
      const reply = (): void => {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(`${name}\n`);
      };
      if (delayMs > 0) setTimeout(reply, delayMs);
      else reply();
    });
    server.keepAliveTimeout = 30_000;
    return server;
  };
  const listen = (server: HttpServer, port: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  let server = make();
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;
  let running = true;
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    async kill() {
      if (!running) return;
      running = false;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    async restart() {
      if (running) return;
      server = make();
      await listen(server, port);
      running = true;
    },
  };
}

/**
 * A port free right now (bound on 0, then released), for a frontend whose real address should
 * show on the stats page: a config holding port 0 shows `:0` there.
 */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A real switchyard (frontend `web` → backend `api` → one server `s1`) in front of an origin
 * answering 404 for /missing, 503 for /boom and 200 otherwise, with a stats listener: what the
 * counters tests send traffic through. Torn down with the test.
 */
export async function proxiedOrigin(t: { teardown(fn: () => unknown): void }): Promise<{ fePort: number; statsPort: number }> {
  const origin = createHttpServer((req, res) => {
    res.statusCode = req.url === '/missing' ? 404 : req.url === '/boom' ? 503 : 200;
    res.end('hello');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const port = (origin.address() as AddressInfo).port;
  const cfg = config([frontend('web', 'api')], [backend('api', [`s1@127.0.0.1:${port}`])]);
  const sy = await startSwitchyard({ config: cfg, logger: quiet, watch: false });
  const stats = await startStats(sy, statsConfig(), quiet);
  t.teardown(async () => {
    await stats.close();
    await sy.stop(200);
    await new Promise((r) => origin.close(r));
  });
  return { fePort: sy.frontendAddress('web').port, statsPort: stats.address().port };
}

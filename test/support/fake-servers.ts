// Small controllable servers for health tests, on 127.0.0.1 port 0: an HTTP server that answers
// a chosen status/body, stalls or answers slowly; a TCP server that records connections; both
// can "die" (listener closed, open sockets destroyed: connections are refused) and come back on
// the same port. stalledTcp() is a listener whose accept queue is full, so a connect hangs:
// the only way to get a connect timeout on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { BackendConfig, Config, HealthConfig, PassiveHealthConfig } from '../../src/config/types.js';
import { Backend } from '../../src/model/backend.js';
import { Runtime } from '../../src/model/runtime.js';
import { roundRobin } from '../../src/strategies/round-robin.js';
import { backendConfig, healthConfig } from './backend-config.js';

const HOST = '127.0.0.1';

interface Listening {
  listen(options: { host: string; port: number }, cb: () => void): unknown;
  close(cb?: (err?: Error) => void): unknown;
  once(event: 'error', cb: (err: Error) => void): unknown;
  address(): AddressInfo | string | null;
}

class Controllable {
  port = 0;
  readonly sockets = new Set<Socket>();
  up = false;
  /** performance.now() of each accepted connection. */
  readonly connTimes: number[] = [];

  constructor(protected readonly server: Listening & { on(event: 'connection', cb: (s: Socket) => void): unknown }) {
    server.on('connection', (socket) => {
      this.connTimes.push(performance.now());
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** Listen (again) on the same port; the first call picks one. */
  async restore(): Promise<void> {
    if (this.up) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: HOST, port: this.port }, () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.up = true;
  }

  /** Die: stop listening (connections refused) and drop every open connection. */
  async refuse(): Promise<void> {
    if (!this.up) return;
    this.up = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  close(): Promise<void> {
    return this.refuse();
  }
}

export class FakeHttp extends Controllable {
  status = 200;
  body = 'ok';
  /** Delay before answering, ms. */
  delayMs = 0;
  /** Accept and read the request, never answer. */
  stall = false;
  /** When set, the status of request number `hit` (0-based); overrides `status`. */
  statusFor: ((hit: number) => number) | null = null;
  /** performance.now() of each request; the request's Host header. */
  readonly hitTimes: number[] = [];
  readonly hosts: string[] = [];
  readonly paths: string[] = [];

  constructor() {
    const server: HttpServer = createHttpServer((req, res) => {
      this.hitTimes.push(performance.now());
      this.hosts.push(req.headers.host ?? '');
      this.paths.push(`${req.method} ${req.url}`);
      if (this.stall) return;
      const status = this.statusFor !== null ? this.statusFor(this.hitTimes.length - 1) : this.status;
      const answer = (): void => {
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(this.body);
      };
      if (this.delayMs > 0) setTimeout(answer, this.delayMs);
      else answer();
    });
    server.keepAliveTimeout = 1000;
    super(server);
  }

  get hits(): number {
    return this.hitTimes.length;
  }
}

export class FakeTcp extends Controllable {
  constructor() {
    const server: NetServer = createNetServer((socket) => socket.end());
    super(server);
  }
}

export async function fakeHttp(init: Partial<Pick<FakeHttp, 'status' | 'body' | 'delayMs' | 'stall'>> = {}): Promise<FakeHttp> {
  const s = new FakeHttp();
  Object.assign(s, init);
  await s.restore();
  return s;
}

export async function fakeTcp(): Promise<FakeTcp> {
  const s = new FakeTcp();
  await s.restore();
  return s;
}

/** A port nobody listens on (bound, then released): connections are refused. */
export async function refusedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen({ host: HOST, port: 0 }, () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export interface Stalled {
  readonly port: number;
  readonly address: string;
  close(): void;
}

// The listener lives in a child process whose event loop is blocked, so nothing accepts: with
// backlog 1 (0 means "the default" to Node) the kernel queues a couple of connections, then
// drops SYNs (Linux tcp_conn_request), and a connect hangs until its own timeout. The child
// exits by itself after 60 s.
const STALLED_CHILD = `
const s = require('net').createServer();
s.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
  process.stdout.write(s.address().port + '\\n');
  const a = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + 60000;
  while (Date.now() < end) Atomics.wait(a, 0, 0, 1000);
  process.exit(0);
});`;

export async function stalledTcp(): Promise<Stalled> {
  const child: ChildProcess = spawn(process.execPath, ['-e', STALLED_CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', () => reject(new Error('stalled listener exited')));
  });
  // Fill the accept queue: keep opening connections until one does not complete.
  const fillers: Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const s = connect({ host: HOST, port });
    s.on('error', () => {});
    fillers.push(s);
    const ok = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!ok) break;
  }
  return {
    port,
    address: `${HOST}:${port}`,
    close: () => {
      for (const s of fillers) s.destroy();
      child.kill('SIGKILL');
    },
  };
}

// ---------------------------------------------------------------- model fixtures

export const baseHealth: HealthConfig = healthConfig({
  type: 'http',
  path: '/health',
  intervalMs: 100,
  fastIntervalMs: 100,
  downIntervalMs: 100,
  timeoutMs: 300,
});

export const noPassive: PassiveHealthConfig = { consecutiveFailures: 0, baseEjectionMs: 1000, maxEjectionMs: 10000, maxEjectedPercent: 50 };

/** A hand-built BackendConfig: servers s1..sN at the given addresses. */
export function healthBackendConfig(
  name: string,
  addresses: readonly string[],
  health: Partial<HealthConfig> = {},
  passive: Partial<PassiveHealthConfig> = {},
): BackendConfig {
  return backendConfig(
    addresses.map((address) => ({ address })),
    {
      name,
      health: { ...baseHealth, ...health },
      passive: { ...noPassive, ...passive },
      timeouts: { connectMs: 1000, serverMs: 5000, serverKeepAliveMs: 4000 },
      queueTimeoutMs: 1000, // the loader's default: timeouts.connect
    },
  );
}

export function healthBackend(
  name: string,
  addresses: readonly string[],
  health: Partial<HealthConfig> = {},
  passive: Partial<PassiveHealthConfig> = {},
): Backend {
  return new Backend(healthBackendConfig(name, addresses, health, passive), roundRobin);
}

let generation = 0;
/** A Runtime holding just these backends (the checker reads `backends` only). */
export function runtimeOf(...backends: Backend[]): Runtime {
  return new Runtime({} as Config, new Map(), new Map(backends.map((b) => [b.name, b])), ++generation);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll until `cond()` holds; rejects after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

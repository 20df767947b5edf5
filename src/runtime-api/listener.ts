import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { RuntimeSocketConfig } from '../config/types.js';
import type { RuntimeComponent } from '../host.js';
import type { Logger } from '../log.js';
import type { Runtime } from '../model/runtime.js';
import type { RateSource } from '../stats/row.js';
import { CliSession } from './cli-session.js';
import { dispatch, type ApiHost } from './commands.js';
import type { ShowHost } from './show.js';

// The runtime API (`stats.socket`): HAProxy's `stats socket`, on a Unix socket (file mode and
// owner from the config: the file permissions are who may connect) or a loopback TCP address,
// each with its level. It follows the running runtime through the host at each command, so a
// reload is seen at once; the sockets themselves are opened at start and kept (changing
// `stats.socket` takes a restart, as the stats `bind` does).

export interface RuntimeApiListener extends RuntimeComponent {
  /** Where each socket listens: a path, or host:port for TCP (tests connect there). */
  addresses(): string[];
}

export interface RuntimeApiOptions {
  readonly rates: RateSource;
  readonly version: string;
  /** Told after each admin command (the stats page refreshes at once). */
  readonly onChange?: () => void;
}

class Listener implements RuntimeApiListener {
  private readonly servers: { server: NetServer; config: RuntimeSocketConfig }[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly api: ApiHost;

  constructor(
    host: ShowHost,
    private readonly log: Logger,
    options: RuntimeApiOptions,
  ) {
    this.api = {
      host,
      rates: options.rates,
      version: options.version,
      changed(what: string, level: string): void {
        log.info({ command: what, level }, `runtime API: ${what}`);
        options.onChange?.();
      },
    };
  }

  async open(configs: readonly RuntimeSocketConfig[]): Promise<void> {
    for (const config of configs) {
      const server = createServer((socket) => this.accept(socket, config));
      server.on('error', (error) => this.log.error({ err: error }, 'runtime API socket error'));
      // Tracked before it listens: a failure after (chmod, chown) still closes it in stop().
      this.servers.push({ server, config });
      if (config.path !== null) await listenUnix(server, config);
      else await listenTcp(server, config);
      this.log.info({ socket: config.path ?? `${config.address!.host}:${config.address!.port}`, level: config.level }, 'runtime API listening');
    }
  }

  private accept(socket: Socket, config: RuntimeSocketConfig): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    new CliSession(
      socket,
      { level: config.level },
      (args, ctx) => dispatch(this.api, args, ctx),
      config.timeoutMs,
      (error) => this.log.error({ err: error }, 'runtime API command failed'),
    );
  }

  addresses(): string[] {
    return this.servers.map(({ server, config }) => {
      if (config.path !== null) return config.path;
      const a = server.address();
      return a !== null && typeof a === 'object' ? `${a.address}:${a.port}` : '';
    });
  }

  sync(_runtime: Runtime): void {}

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(
      this.servers.map(
        ({ server, config }) =>
          new Promise<void>((resolve) => {
            if (!server.listening) {
              resolve();
              return;
            }
            server.close(() => resolve());
            if (config.path !== null) void unlink(config.path).catch(() => {});
          }),
      ),
    );
  }
}

function listen(server: NetServer, arg: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(arg, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * A Unix socket: a stale socket file left by a previous run is replaced (only a socket: any
 * other file there is an error), the folder is created, then mode and owner are applied before
 * the first connection can matter.
 */
async function listenUnix(server: NetServer, config: RuntimeSocketConfig): Promise<void> {
  const path = config.path!;
  await mkdir(dirname(path), { recursive: true });
  const existing = await lstat(path).catch(() => null);
  if (existing !== null) {
    if (!existing.isSocket()) throw new Error(`stats.socket: ${path} exists and is not a socket`);
    await unlink(path);
  }
  await listen(server, { path });
  await chmod(path, config.mode);
  if (config.user !== null || config.group !== null) {
    const uid = config.user === null ? -1 : resolveId(config.user, 'user');
    const gid = config.group === null ? -1 : resolveId(config.group, 'group');
    await chown(path, uid, gid);
  }
}

async function listenTcp(server: NetServer, config: RuntimeSocketConfig): Promise<void> {
  const { host, port } = config.address!;
  await listen(server, { host, port });
}

/** A user or group name (or numeric id) as a number, through the system's own database. */
function resolveId(name: string, kind: 'user' | 'group'): number {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    const out = execFileSync('getent', [kind === 'user' ? 'passwd' : 'group', name], { encoding: 'utf8' });
    const id = Number(out.split(':')[2]);
    if (Number.isInteger(id)) return id;
  } catch {
    /* not found: reported below */
  }
  throw new Error(`stats.socket: unknown ${kind} "${name}"`);
}

/** Open every configured socket; rejects (nothing left open) when one cannot listen. */
export async function startRuntimeApi(
  host: ShowHost,
  configs: readonly RuntimeSocketConfig[],
  log: Logger,
  options: RuntimeApiOptions,
): Promise<RuntimeApiListener> {
  const listener = new Listener(host, log, options);
  try {
    await listener.open(configs);
  } catch (error) {
    await listener.stop();
    throw error;
  }
  return listener;
}

import cluster from 'node:cluster';
import { createServer, type Server } from 'node:net';

// How `workers: N` share a frontend's port. Two ways, decided once by the primary at start:
//
// - SO_REUSEPORT (Linux, Node >= 22.12 / 23.1): every worker binds its own listening socket
//   with `reusePort: true` and the kernel spreads new connections over them; the primary
//   touches no connection. Node takes a `reusePort` listen in a worker as an exclusive one
//   (its own handle, not the primary's), which is what makes this work inside node:cluster.
// - node:cluster round-robin (everywhere else, e.g. Node 20, which ignores `reusePort`): the
//   primary owns the socket, accepts, and hands each connection to a worker over IPC.
//
// Supported or not is probed, not read from a version table: two sockets of the primary bind
// one port with `reusePort`. Node 20 answers EADDRINUSE (the option is ignored), a platform
// without SO_REUSEPORT load balancing answers ENOTSUP (libuv refuses it there).

/** Set by the primary in each worker's environment: '1' = bind with reusePort, '0' = cluster. */
export const REUSEPORT_ENV = 'SWITCHYARD_REUSEPORT';

export type ListenMode = 'reuseport' | 'cluster';

function listenOn(server: Server, host: string, port: number, reusePort: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, reusePort, exclusive: true }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a !== null ? a.port : port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
}

/** In the primary: can two sockets share one port with SO_REUSEPORT on this runtime and OS? */
export async function probeReusePort(): Promise<boolean> {
  const a = createServer();
  const b = createServer();
  try {
    const port = await listenOn(a, '127.0.0.1', 0, true);
    await listenOn(b, '127.0.0.1', port, true);
    return true;
  } catch {
    return false;
  } finally {
    await close(a);
    await close(b);
  }
}

/**
 * The mode the primary uses: `SWITCHYARD_REUSEPORT=0` (or `=1`) in the primary's environment
 * forces it (to compare both, or to stay on cluster sharing), otherwise the probe decides.
 */
export async function chooseListenMode(env: NodeJS.ProcessEnv = process.env): Promise<ListenMode> {
  const forced = env[REUSEPORT_ENV];
  if (forced === '0') return 'cluster';
  if (forced === '1' || (await probeReusePort())) return 'reuseport';
  return 'cluster';
}

/**
 * With SO_REUSEPORT a second switchyard (same user) would silently share a port instead of
 * failing on it; so before forking, the primary binds every port once without the option
 * (nothing else may hold it) and lets go. Throws `frontend NAME: cannot listen on ...`.
 */
export async function assertPortsFree(binds: readonly { name: string; host: string; port: number }[]): Promise<void> {
  for (const b of binds) {
    if (b.port === 0) continue;
    const server = createServer();
    try {
      await listenOn(server, b.host, b.port, false);
    } catch (error) {
      throw new Error(`frontend ${b.name}: cannot listen on ${b.host}:${b.port}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, {
        cause: error,
      });
    } finally {
      await close(server);
    }
  }
}

/**
 * For the frontend listener (src/balancer/listener.ts): listen with `reusePort` on this port?
 * Only in a worker whose primary chose SO_REUSEPORT, and never for port 0: each worker would
 * get a port of its own, while cluster sharing gives them all the same one.
 */
export function listenReusePort(port: number): boolean {
  return port !== 0 && cluster.isWorker && process.env[REUSEPORT_ENV] === '1';
}

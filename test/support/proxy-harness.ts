// Builds normalised Config objects for proxy-core tests (without the YAML loader) and starts
// switchyard in-process on ephemeral ports.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, connect, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { BackendConfig, Config, FrontendConfig, Mode } from '../../src/config/types.js';
import { startSwitchyard, type Switchyard } from '../../src/switchyard.js';
import { backendConfig as baseBackendConfig } from './backend-config.js';
import { pino } from 'pino';

export const quietLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function frontendConfig(name: string, mode: Mode, backend: string, over: Partial<FrontendConfig> = {}): FrontendConfig {
  return {
    name,
    mode,
    backend,
    bind: { host: '127.0.0.1', port: 0 },
    timeouts: { clientMs: 30000, httpRequestMs: 10000, keepAliveMs: 60000, handshakeMs: 10000 },
    maxconn: 0,
    maxconnPerSource: 0,
    rateLimit: null,
    trustedProxies: [],
    routing: { routes: [], requestHeaders: null, responseHeaders: null, requestId: null },
    limits: { maxRequestLine: 8192, maxHeaderBytes: 32768, maxHeaders: 100, obsFold: 'reject' },
    tls: null,
    redirectHttps: null,
    sniRoutes: null,
    acceptProxy: false,
    trustedSources: [],
    ...over,
  };
}

export function backendConfig(name: string, mode: Mode, addresses: readonly string[], over: Partial<BackendConfig> = {}): BackendConfig {
  return baseBackendConfig(
    addresses.map((address) => ({ address })),
    { name, mode, ...over },
  );
}

export function config(frontends: FrontendConfig[], backends: BackendConfig[], over: Partial<Config> = {}): Config {
  return {
    source: null,
    stats: { bind: { host: '127.0.0.1', port: 0 }, auth: null, read: 'public', allowedHosts: [], sockets: [] },
    consul: null,
    workers: 1,
    shutdownTimeoutMs: 5000,
    logging: { level: 'silent', access: { enabled: false, sample: 1 } },
    frontends,
    backends,
    ...over,
  };
}

export async function start(cfg: Config): Promise<Switchyard> {
  return startSwitchyard({ config: cfg, logger: quietLogger, watch: false });
}

export interface TestHttpServer {
  server: HttpServer;
  address: string;
  port: number;
  /** Requests seen, in order. */
  seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

/** An HTTP server answering `name` (or what `handler` does), recording what it received. */
export async function httpServer(name: string, handler?: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<TestHttpServer> {
  const seen: TestHttpServer['seen'] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (handler) handler(req, res, body);
      else {
        res.setHeader('content-type', 'text/plain');
        res.end(name);
      }
    });
  });
  server.keepAliveTimeout = 60000;
  // Track sockets ourselves: upgraded ones are no longer the server's to close.
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    seen,
    port,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A raw TCP server; `onSocket` decides what to do (echo by default). */
export async function tcpServer(
  onSocket?: (s: Socket) => void,
): Promise<{ server: NetServer; port: number; address: string; received: Buffer[]; close(): Promise<void> }> {
  const received: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => received.push(d));
    if (onSocket) onSocket(s);
    else {
      s.pipe(s);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on (bound then released). */
export async function deadPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Send raw bytes, collect everything until the server closes or `idleMs` passes. */
export function rawRequest(port: number, data: string | Buffer, idleMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer = setTimeout(() => s.destroy(), idleMs);
    s.on('data', (d) => {
      chunks.push(d);
      clearTimeout(timer);
      timer = setTimeout(() => s.destroy(), idleMs);
    });
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.on('error', reject);
    s.write(data);
  });
}

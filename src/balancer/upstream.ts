import { connect } from 'node:net';
import type { ClientSocket, ServerSocket } from '../model/proxy-socket.js';
import { rawConnect } from './raw-socket.js';
import type { Server } from '../model/server.js';
import type { BackendConfig, BackendTlsConfig } from '../config/types.js';
import { connectTls, sameTls } from './upstream-tls.js';
import { coarseNow } from './sweeper.js';
import { firstBufferTaken, firstReadBuffer, readOptions, readerOf, setReader, SERVER_READ_BYTES, type SocketReader } from './read-buffer.js';
import { proxyHeader } from '../proxy-protocol/header.js';
import { clientEndpoints } from './client-address.js';

// Connections to servers. HTTP mode keeps idle keep-alive connections per server (LIFO, so the
// warmest socket is reused) in `server.idle`; a connection carries one request at a time and
// goes back to the pool when its response completed cleanly.
//
// Socket events are bound once per socket to module-level functions that dispatch to the
// current owner (`upstream.owner`), so taking a pooled connection costs no listener churn.
// Reads arrive through read-buffer.ts (`onread`), not 'data' events.

// How long a pooled connection may sit idle is the backend's `timeouts.server_keep_alive`
// (default 4 s): below the servers' own keep-alive (Node and Apache close after 5 s), so that
// switchyard closes first and never writes a request into a connection the server is closing.
/** Idle connections kept per server at most. */
export const MAX_IDLE_PER_SERVER = 256;

/** What owns an upstream connection while it carries a request: an HTTP session. */
export interface UpstreamOwner {
  /** The client connection this traffic belongs to (its endpoints go in a PROXY header). */
  readonly socket: ClientSocket;
  onUpstreamConnect(up: Upstream): void;
  /** Returns true when it keeps a reference to `chunk` (see read-buffer.ts). */
  onUpstreamData(up: Upstream, chunk: Buffer): boolean;
  onUpstreamEnd(up: Upstream): void;
  onUpstreamClose(up: Upstream, error: Error | null): void;
  onUpstreamDrain(up: Upstream): void;
}

export class Upstream implements SocketReader {
  owner: UpstreamOwner | null = null;
  connected = false;
  /** Taken from the pool (a keep-alive connection that may have been closed by the server). */
  reused = false;
  idleSince = 0;
  lastError: Error | null = null;
  readonly connectStarted: number;
  /** The address connected to: a reload may move the server (same identity) elsewhere. */
  readonly address: string;
  /**
   * With `send_proxy`: the client connection whose endpoints the PROXY header carried. Such a
   * connection speaks for that client only, so only that client's later requests reuse it
   * (HAProxy keys reuse of send-proxy connections by the addresses they carry).
   */
  proxiedFor: ClientSocket | null = null;
  /** The backend's TLS settings this connection was made with (null: plain). */
  tls: BackendTlsConfig | null = null;

  constructor(
    readonly socket: ServerSocket,
    readonly server: Server,
    /** TLS to the server: usable once the handshake completed, not at TCP connect. */
    secure = false,
  ) {
    this.connectStarted = Date.now();
    this.address = server.address;
    server.overload.connections++;
    setReader(socket, this, true);
    socket.on(secure ? 'secureConnect' : 'connect', onConnect);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.on('drain', onDrain);
  }

  /** Give back to the server's idle pool (the response completed and both sides agree to keep it). */
  release(): void {
    this.owner = null;
    const server = this.server;
    server.sessions.delete(this.socket);
    // Not pooled when the server moved while this connection was busy: closeIdle() only saw the
    // idle ones, and reusing this would keep sending the server's traffic to its old address.
    if (
      server.retired ||
      !server.up ||
      server.idle.length >= MAX_IDLE_PER_SERVER ||
      this.socket.destroyed ||
      this.address !== server.address ||
      (this.proxiedFor !== null && this.proxiedFor.destroyed)
    ) {
      this.socket.destroy();
      return;
    }
    this.idleSince = coarseNow;
    server.idle.push(this.socket);
  }

  onRead(chunk: Buffer): boolean {
    if (this.owner !== null) return this.owner.onUpstreamData(this, chunk);
    this.socket.destroy(); // bytes on an idle connection: the server is confused; drop it
    return false;
  }

  /** Close and forget (errors, protocol problems, server going away). */
  destroy(): void {
    this.owner = null;
    this.server.sessions.delete(this.socket);
    this.socket.destroy();
  }
}

/** The Upstream a socket belongs to. */
function upstreamOf(socket: ServerSocket): Upstream {
  return readerOf<Upstream>(socket);
}

function onConnect(this: ServerSocket): void {
  const u = upstreamOf(this);
  u.connected = true;
  u.owner?.onUpstreamConnect(u);
}

function onEnd(this: ServerSocket): void {
  const u = upstreamOf(this);
  if (u.owner !== null) u.owner.onUpstreamEnd(u);
  else this.destroy();
}

function onError(this: ServerSocket, error: Error): void {
  upstreamOf(this).lastError = error;
}

function onClose(this: ServerSocket): void {
  const u = upstreamOf(this);
  u.server.overload.connections--;
  removeIdle(u.server, this);
  u.server.sessions.delete(this);
  const owner = u.owner;
  u.owner = null;
  if (owner !== null) owner.onUpstreamClose(u, u.lastError);
}

function onDrain(this: ServerSocket): void {
  const u = upstreamOf(this);
  u.owner?.onUpstreamDrain(u);
}

function removeIdle(server: Server, socket: ServerSocket): void {
  const idle = server.idle;
  const i = idle.lastIndexOf(socket);
  if (i !== -1) idle.splice(i, 1);
}

/**
 * A pooled idle connection to `server` idle for less than `maxIdleMs`, or null. `tls`: the
 * backend's current TLS settings; a connection made under other ones (a reload turned TLS on
 * or off, or changed its CA...) is closed instead of reused.
 */
export function takeIdle(server: Server, owner: UpstreamOwner, maxIdleMs: number, tls: BackendTlsConfig | null = null): Upstream | null {
  const idle = server.idle;
  if (server.sendProxy !== 0) return takeIdleProxied(server, owner);
  const now = coarseNow;
  while (idle.length > 0) {
    const socket = idle.pop()!;
    if (socket.destroyed || !socket.writable) continue;
    const u = upstreamOf(socket);
    if (now - u.idleSince >= maxIdleMs) {
      // Past its idle time (the trimmer runs once a second): LIFO, so every older one is too.
      socket.destroy();
      while (idle.length > 0) idle.pop()!.destroy();
      return null;
    }
    if (u.tls !== tls) {
      if (!sameTls(u.tls, tls)) {
        socket.destroy();
        continue;
      }
      u.tls = tls; // equal settings of a newer config generation: compared once
    }
    u.owner = owner;
    u.reused = true;
    server.sessions.add(socket);
    return u;
  }
  return null;
}

/** send_proxy: only a connection opened for this same client connection may carry its request. */
function takeIdleProxied(server: Server, owner: UpstreamOwner): Upstream | null {
  const idle = server.idle;
  for (let i = idle.length - 1; i >= 0; i--) {
    const socket = idle[i]!;
    const u = upstreamOf(socket);
    if (u.proxiedFor !== owner.socket) continue;
    idle.splice(i, 1);
    if (socket.destroyed || !socket.writable) continue;
    u.owner = owner;
    u.reused = true;
    server.sessions.add(socket);
    return u;
  }
  return null;
}

/** Open a new connection to `server`; events go to `owner`. `backend` given: its tls settings apply. */
export function openUpstream(server: Server, owner: UpstreamOwner, allowHalfOpen: boolean, backend: BackendConfig | null = null): Upstream {
  // circuit_breaker.max_connections: a pooled idle connection gives way to this one.
  if (server.overload.maxConnections > 0) server.overload.makeRoomForConnection();
  const secure = backend !== null && backend.tls !== null;
  const socket = secure ? onreadTaken(connectTls(server, backend, allowHalfOpen, readOptions(SERVER_READ_BYTES))) : connectPlain(server, allowHalfOpen);
  const u = new Upstream(socket, server, secure);
  u.tls = secure ? backend.tls : null;
  u.owner = owner;
  server.sessions.add(socket);
  // send_proxy: the header goes first, queued until the connection opens (HAProxy send-proxy).
  // (send_proxy with tls to the servers is refused by the config checks.)
  if (server.sendProxy !== 0 && !secure) {
    socket.write(proxyHeader(server.sendProxy, clientEndpoints(owner.socket)));
    u.proxiedFor = owner.socket;
  }
  return u;
}

/**
 * A plain connection to `server`: a RawSocket (raw-socket.ts) to an IP address where the runtime
 * allows, else net.connect (which also looks names up). A RawSocket is always half-open capable
 * (its end is explicit); `allowHalfOpen` false only matters to net, and the HTTP server side ends
 * or drops a connection whose server sent its FIN itself.
 */
function connectPlain(server: Server, allowHalfOpen: boolean): ServerSocket {
  if (server.ipFamily !== 0) {
    const raw = rawConnect(server.host, server.port, server.ipFamily, firstReadBuffer(SERVER_READ_BYTES));
    if (raw !== null) return raw;
  }
  return onreadTaken(connect({ host: server.host, port: server.port, noDelay: true, allowHalfOpen, onread: readOptions(SERVER_READ_BYTES) }));
}

/** `socket`, just created with readOptions(), if the runtime took its first read buffer. */
function onreadTaken<T extends ServerSocket>(socket: T): T {
  if (firstBufferTaken()) return socket;
  socket.destroy();
  throw new Error(`this Node.js (${process.version}) does not take net.connect's onread buffer at creation; switchyard needs it`);
}

/** Close pooled connections idle for `maxIdleMs` or longer (called once a second by switchyard.ts). */
export function trimIdle(server: Server, now: number, maxIdleMs: number): void {
  const idle = server.idle;
  while (idle.length > 0) {
    const oldest = upstreamOf(idle[0]!);
    if (now - oldest.idleSince < maxIdleMs) break;
    idle.shift()!.destroy();
  }
}

/** Short reason for logs and error bodies: `connection refused`, `timeout`, `reset`. */
export function describeError(error: NodeJS.ErrnoException | null): string {
  const code = error?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENOTFOUND':
      return 'host not found';
    default:
      return error ? (code ?? error.message) : 'connection closed';
  }
}

import type { ClientSocket } from '../model/proxy-socket.js';
import type { Backend } from '../model/backend.js';
import type { Frontend } from '../model/frontend.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';
import type { StrategyServer } from '../strategies/strategy.js';
import type { AccessLog } from './access-log.js';
import { clientIpOf } from './client-address.js';
import { describeError, openUpstream, type Upstream, type UpstreamOwner } from './upstream.js';
import {
  abortConnectOnTimeout,
  connectFailed,
  connectSucceeded,
  endRetry,
  NO_RETRY_LEFT,
  QUEUED,
  refusalWhy,
  releaseAttempt,
  retryElsewhere,
  waitOrRefuse,
  type ServerAttempt,
} from './server-connect.js';
import { coarseNow, track, untrack, type Expirable } from './sweeper.js';
import { readerOf, setReader, writeKept, type SocketReader } from './read-buffer.js';
import { NO_SERVER } from '../overload/refusals.js';
import type { QueueWaiter, WaitList } from '../overload/wait-list.js';

// One client connection in TCP mode: a server is picked per connection, the connect is retried
// on another server when refused, then bytes flow both ways with backpressure. Half-close is
// passed through (client FIN → server FIN, and back), so request/response protocols that end
// their request by shutting down the write side work. Picking, queueing, connect failures and
// retries are server-connect.ts's, shared with HTTP mode.

/** Client bytes held before a server connection exists, at most (more waits in the kernel). */
const MAX_EARLY_BYTES = 65536;

export interface TcpListenerContext {
  readonly frontend: Frontend;
  readonly accessLog: AccessLog | null;
  /** Client sockets were created with `onread` (read-buffer.ts): reads come through onRead. */
  readonly onreadClients: boolean;
  sessionClosed(session: TcpSession): void;
}

export class TcpSession implements UpstreamOwner, SocketReader, Expirable, ServerAttempt, BalanceContext {
  deadline = 0;
  /** Inactivity allowed either way: min(timeout client, timeout server), as HAProxy applies both. */
  private idleMs: number;
  private readonly frontend: Frontend;
  private readonly backend: Backend;
  server: Server | null = null;
  private upstream: Upstream | null = null;
  /** The session is its own balance context: no object per connection for it. */
  readonly ctx: BalanceContext = this;
  avoid: StrategyServer | null = null;
  /** Cookie stickiness is HTTP's: always null here. */
  stickyCookie: string | null = null;
  setStickyCookie: string | null = null;
  /** The client's address once read (clientIp). */
  private peer: string | null = null;
  retriesLeft: number;
  private readonly start = Date.now();
  private connectedAt = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private clientEnded = false;
  /** The server sent its FIN (passed on to the client). */
  private serverEnded = false;
  private closed = false;
  private error = '';
  /** The server of the last attempt, for the log (releasing the attempt forgets `server`). */
  private serverName: string | null = null;
  // --- waiting in the backend's queue (src/overload/wait-list.ts)
  waitNext: QueueWaiter | null = null;
  waitPrev: QueueWaiter | null = null;
  waitList: WaitList | null = null;
  waitSince = 0;
  /** This session counts as an open retry of its backend (circuit breaker). */
  retrying = false;

  constructor(
    readonly socket: ClientSocket,
    private readonly listener: TcpListenerContext,
    /** SNI routing chose the backend; default: the frontend's. */
    backend: Backend | null = null,
    /** Bytes already read from the client (a ClientHello), sent to the server first. */
    private early: Buffer | null = null,
  ) {
    this.frontend = listener.frontend;
    this.backend = backend ?? this.frontend.backend;
    // The access log names the client when the connection has closed, when the socket can no
    // longer say: read it now. Otherwise only what needs it reads it (clientIp).
    if (listener.accessLog !== null) this.peer = clientIpOf(socket);
    this.retriesLeft = this.backend.config.retries;
    setReader(socket, this, listener.onreadClients);
    socket.on('end', onClientEnd);
    socket.on('close', onClientClose);
    socket.on('error', noop);
    socket.on('drain', onClientDrain);
    this.idleMs = Math.min(this.frontend.config.timeouts.clientMs, this.backend.config.timeouts.serverMs);
    track(this);
    this.connect();
  }

  /**
   * The client's address (a PROXY header's, else the socket's peer), read when first asked: in
   * TCP mode only ip-hash, source stickiness and the access log need it (per-source limits and
   * send_proxy read the socket themselves), and reading the peer is a getpeername(2) and an
   * object, 3.4 % of the CPU of a short connection (docs/performance.md).
   */
  get clientIp(): string {
    return (this.peer ??= clientIpOf(this.socket));
  }

  private connect(): void {
    const server = this.backend.pick(this.ctx);
    if (server === null) this.noServerNow(true);
    else this.useServer(server);
  }

  /**
   * Every server it may use is full: wait in the queue (what the client sends meanwhile is held,
   * holdEarly; not on a retry), or give up.
   */
  private noServerNow(mayWait: boolean): void {
    const now = Date.now();
    const limit = waitOrRefuse(this, this.backend, now, mayWait);
    if (limit === QUEUED) this.deadline = now + this.backend.overload.queueTimeoutMs;
    else this.refused(refusalWhy(limit));
  }

  private refused(why: string): void {
    this.error = why;
    this.backend.counters.response(503, 0);
    this.finish(true);
  }

  /** Out of the queue: a slot freed on `server`, or none came (`limit`: why). */
  dequeued(server: Server | null, limit: string): void {
    if (server !== null) this.useServer(server);
    else this.refused(refusalWhy(limit));
  }

  private useServer(server: Server): void {
    const backend = this.backend;
    this.server = server;
    this.serverName = server.name;
    backend.opened(server, Date.now());
    const up = openUpstream(server, this, true, backend.config);
    this.upstream = up;
    this.deadline = Date.now() + backend.config.timeouts.connectMs;
  }

  onUpstreamConnect(up: Upstream): void {
    if (up !== this.upstream || this.closed) return;
    const now = Date.now();
    this.connectedAt = now;
    connectSucceeded(this.backend, this.server!, up, now);
    // A TCP retry is open until its connection is made, not for the session's whole life.
    endRetry(this, this.backend);
    this.deadline = now + this.idleMs;
    const early = this.early;
    if (early !== null) {
      // Kept until a connection succeeds: a refused connect retries elsewhere with the same bytes.
      this.early = null;
      this.onClientData(early);
    }
    // Reading stopped while the connection was made (holdEarly, or accepted paused: TLS, SNI).
    if ((early === null || !up.socket.writableNeedDrain) && this.socket.isPaused()) this.socket.resume();
    if (this.clientEnded) up.socket.end();
  }

  /** A client read through `onread`: true when `chunk` is still referenced afterwards. */
  onRead(chunk: Buffer): boolean {
    const up = this.upstream;
    if (up === null || !up.connected) return this.holdEarly(chunk);
    const queued = up.socket.writableLength;
    this.onClientData(chunk);
    return writeKept(up.socket, queued);
  }

  /**
   * Client bytes before the server connection is made (a client speaks first: an HTTP request,
   * a TLS ClientHello): kept for the server, and for a retry on another one. Reading at accept
   * instead of accepting paused and resuming after the connect saves an event-loop turn per
   * connection: the bytes are in hand when the connection opens (docs/performance.md). They are
   * copied (a read buffer is only lent for the call, and a small copy costs less than a fresh
   * read buffer), and reading goes on until MAX_EARLY_BYTES are held: pausing and resuming a
   * socket that sent one request would cost two epoll_ctl calls and a tick per connection.
   */
  private holdEarly(chunk: Buffer): boolean {
    if (this.closed) return false;
    const early = this.early;
    const held = early === null ? Buffer.from(chunk) : Buffer.concat([early, chunk]);
    this.early = held;
    if (held.length >= MAX_EARLY_BYTES) this.socket.pause();
    return false;
  }

  private onClientData(chunk: Buffer): void {
    const up = this.upstream;
    if (up === null) return; // closing: nothing takes these bytes
    this.bytesIn += chunk.length;
    this.deadline = coarseNow + this.idleMs;
    this.frontend.counters.bin += chunk.length;
    this.server!.counters.bin += chunk.length;
    this.backend.counters.bin += chunk.length;
    if (!up.socket.write(chunk)) this.socket.pause();
  }

  onUpstreamData(up: Upstream, chunk: Buffer): boolean {
    if (up !== this.upstream) return false;
    this.bytesOut += chunk.length;
    this.deadline = coarseNow + this.idleMs;
    this.frontend.counters.bout += chunk.length;
    this.server!.counters.bout += chunk.length;
    this.backend.counters.bout += chunk.length;
    const socket = this.socket;
    const queued = socket.writableLength;
    if (!socket.write(chunk)) up.socket.pause();
    return writeKept(socket, queued);
  }

  onClientDrain(): void {
    this.upstream?.socket.resume();
  }

  onUpstreamDrain(up: Upstream): void {
    if (up === this.upstream) this.socket.resume();
  }

  onClientEnd(): void {
    this.clientEnded = true;
    const up = this.upstream;
    if (up === null || !up.connected) return;
    // Both sides sent their FIN and nothing is left to write to the server: close it now
    // instead of a graceful shutdown (one syscall and a callback less per connection; the
    // common end of a short TCP connection, where the server closes first).
    if (this.serverEnded && up.socket.writableLength === 0) this.finish(false);
    else up.socket.end();
  }

  onUpstreamEnd(up: Upstream): void {
    if (up !== this.upstream) return;
    this.serverEnded = true;
    this.socket.end();
  }

  onUpstreamClose(up: Upstream, error: Error | null): void {
    if (up !== this.upstream || this.closed) return;
    const server = this.server!;
    const backend = this.backend;
    if (!up.connected) {
      const why = connectFailed(backend, server, error);
      this.upstream = null;
      const next = retryElsewhere(this, backend, server);
      if (typeof next !== 'string') this.useServer(next);
      else if (next === NO_SERVER)
        this.noServerNow(false); // a retry does not wait in the queue
      else {
        this.error = next === NO_RETRY_LEFT ? why : `${why}; no retry: ${next}`;
        this.finish(true);
      }
      return;
    }
    if (error !== null) {
      server.counters.srvAbrt++;
      this.error = describeError(error);
      this.finish(true);
    } else {
      // Orderly close from the server: our FIN went out on 'end'; close once written.
      this.finish(false);
    }
  }

  onClientClose(): void {
    if (!this.closed) {
      this.closed = true;
      const up = this.upstream;
      this.upstream = null;
      if (up !== null) up.destroy();
    }
    this.log();
    this.releaseServer();
    untrack(this);
    this.listener.sessionClosed(this);
  }

  private releaseServer(): void {
    releaseAttempt(this, this.backend);
  }

  private finish(abort: boolean): void {
    if (this.closed) return;
    this.closed = true;
    const up = this.upstream;
    this.upstream = null;
    if (up !== null) up.destroy();
    this.releaseServer();
    if (abort) this.socket.destroy();
    // Ending a socket twice makes Node build an ERR_STREAM_ALREADY_FINISHED error (a stack
    // trace per connection).
    else if (!this.socket.writableEnded) this.socket.end();
  }

  expire(now: number): void {
    this.deadline = 0;
    if (this.waitList !== null) {
      this.backend.overload.timedOut(this, now);
      return;
    }
    if (abortConnectOnTimeout(this.upstream)) return;
    this.error = 'timeout';
    this.finish(true);
  }

  /** Graceful stop: TCP connections run until they end or the shutdown timeout. */
  stop(): void {}

  private log(): void {
    const log = this.listener.accessLog;
    if (log === null) return;
    log.tcp({
      frontend: this.frontend.name,
      backend: this.backend.name,
      server: this.serverName,
      client: this.clientIp,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      connectMs: this.connectedAt > 0 ? this.connectedAt - this.start : -1,
      totalMs: Date.now() - this.start,
      error: this.error,
    });
  }
}

function tcp(socket: ClientSocket): TcpSession {
  return readerOf<TcpSession>(socket);
}
function onClientEnd(this: ClientSocket): void {
  tcp(this).onClientEnd();
}
function onClientClose(this: ClientSocket): void {
  tcp(this).onClientClose();
}
function onClientDrain(this: ClientSocket): void {
  tcp(this).onClientDrain();
}
function noop(): void {}

import type { Socket } from 'node:net';
import type { Backend } from '../model/backend.js';
import type { Frontend } from '../model/frontend.js';
import type { FrontendConfig } from '../config/types.js';
import { isTrustedPeer } from './trusted-proxies.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';
import { ChunkedScanner } from './chunked.js';
import { HttpHead } from './http-head.js';
import { cannedResponse } from './responses.js';
import { forwardingLines, normalizeIp } from './head-rewrite.js';
import { carriedOf } from './client-address.js';
import { coarseNow, track, type Expirable } from './sweeper.js';
import { describeError, openUpstream, takeIdle, type Upstream, type UpstreamOwner } from './upstream.js';
import { abortConnectOnTimeout, connectFailed, connectSucceeded, NO_RETRY_LEFT, QUEUED, refusalWhy, releaseAttempt, retryElsewhere, waitOrRefuse, type ServerAttempt } from './server-connect.js';
import type { HttpSession } from './http-session.js';
import type { AccessLog } from './access-log.js';
import type { RequestView } from '../routing/request-view.js';
import { NO_SERVER } from '../overload/refusals.js';
import type { QueueWaiter, WaitList } from '../overload/wait-list.js';

// One client connection in HTTP mode, in three layers (one class, three files of one job each):
//   http-exchange.ts  (this file) the state of the connection and of its current exchange, the
//                     server connection (pick, pool or connect, retry) and how an exchange ends
//                     (local answers 502/503/504, aborts, timeouts, the access log);
//   http-response.ts  what comes back from the server: the response head, its framing, the
//                     body relayed with backpressure, upgrades into a tunnel;
//   http-session.ts   what comes from the client: request heads with our own HTTP/1.1
//                     framing, the rewritten head and the body to the server, pipelining.
// One request is in flight at a time; pipelined requests wait in `pending` (RFC 9112 §9.3.2).
// Bodies stream through with backpressure both ways; chunked bodies are passed byte for byte
// while a scanner finds their end.
//
// Hot path rules: socket events go to module-level functions; state lives in fields declared
// here (one object shape); canned responses are prebuilt Buffers.

// Where the connection is (`phase`).
/** Waiting for (the rest of) a request head. */
export const PHASE_HEAD = 0;
/** Request head forwarded (or held while connecting); request body and/or response under way. */
export const PHASE_EXCHANGE = 1;
/** 101 Switching Protocols: bytes both ways. */
export const PHASE_TUNNEL = 2;
/** Closing: ignore further input. */
export const PHASE_CLOSED = 3;

export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
/** Response body delimited by the server closing the connection. */
export const BODY_CLOSE = 3;

/** Methods safe to send again after a connection dropped without a response (RFC 9110 §9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Request body bytes kept for a re-send after they went to a server (`retry_on` beyond
 * conn-failure, and the keep-alive race): a bigger body is not sent twice. HAProxy's bound is
 * its buffer size (`tune.bufsize`, 16 KiB); one of our largest reads is kept here.
 */
export const MAX_REPLAY_BODY = 65536;

/** What a session needs from the listener that accepted it. */
export interface HttpListenerContext {
  readonly frontend: Frontend;
  /** True once a graceful stop began: finish the current exchange, then close. */
  readonly stopping: boolean;
  readonly accessLog: AccessLog | null;
  /** Client sockets were created with `onread` (read-buffer.ts): reads come through onRead. */
  readonly onreadClients: boolean;
  /** The frontend terminates TLS: forwarded proto is https. */
  readonly secure: boolean;
  sessionClosed(session: HttpSession): void;
}

export abstract class HttpExchange implements UpstreamOwner, Expirable, ServerAttempt {
  deadline = 0;
  phase = PHASE_HEAD;
  readonly clientIp: string;
  /** X-Forwarded-For / -Proto / Forwarded lines for a client that sent no X-Forwarded-For. */
  protected readonly forwardedLines: string;
  /** How the client reached us: X-Forwarded-Proto / Forwarded proto. */
  protected readonly proto: 'http' | 'https';
  protected readonly reqHead: HttpHead;
  protected readonly resHead: HttpHead;
  protected readonly reqChunks = new ChunkedScanner();
  protected readonly resChunks = new ChunkedScanner();
  readonly ctx: BalanceContext;
  /** Unconsumed client bytes: a partial head, or pipelined requests waiting their turn. */
  protected pending: Buffer | null = null;
  /** Storage for `pending` when it grows over several reads (appendPending). */
  protected acc: Buffer | null = null;
  protected accUsed = 0;
  /** Partial response head from the server. */
  protected resPending: Buffer | null = null;
  /** When the current head began to arrive (http_request timeout). */
  protected headStart = 0;

  // --- the current exchange
  protected frontend: Frontend;
  protected backend: Backend | null = null;
  server: Server | null = null;
  protected upstream: Upstream | null = null;
  /** Bytes for the server held until the connection opens (head + early body). */
  protected held: Buffer[] | null = null;
  /** The rewritten request head, kept while a retry could still resend it. */
  protected requestOut: Buffer | null = null;
  retriesLeft = 0;
  protected reqBody = BODY_NONE;
  protected reqRemaining = 0;
  protected reqDone = false;
  protected resBody = BODY_NONE;
  protected resRemaining = 0;
  protected resStarted = false;
  protected resDone = false;
  protected isHeadRequest = false;
  protected wantsTunnel = false;
  /** The client may keep the connection after this exchange. */
  protected keepAlive = true;
  /** The server connection may be pooled after this exchange. */
  protected upstreamReusable = false;
  protected start = 0;
  protected connectedAt = 0;
  protected status = 0;
  protected bytesIn = 0;
  protected bytesOut = 0;
  protected method = '';
  protected target = '';
  /** The sticky cookie of this exchange's backend ('' when cookie stickiness is off). */
  protected stickyCookieName = '';
  /** The current client / server read's chunk is still referenced by a queued write. */
  protected clientChunkKept = false;
  protected serverChunkKept = false;
  /** The connection's request view (src/routing), made on its first routed request. */
  protected view: RequestView | null = null;
  /** The view when the current exchange was routed; null on a frontend with nothing to decide. */
  protected routed: RequestView | null = null;
  // --- waiting in the backend's queue (src/overload/wait-list.ts)
  waitNext: QueueWaiter | null = null;
  waitPrev: QueueWaiter | null = null;
  waitList: WaitList | null = null;
  waitSince = 0;
  /** This exchange counts as an open retry of its backend (circuit breaker). */
  retrying = false;
  /** Accepted over `rate_limit.connections` for its address (listener.ts): its first request gets 429. */
  connLimited = false;
  /**
   * Inactivity clocks (coarseNow): the last byte from or to the client, and the last byte sent
   * to or received from the server. Timeouts blame the side we were waiting on (expireExchange).
   */
  protected clientActive = 0;
  protected serverActive = 0;
  /** The request may still be sent again from `requestOut` + `replayBody` (retries after bytes left). */
  protected replayable = false;
  /** Body bytes of this request already consumed, kept for a re-send (null: none or too big). */
  protected replayBody: Buffer[] | null = null;
  protected replayBytes = 0;
  /** The connection's immediate peer (trusted_proxies is checked against it, not clientIp). */
  protected readonly peerAddress: string;
  /** Whether peerAddress is a trusted proxy, for `trustFor` (a frontend config generation). */
  private trustFor: FrontendConfig | null = null;
  private trusted = false;

  constructor(
    readonly socket: Socket,
    protected readonly listener: HttpListenerContext,
  ) {
    this.frontend = listener.frontend;
    // The client as the PROXY header (accept_proxy) carried it, else the socket's peer: the
    // address trusted_proxies judges too, as HAProxy's `src` is the carried one.
    this.peerAddress = carriedOf(socket)?.srcIp ?? socket.remoteAddress ?? '';
    const ip = normalizeIp(this.peerAddress);
    this.clientIp = ip;
    this.proto = listener.secure ? 'https' : 'http';
    this.forwardedLines = forwardingLines(ip, null, this.proto);
    const limits = this.frontend.config.limits;
    this.reqHead = new HttpHead(limits);
    this.resHead = new HttpHead({ maxRequestLine: limits.maxRequestLine, maxHeaderBytes: Math.max(limits.maxHeaderBytes, 65536), maxHeaders: Math.max(limits.maxHeaders, 200) });
    this.ctx = { clientIp: ip, avoid: null, stickyCookie: null, setStickyCookie: null };
    track(this);
    this.deadline = coarseNow + this.frontend.config.timeouts.httpRequestMs;
  }

  /** Whether this connection's peer is in the current frontend config's trusted_proxies. */
  protected peerTrusted(): boolean {
    const config = this.frontend.config;
    if (config !== this.trustFor) {
      this.trustFor = config;
      this.trusted = isTrustedPeer(config, this.peerAddress);
    }
    return this.trusted;
  }

  /** A server read (response side): true when `chunk` is still referenced afterwards. */
  abstract onUpstreamData(up: Upstream, chunk: Buffer): boolean;
  /** Both directions complete: pool the server connection and serve the next request (client side). */
  protected abstract finishExchange(): void;
  /** Answer a request we will not forward, then close (client side). */
  protected abstract reject(status: number, why: string): void;

  /** Pick a server and get a connection to it. Returns false when the exchange ended (503). */
  protected connectServer(now: number): boolean {
    const server = this.backend!.pick(this.ctx);
    if (server === null) return this.noServerNow(now);
    this.useServer(server, now);
    return true;
  }

  /** The server is chosen (now, or when a queue slot freed): counters, a pooled or a new connection. */
  protected useServer(server: Server, now: number): void {
    const backend = this.backend!;
    this.server = server;
    backend.opened(server, now);
    server.counters.reqTot++;
    backend.counters.reqTot++;
    const held = this.held;
    if (held === null) this.countToServer(this.requestOut!.length);
    else for (let i = 0; i < held.length; i++) server.counters.bin += held[i]!.length; // queued: the backend counted them
    const idle = takeIdle(server, this, backend.config.timeouts.serverKeepAliveMs, backend.config.tls);
    if (idle !== null) {
      // The common case: a warm pooled connection, the head goes out now.
      this.upstream = idle;
      this.connectedAt = now;
      this.armExchange();
      if (held === null) {
        if (!idle.socket.write(this.requestOut!)) this.socket.pause();
      } else {
        this.flushHeld(idle);
        if (!this.reqDone && !idle.socket.writableNeedDrain) this.socket.resume();
      }
    } else {
      if (held === null) this.held = [this.requestOut!];
      this.upstream = openUpstream(server, this, false, backend.config);
      this.deadline = now + backend.config.timeouts.connectMs;
    }
  }

  /**
   * No server may take the request now: it waits in the backend's queue when the limit that
   * refused it allows waiting (src/overload), else 503 naming the limit. False: it ended.
   */
  private noServerNow(now: number): boolean {
    const backend = this.backend!;
    const limit = waitOrRefuse(this, backend, now, true);
    if (limit !== QUEUED) {
      this.localResponse(503, refusalWhy(limit), limit);
      return false;
    }
    // Held like bytes for a connection being opened; the body stops being read meanwhile.
    this.held = [this.requestOut!];
    this.countToServer(this.requestOut!.length);
    this.deadline = now + backend.overload.queueTimeoutMs;
    return true;
  }

  /** Out of the queue: a slot freed on `server`, or none came (`limit`: why, for the 503). */
  dequeued(server: Server | null, limit: string): void {
    if (server !== null) {
      this.useServer(server, Date.now());
      return;
    }
    this.localResponse(503, refusalWhy(limit), limit);
  }

  protected flushHeld(up: Upstream): void {
    const held = this.held!;
    this.held = null;
    const socket = up.socket;
    this.armExchange();
    if (held.length === 1) {
      if (!socket.write(held[0]!)) this.socket.pause();
      return;
    }
    socket.cork();
    for (let i = 0; i < held.length; i++) socket.write(held[i]!);
    socket.uncork();
    if (socket.writableNeedDrain) this.socket.pause();
  }

  /**
   * Both inactivity clocks start now and the sweeper looks again within the shorter timeout;
   * expireExchange() decides then who, if anyone, is late.
   */
  protected armExchange(): void {
    this.clientActive = coarseNow;
    this.serverActive = coarseNow;
    this.deadline = coarseNow + Math.min(this.frontend.config.timeouts.clientMs, this.backend!.config.timeouts.serverMs);
  }

  /** Request bytes counted for the server and backend (HAProxy's `bin`; retries count again). */
  protected countToServer(n: number): void {
    const server = this.server;
    if (server !== null) server.counters.bin += n; // null: waiting in the queue
    this.backend!.counters.bin += n;
  }

  onUpstreamConnect(up: Upstream): void {
    if (up !== this.upstream) return;
    const now = Date.now();
    this.connectedAt = now;
    connectSucceeded(this.backend!, this.server!, up, now);
    this.flushHeld(up);
    if (this.phase === PHASE_EXCHANGE && !this.reqDone) this.socket.resume();
  }

  /** Let go of the server: counters, and the connection back to the pool or closed. */
  protected releaseServer(reusable: boolean): void {
    // The connection goes back to the pool first: closed() may hand the slot to a waiter at once.
    const up = this.upstream;
    if (up !== null) {
      this.upstream = null;
      if (up.socket.isPaused()) up.socket.resume();
      if (reusable && up.owner === this) up.release();
      else up.destroy();
    }
    if (this.backend !== null) releaseAttempt(this, this.backend);
    this.held = null;
  }

  onUpstreamEnd(up: Upstream): void {
    if (up !== this.upstream) return;
    if (this.phase === PHASE_TUNNEL) {
      this.socket.end();
      return;
    }
    if (this.resStarted && this.resBody === BODY_CLOSE && !this.resDone) {
      // Close-delimited body complete.
      this.upstreamReusable = false;
      this.resDone = true;
      this.recordResponse();
      if (this.reqDone) this.finishExchange();
      else {
        this.releaseServer(false);
        this.closeAfterWrite();
      }
      return;
    }
    up.socket.destroy();
  }

  onUpstreamClose(up: Upstream, error: Error | null): void {
    if (up !== this.upstream) return;
    if (this.phase === PHASE_TUNNEL) {
      this.upstream = null;
      this.releaseServer(false);
      this.closeAfterWrite();
      return;
    }
    if (this.resDone) return;
    const server = this.server!;
    const backend = this.backend!;
    this.upstream = null;
    if (!up.connected) {
      // Connect failed: nothing of the request left us (it is all in `held`), so any method
      // may go to another server (HAProxy `retry-on conn-failure`, the default).
      const why = connectFailed(backend, server, error);
      if (backend.config.retryOn.connFailure) this.retry(server, why);
      else {
        backend.closed(server);
        this.server = null;
        this.localResponse(502, why);
      }
      return;
    }
    if (!this.resStarted && up.reused && this.canResend() && (IDEMPOTENT.has(this.method) || backend.config.retryOn.emptyResponse)) {
      // A pooled connection the server had closed (keep-alive race): send again on a fresh
      // one, counted as a retry. Without `empty-response` only idempotent methods: the server
      // may have received and acted on it before closing (RFC 9110 §9.2.2).
      this.retriesLeft--;
      server.counters.wretr++;
      backend.counters.wretr++;
      this.held = this.replayList();
      this.countToServer(this.replayBytes);
      const fresh = openUpstream(server, this, false, backend.config);
      this.upstream = fresh;
      this.deadline = Date.now() + backend.config.timeouts.connectMs;
      return;
    }
    server.counters.srvAbrt++;
    backend.observer?.failure(server, 'reset');
    if (!this.resStarted && backend.config.retryOn.emptyResponse && this.canResend()) {
      // The server took the request and closed without a byte of answer (it died, or shed
      // load): sent again to another server only when asked (`retry_on: [empty-response]`,
      // HAProxy's keyword), since a non-idempotent request may then run twice.
      this.resend(server, `server closed the connection: ${describeError(error)}`);
      return;
    }
    server.counters.eresp++;
    backend.counters.eresp++;
    if (!this.resStarted) this.localResponse(502, `server closed the connection: ${describeError(error)}`);
    else this.abort(0, 'server closed mid-response');
  }

  /** Whether the request can be sent again after bytes of it went out (and a retry is left). */
  protected canResend(): boolean {
    return this.retriesLeft > 0 && this.requestOut !== null && this.replayable;
  }

  /** The whole request so far, for a re-send: the head, then the body bytes kept. */
  protected replayList(): Buffer[] {
    const list = [this.requestOut!];
    const body = this.replayBody;
    if (body !== null) for (let i = 0; i < body.length; i++) list.push(body[i]!);
    return list;
  }

  /**
   * Keep body bytes that go to the server for a possible re-send, while the total stays under
   * MAX_REPLAY_BODY and a re-send could happen at all (idempotent method, or a `retry_on`
   * beyond conn-failure). Returns true when `data` is referenced (read-buffer.ts).
   */
  protected keepForReplay(data: Buffer): boolean {
    if (!this.replayable) return false;
    if (this.replayBody === null) {
      const on = this.backend!.config.retryOn;
      const afterSend = on.emptyResponse || on.junkResponse || on.responseTimeout || on.statuses.length > 0;
      if (this.retriesLeft <= 0 || !(afterSend || IDEMPOTENT.has(this.method))) {
        this.replayable = false;
        return false;
      }
      this.replayBody = [];
    }
    if (this.replayBytes - this.requestOut!.length + data.length > MAX_REPLAY_BODY) {
      this.replayable = false;
      this.replayBody = null;
      return false;
    }
    this.replayBody.push(data);
    this.replayBytes += data.length;
    return true;
  }

  /** Send the request again to another server after bytes of it went to `failed` (retry_on). */
  protected resend(failed: Server, why: string): void {
    const up = this.upstream;
    if (up !== null) {
      this.upstream = null;
      up.destroy();
    }
    this.held = this.replayList();
    this.retry(failed, why);
  }

  /**
   * Send what `held` has to another server, within `retries`. Callers fill `held`: after a
   * failed connect it already holds everything consumed (nothing was sent); a re-send after
   * bytes left rebuilds it from the replay copy (resend).
   */
  protected retry(failed: Server, why: string): void {
    const backend = this.backend!;
    const server = retryElsewhere(this, backend, failed);
    if (typeof server === 'string') {
      if (server === NO_RETRY_LEFT) this.localResponse(502, why);
      else if (server === NO_SERVER) this.localResponse(503, why);
      else this.localResponse(503, `${why}; no retry: ${server}`, server);
      return;
    }
    this.server = server;
    backend.opened(server, Date.now());
    server.counters.reqTot++;
    // `held` is filled by every caller (see above).
    const held = this.held!;
    let bytes = 0;
    for (let i = 0; i < held.length; i++) bytes += held[i]!.length;
    this.countToServer(bytes);
    const idle = takeIdle(server, this, backend.config.timeouts.serverKeepAliveMs, backend.config.tls);
    if (idle !== null) {
      this.upstream = idle;
      this.flushHeld(idle);
    } else {
      this.upstream = openUpstream(server, this, false, backend.config);
      this.deadline = Date.now() + backend.config.timeouts.connectMs;
    }
  }

  onUpstreamDrain(up: Upstream): void {
    if (up !== this.upstream) return;
    this.serverActive = coarseNow;
    if (this.socket.isPaused() && this.pending === null) this.socket.resume();
  }

  protected recordResponse(): void {
    const ms = Date.now() - this.start;
    const status = this.status;
    this.frontend.counters.response(status, ms);
    const backend = this.backend!;
    backend.counters.response(status, ms);
    const server = this.server;
    if (server !== null) {
      server.counters.response(status, ms);
      const observer = backend.observer;
      if (observer !== null) {
        if (status >= 500) observer.failure(server, '5xx');
        else observer.success(server);
      }
    }
    this.logAccess('');
  }

  /** Answer from the balancer itself (503, 502, 504…) and end or continue the connection. */
  protected localResponse(status: number, why: string, limit = NO_SERVER): void {
    this.status = status;
    const backend = this.backend;
    if (backend !== null) {
      if (status >= 500) backend.counters.response(status, Date.now() - this.start);
    }
    this.frontend.counters.response(status, Date.now() - this.start);
    this.logAccess(why);
    this.releaseServer(false);
    this.resDone = true;
    // A request whose body is still arriving cannot be resynchronised: close after answering.
    const close = !this.reqDone || !this.keepAlive || this.listener.stopping;
    this.socket.write(cannedResponse(status, backend?.name ?? null, close, limit));
    if (close) {
      this.closeAfterWrite();
      return;
    }
    this.finishExchange();
  }

  /** Abort an exchange mid-way: answer `status` if nothing was sent yet (0: just close). */
  protected abort(status: number, why: string): void {
    if (status !== 0 && !this.resStarted) {
      this.localResponse(status, why);
      this.closeAfterWrite();
      return;
    }
    this.logAccess(why);
    this.releaseServer(false);
    this.phase = PHASE_CLOSED;
    this.socket.destroy();
  }

  protected closeAfterWrite(): void {
    this.phase = PHASE_CLOSED;
    this.deadline = 0;
    this.socket.end();
  }

  close(): void {
    this.phase = PHASE_CLOSED;
    this.deadline = 0;
    this.socket.end();
  }

  /** Graceful stop: an idle keep-alive connection closes now; a busy one after its exchange. */
  stop(): void {
    if (this.phase === PHASE_HEAD && this.pending === null) this.close();
    else this.keepAlive = false;
  }

  expire(now: number): void {
    this.deadline = 0;
    switch (this.phase) {
      case PHASE_HEAD:
        // A partial head past http_request gets 408; an idle keep-alive (or never used)
        // connection is closed quietly (HAProxy `timeout http-keep-alive`, browsers' preconnects).
        if (this.pending !== null) this.reject(408, 'request head not received in time');
        else this.close();
        return;
      case PHASE_EXCHANGE:
        this.expireExchange(now);
        return;
      default:
        return;
    }
  }

  /**
   * HAProxy's timeout model: `timeouts.client` is the client's inactivity while we wait on it
   * (its request body, or its reading of our response); `timeouts.server` is the server's
   * inactivity while we wait on it (its response, or its reading of the request body), counted
   * from the last byte sent to or received from it. Only the side we waited on is blamed: a
   * slow client never counts against a server (passive ejection, `eresp`). The deadline is only
   * when to look again: the clocks move per byte as plain field writes, and a wait that starts
   * later (the body finished, a write got queued) is seen at the next look, at most the
   * shorter timeout away (armExchange), so it is never late by more than the sweep.
   */
  protected expireExchange(now: number): void {
    if (this.waitList !== null) {
      // Waiting in the backend's queue (src/overload): the queue timeout decides.
      this.backend!.overload.timedOut(this, now);
      return;
    }
    const up = this.upstream;
    if (abortConnectOnTimeout(up)) return;
    const backend = this.backend;
    if (backend === null) {
      // Answered here (a route's redirect or deny) and still being written: nothing to wait on.
      this.abort(0, 'client timeout');
      return;
    }
    const clientMs = this.frontend.config.timeouts.clientMs;
    const serverMs = backend.config.timeouts.serverMs;
    const toClient = this.socket.writableLength > 0;
    const toServer = up !== null && up.socket.writableLength > 0;
    let next = now + Math.min(clientMs, serverMs);
    if (toClient || (!this.reqDone && !toServer)) {
      const due = this.clientActive + clientMs;
      if (due <= now) {
        this.clientTimeout();
        return;
      }
      if (due < next) next = due;
    }
    if (up !== null && !this.resDone && !toClient && (this.reqDone || toServer)) {
      const due = this.serverActive + serverMs;
      if (due <= now) {
        this.serverTimeout();
        return;
      }
      if (due < next) next = due;
    }
    this.deadline = next;
  }

  /** The client went quiet while we waited on it: 408, or a close once a response started. */
  protected clientTimeout(): void {
    this.frontend.counters.cliAbrt++;
    if (this.server !== null) this.server.counters.cliAbrt++;
    this.keepAlive = false;
    // A client that does not even read (bytes of ours still queued) gets no answer: a close.
    if (!this.resStarted && this.socket.writableLength === 0) this.localResponse(408, 'client timeout');
    else this.abort(0, 'client timeout');
  }

  /** The server went quiet while we waited on it: 504 (or a retry), counted against it. */
  protected serverTimeout(): void {
    const server = this.server;
    if (server !== null) {
      server.counters.eresp++;
      this.backend!.observer?.failure(server, 'timeout');
      if (!this.resStarted && this.backend!.config.retryOn.responseTimeout && this.canResend()) {
        this.resend(server, 'server timeout');
        return;
      }
    }
    if (!this.resStarted) this.localResponse(504, 'server timeout');
    else this.abort(0, 'server timeout mid-response');
  }

  protected logAccess(why: string): void {
    const log = this.listener.accessLog;
    if (log === null) return;
    log.http({
      frontend: this.frontend.name,
      backend: this.backend?.name ?? null,
      server: this.server?.name ?? null,
      client: this.clientIp,
      method: this.method || this.reqHead.method,
      target: this.target || this.reqHead.target,
      status: this.status,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      connectMs: this.connectedAt > 0 ? this.connectedAt - this.start : -1,
      totalMs: this.start > 0 ? Date.now() - this.start : 0,
      error: why,
    });
  }
}

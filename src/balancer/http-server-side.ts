import type { ClientSocket } from '../model/proxy-socket.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';
import type { ParserLimits } from './http-head.js';
import { coarseNow } from './sweeper.js';
import { writeKept } from './read-buffer.js';
import { describeError, openUpstream, takeIdle, type Upstream, type UpstreamOwner } from './upstream.js';
import { NO_SERVER } from '../overload/refusals.js';
import type { QueueWaiter, WaitList } from '../overload/wait-list.js';
import {
  connectFailed,
  connectSucceeded,
  NO_RETRY_LEFT,
  QUEUED,
  refusalWhy,
  releaseAttempt,
  retryElsewhere,
  waitOrRefuse,
  type ServerAttempt,
} from './server-connect.js';
import { IDEMPOTENT, MAX_REPLAY_BODY, PHASE_EXCHANGE, PHASE_TUNNEL, type HttpExchange } from './http-exchange.js';
import { HttpResponseRelay, RELAY_DONE, RELAY_FAILED, RELAY_MORE, RELAY_RESEND, RELAY_TUNNEL } from './http-response.js';

// The server side of an HTTP connection (http-exchange.ts explains the parts): for each
// request, a server picked (or a wait in the backend's queue), a warm pooled connection or a
// new one, the request bytes held until it opens, and, when it fails, a retry elsewhere
// (server-connect.ts) with the request bytes kept for a re-send; the response is read by the
// relay (http-response.ts). How the exchange ends is the client side's: it is told through
// ExchangeEnds.

/** What the server side reports to the client side (http-session.ts implements it). */
export interface ExchangeEnds {
  /** The response is complete (exchange.resDone): record it, then the next request or a close. */
  responseDone(): void;
  /** No response will come: answer the client ourselves (502, 503, 504; `limit`: the overload limit). */
  answer(status: number, why: string, limit: string): void;
  /** Cut the exchange: `status` if nothing went to the client yet (0: just close). */
  abort(status: number, why: string): void;
  /** A 101 went to the client: bytes flow both ways from now on. */
  tunnelOpened(): void;
  /** The server closed the tunnel. */
  tunnelClosed(): void;
}

export class HttpServerSide implements UpstreamOwner, ServerAttempt {
  readonly ctx: BalanceContext;
  readonly relay: HttpResponseRelay;
  server: Server | null = null;
  upstream: Upstream | null = null;
  retriesLeft = 0;
  retrying = false;
  /** Bytes for the server held until the connection opens (head + early body). */
  private held: Buffer[] | null = null;
  /** The rewritten request head, kept while a retry could still resend it. */
  private requestOut: Buffer | null = null;
  /** The request may still be sent again from `requestOut` + `replayBody` (retries after bytes left). */
  private replayable = false;
  /** Body bytes of this request already consumed, kept for a re-send (null: none or too big). */
  private replayBody: Buffer[] | null = null;
  private replayBytes = 0;
  // --- waiting in the backend's queue (src/overload/wait-list.ts)
  waitNext: QueueWaiter | null = null;
  waitPrev: QueueWaiter | null = null;
  waitList: WaitList | null = null;
  waitSince = 0;

  constructor(
    private readonly exchange: HttpExchange,
    /** The client connection this traffic belongs to (UpstreamOwner: its endpoints go in a PROXY header). */
    readonly socket: ClientSocket,
    private readonly ends: ExchangeEnds,
    clientIp: string,
    limits: ParserLimits,
  ) {
    this.ctx = { clientIp, avoid: null, stickyCookie: null, setStickyCookie: null };
    this.relay = new HttpResponseRelay(exchange, socket, this.ctx, limits);
  }

  /** A new request for exchange.backend, its head rewritten as `requestOut`; the sticky cookie goes in ctx next. */
  begin(requestOut: Buffer): void {
    this.requestOut = requestOut;
    this.retriesLeft = this.exchange.backend!.config.retries;
    this.replayable = true;
    this.replayBody = null;
    this.replayBytes = requestOut.length;
    this.ctx.avoid = null;
    this.ctx.setStickyCookie = null;
    this.relay.begin();
  }

  /** Bytes wait for a connection being opened, or for a queue slot (they are referenced). */
  holding(): boolean {
    return this.held !== null;
  }

  /** The request will not go to a server (answered here). */
  forgetRequest(): void {
    this.requestOut = null;
  }

  /** Pick a server and get a connection to it. False when the exchange ended (503). */
  connect(now: number): boolean {
    const server = this.exchange.backend!.pick(this.ctx);
    if (server === null) return this.noServerNow(now);
    this.useServer(server, now);
    return true;
  }

  /** The server is chosen (now, or when a queue slot freed): counters, a pooled or a new connection. */
  private useServer(server: Server, now: number): void {
    const x = this.exchange;
    const backend = x.backend!;
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
      x.connectedAt = now;
      this.armExchange();
      if (held === null) {
        if (!idle.socket.write(this.requestOut!)) this.socket.pause();
      } else {
        this.flushHeld(idle);
        if (!x.reqDone && !idle.socket.writableNeedDrain) this.socket.resume();
      }
    } else {
      if (held === null) this.held = [this.requestOut!];
      this.open(server, now);
    }
  }

  /** A new connection to `server`; the connect timeout runs from now. */
  private open(server: Server, now: number): void {
    const backend = this.exchange.backend!;
    this.upstream = openUpstream(server, this, false, backend.config);
    this.exchange.deadline = now + backend.config.timeouts.connectMs;
  }

  /**
   * No server may take the request now: it waits in the backend's queue when the limit that
   * refused it allows waiting (src/overload), else 503 naming the limit. False: it ended.
   */
  private noServerNow(now: number): boolean {
    const backend = this.exchange.backend!;
    const limit = waitOrRefuse(this, backend, now, true);
    if (limit !== QUEUED) {
      this.ends.answer(503, refusalWhy(limit), limit);
      return false;
    }
    // Held like bytes for a connection being opened; the body stops being read meanwhile.
    this.held = [this.requestOut!];
    this.countToServer(this.requestOut!.length);
    this.exchange.deadline = now + backend.overload.queueTimeoutMs;
    return true;
  }

  /** Out of the queue: a slot freed on `server`, or none came (`limit`: why, for the 503). */
  dequeued(server: Server | null, limit: string): void {
    if (server !== null) this.useServer(server, Date.now());
    else this.ends.answer(503, refusalWhy(limit), limit);
  }

  /** The queue timeout passed while waiting: leave with a 503 (overload.timedOut). False: not waiting. */
  queueTimedOut(now: number): boolean {
    if (this.waitList === null) return false;
    this.exchange.backend!.overload.timedOut(this, now);
    return true;
  }

  private flushHeld(up: Upstream): void {
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
   * http-timeouts.ts decides then who, if anyone, is late.
   */
  private armExchange(): void {
    const x = this.exchange;
    x.clientActive = coarseNow;
    x.serverActive = coarseNow;
    x.deadline = coarseNow + Math.min(x.frontend.config.timeouts.clientMs, x.backend!.config.timeouts.serverMs);
  }

  /** Request bytes counted for the server and backend (HAProxy's `bin`; retries count again). */
  countToServer(n: number): void {
    const server = this.server;
    if (server !== null) server.counters.bin += n; // null: waiting in the queue
    this.exchange.backend!.counters.bin += n;
  }

  /** Request body bytes for the server. True when `data` stays referenced (read-buffer.ts). */
  send(data: Buffer): boolean {
    this.exchange.bytesIn += data.length;
    this.countToServer(data.length);
    const kept = this.replayable && this.keepForReplay(data);
    if (this.held !== null) {
      this.held.push(data);
      // Hold at most one read's worth while connecting: stop reading until the connection opens.
      this.socket.pause();
      return true;
    }
    return this.write(data) || kept;
  }

  /** Client bytes to the server, with backpressure. True when a write was left queued (read-buffer.ts). */
  write(data: Buffer): boolean {
    const socket = this.upstream!.socket;
    this.exchange.serverActive = coarseNow;
    const queued = socket.writableLength;
    if (!socket.write(data)) this.socket.pause();
    return writeKept(socket, queued);
  }

  onUpstreamConnect(up: Upstream): void {
    if (up !== this.upstream) return;
    const x = this.exchange;
    const now = Date.now();
    x.connectedAt = now;
    connectSucceeded(x.backend!, this.server!, up, now);
    this.flushHeld(up);
    if (x.phase === PHASE_EXCHANGE && !x.reqDone) this.socket.resume();
  }

  /** A server read: true when `chunk` is still referenced afterwards (read-buffer.ts). */
  onUpstreamData(up: Upstream, chunk: Buffer): boolean {
    if (up !== this.upstream) return false;
    const x = this.exchange;
    const server = this.server!;
    server.counters.bout += chunk.length;
    x.backend!.counters.bout += chunk.length;
    const relay = this.relay;
    relay.chunkKept = false;
    if (x.phase === PHASE_TUNNEL) {
      x.bytesOut += chunk.length;
      relay.writeClient(chunk, up);
      return relay.chunkKept;
    }
    if (x.resDone) {
      // Bytes after a complete response: the server is not speaking HTTP/1.1 correctly.
      x.upstreamReusable = false;
      up.destroy();
      return false;
    }
    x.serverActive = coarseNow;
    const outcome = relay.read(up, server, chunk, this.canResend());
    // A head came: the request will not be sent again (and its body is not kept for that).
    if (relay.answered && this.requestOut !== null) this.closeReplay();
    if (outcome !== RELAY_MORE) this.relayed(outcome, up, server);
    return relay.chunkKept || relay.pending !== null;
  }

  /** Act on what the relay found in a server read. */
  private relayed(outcome: number, up: Upstream, server: Server): void {
    const relay = this.relay;
    switch (outcome) {
      case RELAY_DONE:
        this.ends.responseDone();
        return;
      case RELAY_RESEND:
        this.resend(server, relay.why);
        return;
      case RELAY_FAILED:
        up.destroy();
        this.upstream = null;
        this.ends.answer(502, relay.why, NO_SERVER);
        return;
      case RELAY_TUNNEL:
        this.tunnel(up);
        return;
      default: // RELAY_ABORT
        this.ends.abort(relay.abortStatus, relay.why);
    }
  }

  /**
   * The 101 went to the client: client bytes that came after the request (already the new
   * protocol) follow it to the server, and both sockets carry bytes until either side closes.
   */
  private tunnel(up: Upstream): void {
    const x = this.exchange;
    const client = this.socket;
    // Tunnels are long-lived: timeouts apply as socket inactivity (HAProxy `timeout tunnel`).
    client.setTimeout(Math.max(x.frontend.config.timeouts.clientMs, x.backend!.config.timeouts.serverMs), onTunnelTimeout);
    this.ends.tunnelOpened();
    const pending = x.pending;
    if (pending !== null) {
      x.pending = null;
      x.bytesIn += pending.length;
      this.countToServer(pending.length);
      up.socket.write(pending);
    }
    if (client.isPaused()) client.resume();
  }

  onUpstreamDrain(up: Upstream): void {
    if (up !== this.upstream) return;
    this.exchange.serverActive = coarseNow;
    if (this.socket.isPaused() && this.exchange.pending === null) this.socket.resume();
  }

  onUpstreamEnd(up: Upstream): void {
    if (up !== this.upstream) return;
    const x = this.exchange;
    if (x.phase === PHASE_TUNNEL) {
      this.socket.end();
      return;
    }
    if (x.resStarted && this.relay.closeDelimited && !x.resDone) {
      // Close-delimited body complete.
      x.upstreamReusable = false;
      x.resDone = true;
      this.ends.responseDone();
      return;
    }
    up.socket.destroy();
  }

  onUpstreamClose(up: Upstream, error: Error | null): void {
    if (up !== this.upstream) return;
    const x = this.exchange;
    if (x.phase === PHASE_TUNNEL) {
      this.upstream = null;
      this.ends.tunnelClosed();
      return;
    }
    if (x.resDone) return;
    const server = this.server!;
    const backend = x.backend!;
    this.upstream = null;
    if (!up.connected) {
      // Connect failed: nothing of the request left us (it is all in `held`), so any method
      // may go to another server (HAProxy `retry-on conn-failure`, the default).
      const why = connectFailed(backend, server, error);
      if (backend.config.retryOn.connFailure) this.retry(server, why);
      else {
        backend.closed(server);
        this.server = null;
        this.ends.answer(502, why, NO_SERVER);
      }
      return;
    }
    if (!x.resStarted && up.reused && this.canResend() && (IDEMPOTENT.has(x.method) || backend.config.retryOn.emptyResponse)) {
      // A pooled connection the server had closed (keep-alive race): send again on a fresh
      // one, counted as a retry. Without `empty-response` only idempotent methods: the server
      // may have received and acted on it before closing (RFC 9110 §9.2.2).
      this.retriesLeft--;
      server.counters.wretr++;
      backend.counters.wretr++;
      this.held = this.replayList();
      this.countToServer(this.replayBytes);
      this.open(server, Date.now());
      return;
    }
    server.counters.srvAbrt++;
    backend.observer?.failure(server, 'reset');
    if (!x.resStarted && backend.config.retryOn.emptyResponse && this.canResend()) {
      // The server took the request and closed without a byte of answer (it died, or shed
      // load): sent again to another server only when asked (`retry_on: [empty-response]`,
      // HAProxy's keyword), since a non-idempotent request may then run twice.
      this.resend(server, `server closed the connection: ${describeError(error)}`);
      return;
    }
    server.counters.eresp++;
    backend.counters.eresp++;
    if (!x.resStarted) this.ends.answer(502, `server closed the connection: ${describeError(error)}`, NO_SERVER);
    else this.ends.abort(0, 'server closed mid-response');
  }

  /** The server went quiet while we waited on it: 504 (or a retry), counted against it. */
  timedOut(): void {
    const x = this.exchange;
    const server = this.server;
    if (server !== null) {
      server.counters.eresp++;
      x.backend!.observer?.failure(server, 'timeout');
      if (!x.resStarted && x.backend!.config.retryOn.responseTimeout && this.canResend()) {
        this.resend(server, 'server timeout');
        return;
      }
    }
    if (!x.resStarted) this.ends.answer(504, 'server timeout', NO_SERVER);
    else this.ends.abort(0, 'server timeout mid-response');
  }

  /** Let go of the server: counters, and the connection back to the pool or closed. */
  release(reusable: boolean): void {
    // The connection goes back to the pool first: closed() may hand the slot to a waiter at once.
    const up = this.upstream;
    if (up !== null) {
      this.upstream = null;
      if (up.socket.isPaused()) up.socket.resume();
      if (reusable && up.owner === this) up.release();
      else up.destroy();
    }
    const backend = this.exchange.backend;
    if (backend !== null) releaseAttempt(this, backend);
    this.held = null;
    this.requestOut = null;
  }

  /** Whether the request can be sent again after bytes of it went out (and a retry is left). */
  private canResend(): boolean {
    return this.retriesLeft > 0 && this.requestOut !== null && this.replayable;
  }

  /** No re-send from now on: the copies go. */
  private closeReplay(): void {
    this.requestOut = null;
    this.replayable = false;
    this.replayBody = null;
  }

  /** The whole request so far, for a re-send: the head, then the body bytes kept. */
  private replayList(): Buffer[] {
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
  private keepForReplay(data: Buffer): boolean {
    if (this.replayBody === null) {
      const on = this.exchange.backend!.config.retryOn;
      const afterSend = on.emptyResponse || on.junkResponse || on.responseTimeout || on.statuses.length > 0;
      if (this.retriesLeft <= 0 || !(afterSend || IDEMPOTENT.has(this.exchange.method))) {
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
  private resend(failed: Server, why: string): void {
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
  private retry(failed: Server, why: string): void {
    const backend = this.exchange.backend!;
    const server = retryElsewhere(this, backend, failed);
    if (typeof server === 'string') {
      if (server === NO_RETRY_LEFT) this.ends.answer(502, why, NO_SERVER);
      else if (server === NO_SERVER) this.ends.answer(503, why, NO_SERVER);
      else this.ends.answer(503, `${why}; no retry: ${server}`, server);
      return;
    }
    this.server = server;
    const now = Date.now();
    backend.opened(server, now);
    server.counters.reqTot++;
    const held = this.held!;
    let bytes = 0;
    for (let i = 0; i < held.length; i++) bytes += held[i]!.length;
    this.countToServer(bytes);
    const idle = takeIdle(server, this, backend.config.timeouts.serverKeepAliveMs, backend.config.tls);
    if (idle !== null) {
      this.upstream = idle;
      this.flushHeld(idle);
    } else {
      this.open(server, now);
    }
  }
}

/** A tunnel idle past its timeout (socket inactivity, HAProxy's `timeout tunnel`). */
function onTunnelTimeout(this: ClientSocket): void {
  this.destroy();
}

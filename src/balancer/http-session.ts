import type { Socket } from 'node:net';
import type { Backend } from '../model/backend.js';
import type { Frontend } from '../model/frontend.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';
import { ChunkedScanner, CHUNKED_ERROR } from './chunked.js';
import { HttpHead, PARSE_INCOMPLETE, PARSE_OK } from './http-head.js';
import { cannedResponse } from './responses.js';
import { forwardingLines, normalizeIp, readCookie, rewriteHead } from './head-rewrite.js';
import { coarseNow, track, untrack, type Expirable } from './sweeper.js';
import { describeError, openUpstream, takeIdle, type Upstream, type UpstreamOwner } from './upstream.js';
import type { AccessLog } from './access-log.js';
import { setReader, type SocketReader } from './read-buffer.js';

// One client connection in HTTP mode: reads requests with our own HTTP/1.1 framing, picks a
// server per request, forwards over a pooled keep-alive connection and relays the response.
// One request is in flight at a time; pipelined requests wait in `pending` (RFC 9112 §9.3.2).
// Bodies stream through with backpressure both ways; chunked bodies are passed byte for byte
// while a scanner finds their end.
//
// Hot path rules: socket events go to module-level functions; state lives in fields declared
// here; canned responses are prebuilt Buffers.

const enum Phase {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** Request head forwarded (or held while connecting); request body and/or response under way. */
  Exchange,
  /** 101 Switching Protocols: bytes both ways. */
  Tunnel,
  /** Closing: ignore further input. */
  Closed,
}

const BODY_NONE = 0;
const BODY_LENGTH = 1;
const BODY_CHUNKED = 2;
/** Response body delimited by the server closing the connection. */
const BODY_CLOSE = 3;

/** Body bytes up to this size are copied next to a rewritten head and written once. */
const COALESCE_BYTES = 16384;

/** Bytes of pipelined input we hold before we stop reading from the client. */
const MAX_PENDING = 65536;

/** Methods safe to send again after a connection dropped without a response (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

const CRLF = Buffer.from('\r\n', 'latin1');
const CONNECTION_CLOSE = 'Connection: close\r\n';
const CONNECTION_KEEP_ALIVE = 'Connection: keep-alive\r\n';
const CONNECTION_UPGRADE = 'Connection: upgrade\r\n';

const kSession = Symbol('switchyard.httpSession');
type SessionSocket = Socket & { [kSession]: HttpSession };

/** What a session needs from the listener that accepted it. */
export interface HttpListenerContext {
  readonly frontend: Frontend;
  /** True once a graceful stop began: finish the current exchange, then close. */
  readonly stopping: boolean;
  readonly accessLog: AccessLog | null;
  /** Client sockets were created with `onread` (read-buffer.ts): reads come through onRead. */
  readonly onreadClients: boolean;
  sessionClosed(session: HttpSession): void;
}

export class HttpSession implements UpstreamOwner, SocketReader, Expirable {
  deadline = 0;
  phase = Phase.Head;
  readonly clientIp: string;
  /** X-Forwarded-For / -Proto / Forwarded lines for a client that sent no X-Forwarded-For. */
  private readonly forwardedLines: string;
  private readonly reqHead: HttpHead;
  private readonly resHead: HttpHead;
  private readonly reqChunks = new ChunkedScanner();
  private readonly resChunks = new ChunkedScanner();
  private readonly ctx: BalanceContext;
  /** Unconsumed client bytes: a partial head, or pipelined requests waiting their turn. */
  private pending: Buffer | null = null;
  /** Storage for `pending` when it grows over several reads (appendPending). */
  private acc: Buffer | null = null;
  private accUsed = 0;
  /** Partial response head from the server. */
  private resPending: Buffer | null = null;
  /** When the current head began to arrive (http_request timeout). */
  private headStart = 0;

  // --- the current exchange
  private frontend: Frontend;
  private backend: Backend | null = null;
  private server: Server | null = null;
  private upstream: Upstream | null = null;
  /** Bytes for the server held until the connection opens (head + early body). */
  private held: Buffer[] | null = null;
  /** The rewritten request head, kept while a retry could still resend it. */
  private requestOut: Buffer | null = null;
  private retriesLeft = 0;
  private reqBody = BODY_NONE;
  private reqRemaining = 0;
  private reqDone = false;
  private resBody = BODY_NONE;
  private resRemaining = 0;
  private resStarted = false;
  private resDone = false;
  private isHeadRequest = false;
  private wantsTunnel = false;
  /** The client may keep the connection after this exchange. */
  private keepAlive = true;
  /** The server connection may be pooled after this exchange. */
  private upstreamReusable = false;
  private start = 0;
  private connectedAt = 0;
  private status = 0;
  private bytesIn = 0;
  private bytesOut = 0;
  private method = '';
  private target = '';
  /** The sticky cookie of this exchange's backend ('' when cookie stickiness is off). */
  private stickyCookieName = '';
  /** The current client / server read's chunk is still referenced by a queued write. */
  private clientChunkKept = false;
  private serverChunkKept = false;

  constructor(
    readonly socket: Socket,
    private readonly listener: HttpListenerContext,
  ) {
    this.frontend = listener.frontend;
    const ip = normalizeIp(socket.remoteAddress ?? '');
    this.clientIp = ip;
    this.forwardedLines = forwardingLines(ip, null);
    const limits = this.frontend.config.limits;
    this.reqHead = new HttpHead(limits);
    this.resHead = new HttpHead({ maxRequestLine: limits.maxRequestLine, maxHeaderBytes: Math.max(limits.maxHeaderBytes, 65536), maxHeaders: Math.max(limits.maxHeaders, 200) });
    this.ctx = { clientIp: ip, avoid: null, stickyCookie: null, setStickyCookie: null };
    (socket as SessionSocket)[kSession] = this;
    if (listener.onreadClients) setReader(socket, this);
    else socket.on('data', onClientData);
    socket.on('end', onClientEnd);
    socket.on('close', onClientClose);
    socket.on('error', noop);
    socket.on('drain', onClientDrain);
    track(this);
    this.deadline = coarseNow + this.frontend.config.timeouts.httpRequestMs;
  }

  // ---------------------------------------------------------------- client side

  /** A client read through `onread`: true when `chunk` is still referenced afterwards. */
  onRead(chunk: Buffer): boolean {
    this.clientChunkKept = false;
    this.onClientData(chunk);
    return this.clientChunkKept || this.pending !== null || this.held !== null;
  }

  onClientData(chunk: Buffer): void {
    this.frontend.counters.bin += chunk.length;
    switch (this.phase) {
      case Phase.Head:
        if (this.pending !== null) {
          const grown = this.appendPending(chunk);
          if (!this.reqHead.worthReparsing(chunk, grown.length)) {
            this.pending = grown;
            return;
          }
          chunk = grown;
          this.pending = null;
        } else {
          this.headStart = coarseNow;
        }
        this.processInput(chunk, 0);
        return;
      case Phase.Exchange:
        if (!this.reqDone) this.forwardRequestBody(chunk, 0);
        else this.hold(chunk);
        return;
      case Phase.Tunnel:
        this.bytesIn += chunk.length;
        this.countToServer(chunk.length);
        this.writeUpstream(chunk);
        return;
      default:
        return;
    }
  }

  /** Keep pipelined bytes until the current exchange ends; stop reading past MAX_PENDING. */
  private hold(chunk: Buffer): void {
    this.pending = this.pending === null ? chunk : this.appendPending(chunk);
    if (this.pending.length > MAX_PENDING) this.socket.pause();
  }

  /**
   * `pending` followed by `chunk`, in storage that grows by doubling: a head trickled in one
   * byte at a time costs linear copying, where concatenating per chunk would be quadratic
   * (32 KiB of head in 1-byte packets = 512 MiB copied). Only bytes past `accUsed` are ever
   * written, so views handed out earlier stay valid.
   */
  private appendPending(chunk: Buffer): Buffer {
    const pending = this.pending!;
    const total = pending.length + chunk.length;
    let acc = this.acc;
    if (acc !== null && pending.buffer === acc.buffer && pending.byteOffset + pending.length === acc.byteOffset + this.accUsed && this.accUsed + chunk.length <= acc.length) {
      chunk.copy(acc, this.accUsed);
      this.accUsed += chunk.length;
      return acc.subarray(this.accUsed - total, this.accUsed);
    }
    acc = Buffer.allocUnsafe(Math.max(4096, total * 2));
    pending.copy(acc, 0);
    chunk.copy(acc, pending.length);
    this.acc = acc;
    this.accUsed = total;
    return acc.subarray(0, total);
  }

  /** Parse requests from buf[offset..]; runs again for pipelined requests after each exchange. */
  private processInput(buf: Buffer, offset: number): void {
    const head = this.reqHead;
    const r = head.parseRequest(buf, offset, buf.length);
    if (r === PARSE_INCOMPLETE) {
      this.pending = offset === 0 ? buf : buf.subarray(offset);
      // Slow-loris guard: the whole head must arrive within http_request.
      if (Date.now() - this.headStart > this.frontend.config.timeouts.httpRequestMs) this.reject(408, 'request head not received in time');
      else this.deadline = this.headStart + this.frontend.config.timeouts.httpRequestMs;
      return;
    }
    if (r !== PARSE_OK) {
      this.reject(r, head.error);
      return;
    }
    this.beginExchange(buf, offset);
  }

  /** Answer a request we will not forward, then close (the stream cannot be resynchronised). */
  private reject(status: number, why: string): void {
    const c = this.frontend.counters;
    c.ereq++;
    c.reqTot++;
    c.response(status, 0);
    this.status = status;
    this.logAccess(why);
    this.phase = Phase.Closed;
    this.socket.end(cannedResponse(status, null, true));
    this.socket.pause();
  }

  private beginExchange(buf: Buffer, offset: number): void {
    const head = this.reqHead;
    const now = Date.now();
    this.phase = Phase.Exchange;
    this.start = now;
    this.deadline = 0;
    this.frontend = this.listener.frontend;
    const frontend = this.frontend;
    frontend.counters.reqTot++;
    const backend = frontend.backend;
    this.backend = backend;
    this.method = head.method;
    // The target as a string only for the access log (it costs an allocation per request).
    this.target = this.listener.accessLog !== null ? head.target : '';
    this.isHeadRequest = head.method === 'HEAD';
    this.keepAlive = !this.listener.stopping && (head.minor === 1 ? !head.connectionClose : head.connectionKeepAlive);
    this.wantsTunnel = head.hasUpgrade && head.connectionUpgrade;
    if (this.wantsTunnel) head.keepUpgrade(buf);
    this.status = 0;
    this.bytesIn = head.headEnd - offset;
    this.bytesOut = 0;
    this.resStarted = false;
    this.resDone = false;
    this.resPending = null;
    this.resHead.interim = 0;
    this.upstreamReusable = false;
    this.retriesLeft = backend.config.retries;

    // Request framing (already validated: never both, never an unknown coding).
    if (head.chunked) {
      this.reqBody = BODY_CHUNKED;
      this.reqChunks.reset();
      this.reqDone = false;
    } else if (head.contentLength > 0) {
      this.reqBody = BODY_LENGTH;
      this.reqRemaining = head.contentLength;
      this.reqDone = false;
    } else {
      this.reqBody = BODY_NONE;
      this.reqDone = true;
    }

    this.requestOut = this.rewriteRequest(buf, offset);

    const ctx = this.ctx;
    ctx.avoid = null;
    ctx.setStickyCookie = null;
    const sticky = backend.config.sticky;
    // The name is kept with the exchange: a reload may change the backend's sticky settings
    // before the response arrives.
    this.stickyCookieName = sticky !== null && sticky.type === 'cookie' ? sticky.name : '';
    ctx.stickyCookie = this.stickyCookieName !== '' && head.cookie !== null ? readCookie(head.cookie, this.stickyCookieName) : null;

    // The head is copied into requestOut; what follows is body or the next request.
    const rest = head.headEnd;
    if (!this.connectServer(now)) return;
    if (rest < buf.length) {
      if (!this.reqDone) this.forwardRequestBody(buf, rest);
      else this.hold(buf.subarray(rest));
    }
  }

  /** The head as the server gets it: hop-by-hop fields dropped, forwarding fields added. */
  private rewriteRequest(buf: Buffer, offset: number): Buffer {
    const head = this.reqHead;
    let extra = head.xff === null ? this.forwardedLines : forwardingLines(this.clientIp, head.xff);
    if (this.wantsTunnel) extra += CONNECTION_UPGRADE;
    return rewriteHead(head, buf, offset, extra, buf.length);
  }

  /** Pick a server and get a connection to it. Returns false when the exchange ended (503). */
  private connectServer(now: number): boolean {
    const backend = this.backend!;
    const server = backend.pick(this.ctx);
    if (server === null) {
      this.localResponse(503, 'no server available');
      return false;
    }
    this.server = server;
    backend.opened(server, now);
    server.counters.reqTot++;
    backend.counters.reqTot++;
    this.countToServer(this.requestOut!.length);
    const idle = takeIdle(server, this);
    if (idle !== null) {
      // The common case: a warm pooled connection, the head goes out now.
      this.upstream = idle;
      this.connectedAt = now;
      this.held = null;
      this.deadline = coarseNow + backend.config.timeouts.serverMs;
      if (!idle.socket.write(this.requestOut!)) this.socket.pause();
    } else {
      this.held = [this.requestOut!];
      this.upstream = openUpstream(server, this, false);
      this.deadline = now + backend.config.timeouts.connectMs;
    }
    return true;
  }

  private flushHeld(up: Upstream): void {
    const held = this.held!;
    this.held = null;
    const socket = up.socket;
    this.deadline = coarseNow + this.backend!.config.timeouts.serverMs;
    if (held.length === 1) {
      if (!socket.write(held[0]!)) this.socket.pause();
      return;
    }
    socket.cork();
    for (let i = 0; i < held.length; i++) socket.write(held[i]!);
    socket.uncork();
    if (socket.writableNeedDrain) this.socket.pause();
  }

  /** Request bytes counted for the server and backend (HAProxy's `bin`; retries count again). */
  private countToServer(n: number): void {
    this.server!.counters.bin += n;
    this.backend!.counters.bin += n;
  }

  private sendUpstream(data: Buffer): void {
    this.bytesIn += data.length;
    this.countToServer(data.length);
    if (this.held !== null) {
      this.held.push(data);
      // Hold at most one read's worth while connecting: stop reading until the connection opens.
      this.socket.pause();
      return;
    }
    this.writeUpstream(data);
  }

  /** Client bytes to the server, with backpressure; notes a write left queued (read-buffer.ts). */
  private writeUpstream(data: Buffer): void {
    const socket = this.upstream!.socket;
    if (!socket.write(data)) this.socket.pause();
    if (socket.writableLength > 0) this.clientChunkKept = true;
  }

  private forwardRequestBody(buf: Buffer, offset: number): void {
    let end = buf.length;
    if (this.reqBody === BODY_LENGTH) {
      const n = Math.min(this.reqRemaining, end - offset);
      this.reqRemaining -= n;
      end = offset + n;
      if (this.reqRemaining === 0) this.reqDone = true;
    } else {
      const e = this.reqChunks.scan(buf, offset, end);
      if (e === CHUNKED_ERROR) {
        // The head is already on its way: the only safe answer is to abort both sides.
        this.frontend.counters.ereq++;
        this.abort(this.resStarted ? 0 : 400, `bad chunked request body: ${this.reqChunks.error}`);
        return;
      }
      end = e;
      if (this.reqChunks.done) this.reqDone = true;
    }
    // Once a body byte went out, this request can no longer be replayed on another connection.
    this.requestOut = null;
    if (end > offset) this.sendUpstream(offset === 0 && end === buf.length ? buf : buf.subarray(offset, end));
    if (this.reqDone) {
      if (end < buf.length) this.hold(buf.subarray(end));
      if (this.resDone) this.finishExchange();
    }
  }

  onClientEnd(): void {
    // Half-close from the client: finish what is in flight, then close.
    this.keepAlive = false;
    if (this.phase === Phase.Head) this.close();
    else if (this.phase === Phase.Tunnel) this.upstream?.socket.end();
    else if (this.phase === Phase.Exchange && !this.reqDone) {
      // The request body never completed: nothing sensible can be forwarded.
      this.frontend.counters.cliAbrt++;
      this.abort(0, 'client closed during request body');
    }
  }

  onClientClose(): void {
    if (this.phase !== Phase.Closed) {
      if (this.phase === Phase.Exchange || this.phase === Phase.Tunnel) {
        if (!this.resDone) {
          this.frontend.counters.cliAbrt++;
          if (this.server !== null) this.server.counters.cliAbrt++;
          this.logAccess('client aborted');
        }
      }
      this.phase = Phase.Closed;
    }
    this.releaseServer(false);
    untrack(this);
    this.listener.sessionClosed(this);
  }

  onClientDrain(): void {
    const up = this.upstream;
    if (up !== null && (this.phase === Phase.Exchange || this.phase === Phase.Tunnel)) up.socket.resume();
  }

  // ---------------------------------------------------------------- server side

  onUpstreamConnect(up: Upstream): void {
    if (up !== this.upstream) return;
    const now = Date.now();
    this.connectedAt = now;
    this.server!.counters.observeConnect(now - up.connectStarted);
    this.backend!.observer?.success(this.server!);
    if (this.server!.connectFailed) {
      this.server!.connectFailed = false;
      this.server!.noteChange('connection succeeded');
    }
    this.flushHeld(up);
    if (this.phase === Phase.Exchange && !this.reqDone) this.socket.resume();
  }

  /** A server read: true when `chunk` is still referenced afterwards (read-buffer.ts). */
  onUpstreamData(up: Upstream, chunk: Buffer): boolean {
    this.serverChunkKept = false;
    this.handleUpstreamData(up, chunk);
    return this.serverChunkKept || this.resPending !== null;
  }

  private handleUpstreamData(up: Upstream, chunk: Buffer): void {
    if (up !== this.upstream) return;
    const server = this.server!;
    server.counters.bout += chunk.length;
    this.backend!.counters.bout += chunk.length;
    if (this.phase === Phase.Tunnel) {
      this.bytesOut += chunk.length;
      this.writeClient(chunk, up);
      return;
    }
    if (this.resDone) {
      // Bytes after a complete response: the server is not speaking HTTP/1.1 correctly.
      this.upstreamReusable = false;
      up.destroy();
      return;
    }
    this.deadline = coarseNow + this.backend!.config.timeouts.serverMs;
    if (!this.resStarted) {
      if (this.resPending !== null) {
        chunk = Buffer.concat([this.resPending, chunk]);
        this.resPending = null;
      }
      this.processResponseHead(up, chunk, 0);
    } else {
      this.forwardResponseBody(up, chunk, 0);
    }
  }

  private processResponseHead(up: Upstream, buf: Buffer, offset: number): void {
    const head = this.resHead;
    const r = head.parseResponse(buf, offset, buf.length);
    if (r === PARSE_INCOMPLETE) {
      this.resPending = offset === 0 ? buf : buf.subarray(offset);
      return;
    }
    const server = this.server!;
    if (r !== PARSE_OK) {
      server.counters.eresp++;
      this.backend!.counters.eresp++;
      this.backend!.observer?.failure(server, '5xx');
      up.destroy();
      this.upstream = null;
      this.localResponse(502, `invalid response: ${head.error}`);
      return;
    }
    const status = head.status;
    if (this.requestOut !== null) this.requestOut = null;
    if (status < 200 && status !== 101) {
      // Interim response (100 Continue, 103 Early Hints): relay it and keep waiting; never to
      // an HTTP/1.0 client, which has no 1xx (RFC 9110 §15.2).
      if (this.reqHead.minor === 1) this.writeClient(this.rewriteResponse(buf, offset, false, '', buf.length), up);
      if (head.headEnd < buf.length) this.processResponseHead(up, buf, head.headEnd);
      return;
    }
    this.status = status;
    this.resStarted = true;
    const now = Date.now();
    server.counters.observeFirstByte(now - this.start);
    if (status === 101) {
      if (!this.wantsTunnel) {
        server.counters.eresp++;
        up.destroy();
        this.upstream = null;
        this.localResponse(502, 'unsolicited 101 response');
        return;
      }
      this.enterTunnel(up, buf, offset);
      return;
    }
    // Response framing (RFC 9112 §6.3).
    if (this.isHeadRequest || status === 204 || status === 304) {
      this.resBody = BODY_NONE;
    } else if (head.chunked) {
      this.resBody = BODY_CHUNKED;
      this.resChunks.reset();
    } else if (head.contentLength >= 0) {
      this.resBody = head.contentLength === 0 ? BODY_NONE : BODY_LENGTH;
      this.resRemaining = head.contentLength;
    } else {
      this.resBody = BODY_CLOSE;
    }
    this.upstreamReusable = this.resBody !== BODY_CLOSE && (head.minor === 1 ? !head.connectionClose : head.connectionKeepAlive);
    // A response the client cannot delimit except by close, or a request body left unread:
    // the client connection ends with this exchange.
    if (this.resBody === BODY_CLOSE || !this.reqDone || this.listener.stopping) this.keepAlive = false;
    let extra = '';
    if (this.ctx.setStickyCookie !== null && this.stickyCookieName !== '') {
      extra = `Set-Cookie: ${this.stickyCookieName}=${this.ctx.setStickyCookie}; Path=/; HttpOnly; SameSite=Lax\r\n`;
    }
    if (!this.keepAlive) extra += CONNECTION_CLOSE;
    else if (head.soleKeepAliveLine !== -1) head.keepLine(head.soleKeepAliveLine); // ours too
    else if (this.reqHead.minor === 0) extra += CONNECTION_KEEP_ALIVE;
    const headEnd = head.headEnd;
    if (head.dropCount === 0 && extra === '') {
      // Fast path: the head goes out verbatim together with the body bytes of this read.
      this.bytesOut += headEnd - offset;
      this.forwardResponseBody(up, buf, offset, headEnd);
      return;
    }
    const rest = buf.length - headEnd;
    if (this.resBody === BODY_NONE || rest === 0) {
      const out = this.rewriteResponse(buf, offset, false, extra, buf.length);
      this.bytesOut += out.length;
      this.writeClient(out, up);
      if (this.resBody === BODY_NONE) this.responseComplete(up, buf, headEnd);
      return;
    }
    if (rest <= COALESCE_BYTES) {
      // Small body bytes ride in the same buffer as the rewritten head: one write() instead of
      // a corked writev (measured: the writev path costs more per response in Node's streams).
      const out = this.rewriteResponse(buf, offset, false, extra, headEnd);
      const newHeadLen = out.length - rest;
      this.bytesOut += newHeadLen;
      this.forwardResponseBody(up, out, 0, newHeadLen);
      return;
    }
    const out = this.rewriteResponse(buf, offset, false, extra, buf.length);
    this.bytesOut += out.length;
    this.socket.cork();
    this.writeClient(out, up);
    this.forwardResponseBody(up, buf, headEnd);
    this.socket.uncork();
  }

  /**
   * The response head with hop-by-hop fields dropped and `extra` lines added, followed by
   * buf[tailFrom..] (pass buf.length for the head alone).
   */
  private rewriteResponse(buf: Buffer, offset: number, keepUpgrade: boolean, extra: string, tailFrom: number): Buffer {
    if (keepUpgrade) this.resHead.keepUpgrade(buf);
    return rewriteHead(this.resHead, buf, offset, extra, tailFrom);
  }

  /**
   * Forward response body bytes buf[bodyStart..]; bytes from `from` (< bodyStart when the head
   * goes out verbatim with them) are written in the same call.
   */
  private forwardResponseBody(up: Upstream, buf: Buffer, from: number, bodyStart = from): void {
    let end = buf.length;
    switch (this.resBody) {
      case BODY_NONE:
        end = bodyStart;
        break;
      case BODY_LENGTH: {
        const n = Math.min(this.resRemaining, end - bodyStart);
        this.resRemaining -= n;
        end = bodyStart + n;
        break;
      }
      case BODY_CHUNKED: {
        const e = this.resChunks.scan(buf, bodyStart, end);
        if (e === CHUNKED_ERROR) {
          this.server!.counters.eresp++;
          if (from < bodyStart) {
            // The head was to go out with these bytes: the client has seen nothing of this
            // response yet, so it still gets a clean 502 (and a close) instead of a bare close.
            this.resStarted = false;
            this.keepAlive = false;
            this.bytesOut = 0;
          }
          this.abort(this.resStarted ? 0 : 502, `bad chunked response: ${this.resChunks.error}`);
          return;
        }
        end = e;
        break;
      }
      default:
        break;
    }
    if (end > from) {
      this.bytesOut += end - bodyStart;
      this.writeClient(from === 0 && end === buf.length ? buf : buf.subarray(from, end), up);
    }
    const done = this.resBody === BODY_NONE || (this.resBody === BODY_LENGTH && this.resRemaining === 0) ||
      (this.resBody === BODY_CHUNKED && this.resChunks.done);
    if (done) this.responseComplete(up, buf, end);
  }

  /** Server bytes to the client, with backpressure; notes a write left queued (read-buffer.ts). */
  private writeClient(data: Buffer, up: Upstream): void {
    this.frontend.counters.bout += data.length;
    const socket = this.socket;
    if (!socket.write(data)) up.socket.pause();
    if (socket.writableLength > 0) this.serverChunkKept = true;
  }

  private responseComplete(up: Upstream, buf: Buffer, end: number): void {
    this.resDone = true;
    if (end < buf.length) {
      // Extra bytes after the response: never reuse this connection.
      this.upstreamReusable = false;
    }
    this.recordResponse();
    if (this.reqDone) this.finishExchange();
    else if (!this.keepAlive) {
      // The server answered before the request body finished (e.g. 413): stop here.
      this.releaseServer(false);
      this.closeAfterWrite();
    }
    void up;
  }

  private recordResponse(): void {
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

  /** Both directions complete: pool the server connection and serve the next request. */
  private finishExchange(): void {
    this.releaseServer(this.upstreamReusable);
    this.requestOut = null;
    if (!this.keepAlive || this.listener.stopping) {
      this.closeAfterWrite();
      return;
    }
    this.phase = Phase.Head;
    this.deadline = coarseNow + this.frontend.config.timeouts.keepAliveMs;
    const pending = this.pending;
    if (pending !== null) {
      this.pending = null;
      this.headStart = coarseNow;
      if (this.socket.isPaused()) this.socket.resume();
      this.processInput(pending, 0);
    } else if (this.socket.isPaused()) {
      this.socket.resume();
    }
  }

  /** Let go of the server: counters, and the connection back to the pool or closed. */
  private releaseServer(reusable: boolean): void {
    const server = this.server;
    if (server !== null) {
      this.server = null;
      this.backend!.closed(server);
    }
    const up = this.upstream;
    if (up !== null) {
      this.upstream = null;
      if (up.socket.isPaused()) up.socket.resume();
      if (reusable && up.owner === this) up.release();
      else up.destroy();
    }
    this.held = null;
  }

  onUpstreamEnd(up: Upstream): void {
    if (up !== this.upstream) return;
    if (this.phase === Phase.Tunnel) {
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
    if (this.phase === Phase.Tunnel) {
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
      // Connect failed: retry on another server (the request has not left us).
      server.counters.econ++;
      backend.counters.econ++;
      backend.observer?.failure(server, 'connect');
      if (backend.config.health.type === 'none' && !server.connectFailed && backend.observer === null) {
        server.connectFailed = true;
        server.noteChange(`connect failed: ${describeError(error)}`);
      }
      this.retry(server, `connect to ${server.address} failed: ${describeError(error)}`);
      return;
    }
    if (!this.resStarted && up.reused && this.requestOut !== null && IDEMPOTENT.has(this.method)) {
      // A pooled connection the server had closed (keep-alive race): resend on a fresh one.
      // Only idempotent methods: the server may have received and acted on it before closing
      // (RFC 9110 §9.2.2); a POST gets the 502 below instead of a second delivery.
      this.held = [this.requestOut];
      const fresh = takeIdle(server, this) ?? openUpstream(server, this, false);
      this.upstream = fresh;
      if (fresh.connected) this.flushHeld(fresh);
      return;
    }
    server.counters.srvAbrt++;
    backend.observer?.failure(server, 'reset');
    if (!this.resStarted && this.requestOut !== null && IDEMPOTENT.has(this.method)) {
      // The server took the request and closed without a byte of answer (it died, or shed
      // load): an idempotent request may go to another server (RFC 9110 §9.2.2), as HAProxy's
      // `retry-on empty-response` does. A body byte sent clears requestOut: no replay then.
      this.retry(server, `server closed the connection: ${describeError(error)}`);
      return;
    }
    server.counters.eresp++;
    backend.counters.eresp++;
    if (!this.resStarted) this.localResponse(502, `server closed the connection: ${describeError(error)}`);
    else this.abort(0, 'server closed mid-response');
  }

  private retry(failed: Server, why: string): void {
    const backend = this.backend!;
    backend.closed(failed);
    this.server = null;
    if (this.requestOut === null || this.retriesLeft <= 0) {
      this.localResponse(502, why);
      return;
    }
    this.retriesLeft--;
    failed.counters.wretr++;
    backend.counters.wretr++;
    this.ctx.avoid = failed;
    this.held = [this.requestOut];
    const server = backend.pick(this.ctx);
    if (server === null) {
      this.localResponse(503, why);
      return;
    }
    if (server !== failed) backend.counters.wredis++;
    this.server = server;
    backend.opened(server, Date.now());
    server.counters.reqTot++;
    this.countToServer(this.requestOut!.length);
    const idle = takeIdle(server, this);
    if (idle !== null) {
      this.upstream = idle;
      this.flushHeld(idle);
    } else {
      this.upstream = openUpstream(server, this, false);
      this.deadline = Date.now() + backend.config.timeouts.connectMs;
    }
  }

  onUpstreamDrain(up: Upstream): void {
    if (up === this.upstream && this.socket.isPaused() && this.pending === null) this.socket.resume();
  }

  private enterTunnel(up: Upstream, buf: Buffer, offset: number): void {
    this.phase = Phase.Tunnel;
    this.deadline = 0;
    this.recordResponse();
    this.resDone = true;
    const out = this.rewriteResponse(buf, offset, true, CONNECTION_UPGRADE, buf.length);
    // Tunnels are long-lived: timeouts apply as socket inactivity (HAProxy `timeout tunnel`).
    const idleMs = Math.max(this.frontend.config.timeouts.clientMs, this.backend!.config.timeouts.serverMs);
    this.socket.setTimeout(idleMs, onTunnelTimeout);
    this.writeClient(out, up);
    const rest = this.resHead.headEnd;
    if (rest < buf.length) this.writeClient(buf.subarray(rest), up);
    const pending = this.pending;
    if (pending !== null) {
      this.pending = null;
      this.bytesIn += pending.length;
      this.countToServer(pending.length);
      up.socket.write(pending);
    }
    if (this.socket.isPaused()) this.socket.resume();
  }

  // ---------------------------------------------------------------- endings

  /** Answer from the balancer itself (503, 502, 504…) and end or continue the connection. */
  private localResponse(status: number, why: string): void {
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
    this.socket.write(cannedResponse(status, backend?.name ?? null, close));
    if (close) {
      this.closeAfterWrite();
      return;
    }
    this.finishExchange();
  }

  /** Abort an exchange mid-way: answer `status` if nothing was sent yet (0: just close). */
  private abort(status: number, why: string): void {
    if (status !== 0 && !this.resStarted) {
      this.localResponse(status, why);
      this.closeAfterWrite();
      return;
    }
    this.logAccess(why);
    this.releaseServer(false);
    this.phase = Phase.Closed;
    this.socket.destroy();
  }

  private closeAfterWrite(): void {
    this.phase = Phase.Closed;
    this.deadline = 0;
    this.socket.end();
  }

  close(): void {
    this.phase = Phase.Closed;
    this.deadline = 0;
    this.socket.end();
  }

  /** Graceful stop: an idle keep-alive connection closes now; a busy one after its exchange. */
  stop(): void {
    if (this.phase === Phase.Head && this.pending === null) this.close();
    else this.keepAlive = false;
  }

  expire(_now: number): void {
    this.deadline = 0;
    switch (this.phase) {
      case Phase.Head:
        // A partial head past http_request gets 408; an idle keep-alive (or never used)
        // connection is closed quietly (HAProxy `timeout http-keep-alive`, browsers' preconnects).
        if (this.pending !== null) this.reject(408, 'request head not received in time');
        else this.close();
        return;
      case Phase.Exchange:
        if (this.upstream !== null && !this.upstream.connected) {
          // Connect timeout: treated like a refused connection (retry elsewhere).
          const up = this.upstream;
          up.lastError = Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });
          up.socket.destroy();
          return;
        }
        {
          const server = this.server;
          if (server !== null) {
            server.counters.eresp++;
            this.backend!.observer?.failure(server, 'timeout');
          }
          if (!this.resStarted) this.localResponse(504, 'server timeout');
          else this.abort(0, 'server timeout mid-response');
        }
        return;
      default:
        return;
    }
  }

  private logAccess(why: string): void {
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

function session(socket: Socket): HttpSession {
  return (socket as SessionSocket)[kSession];
}
function onClientData(this: Socket, chunk: Buffer): void {
  session(this).onClientData(chunk);
}
function onClientEnd(this: Socket): void {
  session(this).onClientEnd();
}
function onClientClose(this: Socket): void {
  session(this).onClientClose();
}
function onClientDrain(this: Socket): void {
  session(this).onClientDrain();
}
function onTunnelTimeout(this: Socket): void {
  this.destroy();
}
function noop(): void {}

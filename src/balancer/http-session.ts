import type { Socket } from 'node:net';
import { CHUNKED_ERROR } from './chunked.js';
import { PARSE_INCOMPLETE, PARSE_OK } from './http-head.js';
import { cannedResponse } from './responses.js';
import { forwardingLines, readCookie, rewriteHead } from './head-rewrite.js';
import { coarseNow, untrack } from './sweeper.js';
import type { UpstreamOwner } from './upstream.js';
import { readerOf, setReader, type SocketReader } from './read-buffer.js';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, PHASE_CLOSED, PHASE_EXCHANGE, PHASE_HEAD, PHASE_TUNNEL, type HttpListenerContext } from './http-exchange.js';
import { CONNECTION_UPGRADE, HttpResponder } from './http-response.js';
import { RequestView } from '../routing/request-view.js';
import { answerBytes } from '../routing/routing.js';
import { routedRequestHead } from '../routing/head-edit.js';
import type { RateLimiter } from '../overload/rate-limit.js';
import { LIMIT_RATE_CONNECTIONS, LIMIT_RATE_REQUESTS } from '../overload/refusals.js';
import { httpsRedirect } from './https-redirect.js';
import type { FrontendConfig } from '../config/types.js';

export type { HttpListenerContext } from './http-exchange.js';

// One client connection in HTTP mode: what comes from the client (http-exchange.ts explains
// the three layers). Request heads are parsed with our own strict HTTP/1.1 framing (anything
// ambiguous is answered 400 and never forwarded), rewritten (hop-by-hop fields out, forwarding
// fields in), sent to the server picked for each request, then the body with backpressure;
// pipelined requests wait their turn.

/** Bytes of pipelined input we hold before we stop reading from the client. */
const MAX_PENDING = 65536;

export class HttpSession extends HttpResponder implements UpstreamOwner, SocketReader {
  constructor(socket: Socket, listener: HttpListenerContext) {
    super(socket, listener);
    setReader(socket, this, listener.onreadClients);
    socket.on('end', onClientEnd);
    socket.on('close', onClientClose);
    socket.on('error', noop);
    socket.on('drain', onClientDrain);
  }

  /** A client read through `onread`: true when `chunk` is still referenced afterwards. */
  onRead(chunk: Buffer): boolean {
    this.clientChunkKept = false;
    this.onClientData(chunk);
    return this.clientChunkKept || this.pending !== null || this.held !== null;
  }

  private onClientData(chunk: Buffer): void {
    this.frontend.counters.bin += chunk.length;
    switch (this.phase) {
      case PHASE_HEAD:
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
      case PHASE_EXCHANGE:
        this.clientActive = coarseNow;
        if (!this.reqDone) this.forwardRequestBody(chunk, 0, -1);
        else this.hold(chunk);
        return;
      case PHASE_TUNNEL:
        this.bytesIn += chunk.length;
        this.countToServer(chunk.length);
        this.writeUpstream(chunk);
        return;
      default:
        return;
    }
  }

  /** Keep pipelined bytes until the current exchange ends; stop reading past MAX_PENDING. */
  protected hold(chunk: Buffer): void {
    this.pending = this.pending === null ? chunk : this.appendPending(chunk);
    if (this.pending.length > MAX_PENDING) this.socket.pause();
  }

  /**
   * `pending` followed by `chunk`, in storage that grows by doubling: a head trickled in one
   * byte at a time costs linear copying, where concatenating per chunk would be quadratic
   * (32 KiB of head in 1-byte packets = 512 MiB copied). Only bytes past `accUsed` are ever
   * written, so views handed out earlier stay valid.
   */
  protected appendPending(chunk: Buffer): Buffer {
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
  protected processInput(buf: Buffer, offset: number): void {
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
  protected reject(status: number, why: string): void {
    const c = this.frontend.counters;
    c.ereq++;
    c.reqTot++;
    c.response(status, 0);
    this.status = status;
    this.logAccess(why);
    this.phase = PHASE_CLOSED;
    this.socket.end(cannedResponse(status, null, true));
    this.socket.pause();
  }

  protected beginExchange(buf: Buffer, offset: number): void {
    const head = this.reqHead;
    // Body framing broken in the bytes that came with the head: refused before anything is
    // forwarded or a server picked, as HAProxy does (a later error can only cut the exchange).
    let scannedTo = -1;
    if (head.chunked) {
      this.reqChunks.reset();
      if (head.headEnd < buf.length) {
        scannedTo = this.reqChunks.scan(buf, head.headEnd, buf.length);
        if (scannedTo === CHUNKED_ERROR) {
          this.reject(400, `bad chunked request body: ${this.reqChunks.error}`);
          return;
        }
      }
    }
    const now = Date.now();
    this.phase = PHASE_EXCHANGE;
    this.start = now;
    this.deadline = 0;
    this.frontend = this.listener.frontend;
    const frontend = this.frontend;
    frontend.counters.reqTot++;
    if (frontend.config.redirectHttps !== null) {
      this.redirectToHttps(buf, offset, frontend.config.redirectHttps);
      return;
    }
    // The routing decision (src/routing/routing.ts): the default backend unless the frontend
    // has routes, rules or user code; then a route may pick another backend or answer here.
    const routing = frontend.routing;
    let backend = routing.defaultBackend;
    let routed: RequestView | null = null;
    if (routing.active) {
      routed = this.view ??= new RequestView(this.clientIp);
      routed.begin(head, buf);
      routing.decide(routed);
      // User hooks (src/usercode): after the decision, before the request is sent.
      if (routing.hooks !== null && routed.backend !== null) routing.hooks.onRequest(routed);
      backend = routed.backend ?? backend;
    }
    this.routed = routed;
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
      this.reqDone = false;
    } else if (head.contentLength > 0) {
      this.reqBody = BODY_LENGTH;
      this.reqRemaining = head.contentLength;
      this.reqDone = false;
    } else {
      this.reqBody = BODY_NONE;
      this.reqDone = true;
    }

    if (routed !== null && routed.backend === null) {
      this.answerHere(routed, buf);
      return;
    }

    this.requestOut = this.rewriteRequest(buf, offset);
    this.replayable = true;
    this.replayBody = null;
    this.replayBytes = this.requestOut.length;
    this.clientActive = coarseNow;

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
    // rate_limit: the frontend's, then the route's (src/overload/rate-limit.ts).
    const limiter = frontend.rateLimiter();
    if ((limiter !== null || this.connLimited) && this.rateLimited(limiter, now, buf, rest)) return;
    const route = routed === null ? null : routed.route;
    if (route !== null && route.limiter !== null && this.rateLimited(route.limiter, now, buf, rest)) {
      route.stats.rateLimited++;
      return;
    }
    if (!this.connectServer(now)) return;
    if (rest < buf.length) {
      if (!this.reqDone) this.forwardRequestBody(buf, rest, scannedTo);
      else this.hold(buf.subarray(rest));
    }
  }

  /**
   * `rate_limit` (src/overload/rate-limit.ts): a request over its client address's rate, or on
   * a connection over the address's count, is answered 429 with Retry-After and never
   * forwarded. True when it was. Keep-alive goes on after a rate refusal (the client may come
   * back after Retry-After); a connection over the count is closed.
   */
  private rateLimited(limiter: RateLimiter | null, now: number, buf: Buffer, rest: number): boolean {
    let wait = 1;
    let limit = LIMIT_RATE_CONNECTIONS;
    if (!this.connLimited) {
      wait = limiter!.take(this.clientIp, now);
      if (wait === 0) return false;
      limit = LIMIT_RATE_REQUESTS;
    }
    const c = this.frontend.counters;
    c.rateLimited++;
    c.dreq++;
    c.response(429, 0);
    this.status = 429;
    this.backend = null;
    this.requestOut = null;
    this.logAccess(`limit reached: ${limit}`);
    this.resDone = true;
    const close = this.connLimited || !this.reqDone || !this.keepAlive || this.listener.stopping;
    this.socket.write(cannedResponse(429, null, close, limit, wait));
    if (close) {
      this.closeAfterWrite();
      return true;
    }
    if (rest < buf.length) this.hold(buf.subarray(rest));
    this.finishExchange();
    return true;
  }

  /**
   * redirect_https: the request is answered here, never forwarded. Keep-alive continues when the
   * request has no body; one with a body closes after the answer (we will not read it).
   */
  private redirectToHttps(buf: Buffer, offset: number, redirect: NonNullable<FrontendConfig['redirectHttps']>): void {
    const head = this.reqHead;
    this.method = head.method;
    this.target = this.listener.accessLog !== null ? head.target : '';
    this.backend = null;
    this.routed = null;
    this.start = Date.now();
    const hasBody = head.chunked || head.contentLength > 0;
    const close = hasBody || this.listener.stopping || (head.minor === 1 ? head.connectionClose : !head.connectionKeepAlive);
    this.keepAlive = !close;
    const response = httpsRedirect(head, buf, redirect, close);
    if (response === null) {
      this.reject(400, 'no usable Host for the https redirect');
      return;
    }
    this.status = redirect.status;
    this.bytesIn = head.headEnd - offset;
    this.frontend.counters.response(redirect.status, 0);
    this.logAccess('redirect to https');
    this.socket.write(response);
    if (close) {
      this.closeAfterWrite();
      return;
    }
    this.phase = PHASE_EXCHANGE;
    this.reqDone = true;
    this.resDone = true;
    if (head.headEnd < buf.length) this.hold(buf.subarray(head.headEnd));
    this.finishExchange();
  }

  /** The head as the server gets it: hop-by-hop fields dropped, forwarding fields added. */
  protected rewriteRequest(buf: Buffer, offset: number): Buffer {
    const head = this.reqHead;
    // From anyone but a trusted proxy, client-sent forwarding fields are replaced (trusted-proxies.ts).
    let extra = (head.xff === null && head.forwarded === null) || !this.peerTrusted() ? this.forwardedLines : forwardingLines(this.clientIp, head.xff, this.proto, head.forwarded);
    if (this.wantsTunnel) extra += CONNECTION_UPGRADE;
    const routed = this.routed;
    // Header rules, path rewrite, request id (src/routing/head-edit.ts).
    if (routed !== null && (routed.plan !== null || routed.edits !== null)) return routedRequestHead(head, buf, offset, extra, routed);
    return rewriteHead(head, buf, offset, extra, buf.length);
  }

  /**
   * A route (or user code) answered the request itself: redirect, deny. Nothing goes to a
   * server; the connection stays open unless a request body is still arriving (it cannot be
   * told apart from the next request without reading it) or the client asked to close.
   */
  protected answerHere(routed: RequestView, buf: Buffer): void {
    this.backend = null;
    const close = !this.reqDone || !this.keepAlive || this.listener.stopping;
    const rest = this.reqHead.headEnd;
    if (!close && rest < buf.length) this.hold(buf.subarray(rest));
    const status = routed.answerStatus;
    this.status = status;
    const out = answerBytes(routed, close);
    this.bytesOut = out.length;
    this.frontend.counters.response(status, Date.now() - this.start);
    this.logAccess(routed.answerWhy);
    this.resDone = true;
    this.frontend.counters.bout += out.length;
    this.socket.write(out);
    if (close) this.closeAfterWrite();
    else this.finishExchange();
  }

  protected sendUpstream(data: Buffer): void {
    this.bytesIn += data.length;
    this.countToServer(data.length);
    if (this.replayable && this.keepForReplay(data)) this.clientChunkKept = true;
    if (this.held !== null) {
      this.held.push(data);
      // Hold at most one read's worth while connecting: stop reading until the connection opens.
      this.socket.pause();
      return;
    }
    this.writeUpstream(data);
  }

  /** Client bytes to the server, with backpressure; notes a write left queued (read-buffer.ts). */
  protected writeUpstream(data: Buffer): void {
    const socket = this.upstream!.socket;
    this.serverActive = coarseNow;
    if (!socket.write(data)) this.socket.pause();
    if (socket.writableLength > 0) this.clientChunkKept = true;
  }

  /** Body bytes from buf[offset..]; `scannedTo` >= 0: a chunked body already scanned up to there. */
  protected forwardRequestBody(buf: Buffer, offset: number, scannedTo: number): void {
    let end = buf.length;
    if (this.reqBody === BODY_LENGTH) {
      const n = Math.min(this.reqRemaining, end - offset);
      this.reqRemaining -= n;
      end = offset + n;
      if (this.reqRemaining === 0) this.reqDone = true;
    } else {
      const e = scannedTo >= 0 ? scannedTo : this.reqChunks.scan(buf, offset, end);
      if (e === CHUNKED_ERROR) {
        // Part of the message already went out: abort both sides; the server connection is
        // closed before the message completes, never reused (releaseServer(false)).
        this.frontend.counters.ereq++;
        this.abort(this.resStarted ? 0 : 400, `bad chunked request body: ${this.reqChunks.error}`);
        return;
      }
      end = e;
      if (this.reqChunks.done) this.reqDone = true;
    }
    if (end > offset) this.sendUpstream(offset === 0 && end === buf.length ? buf : buf.subarray(offset, end));
    if (this.reqDone) {
      if (end < buf.length) this.hold(buf.subarray(end));
      if (this.resDone) this.finishExchange();
    }
  }

  onClientEnd(): void {
    // Half-close from the client: finish what is in flight, then close.
    this.keepAlive = false;
    if (this.phase === PHASE_HEAD) this.close();
    else if (this.phase === PHASE_TUNNEL) this.upstream?.socket.end();
    else if (this.phase === PHASE_EXCHANGE && !this.reqDone) {
      // The request body never completed: nothing sensible can be forwarded.
      this.frontend.counters.cliAbrt++;
      this.abort(0, 'client closed during request body');
    }
  }

  onClientClose(): void {
    if (this.phase !== PHASE_CLOSED) {
      if (this.phase === PHASE_EXCHANGE || this.phase === PHASE_TUNNEL) {
        if (!this.resDone) {
          this.frontend.counters.cliAbrt++;
          if (this.server !== null) this.server.counters.cliAbrt++;
          this.logAccess('client aborted');
        }
      }
      this.phase = PHASE_CLOSED;
    }
    this.releaseServer(false);
    untrack(this);
    this.listener.sessionClosed(this);
  }

  onClientDrain(): void {
    this.clientActive = coarseNow;
    const up = this.upstream;
    if (up !== null && (this.phase === PHASE_EXCHANGE || this.phase === PHASE_TUNNEL)) up.socket.resume();
  }

  /** Both directions complete: pool the server connection and serve the next request. */
  protected finishExchange(): void {
    this.releaseServer(this.upstreamReusable);
    this.requestOut = null;
    if (!this.keepAlive || this.listener.stopping) {
      this.closeAfterWrite();
      return;
    }
    this.phase = PHASE_HEAD;
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
}


function session(socket: Socket): HttpSession {
  return readerOf<HttpSession>(socket);
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
function noop(): void {}


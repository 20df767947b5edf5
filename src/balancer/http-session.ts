import type { ClientSocket } from '../model/proxy-socket.js';
import type { Backend } from '../model/backend.js';
import type { Server } from '../model/server.js';
import type { FrontendConfig } from '../config/types.js';
import { CHUNKED_ERROR } from './chunked.js';
import { HttpHead, PARSE_INCOMPLETE, PARSE_OK } from './http-head.js';
import { cannedResponse } from './responses.js';
import { readCookie } from './head-rewrite.js';
import { coarseNow, track, untrack, type Expirable } from './sweeper.js';
import { readerOf, setReader, type SocketReader } from './read-buffer.js';
import type { AccessLog } from './access-log.js';
import { abortConnectOnTimeout } from './server-connect.js';
import { HttpExchange, PHASE_CLOSED, PHASE_EXCHANGE, PHASE_HEAD, PHASE_TUNNEL, type ListenerState } from './http-exchange.js';
import { HttpServerSide, type ExchangeEnds } from './http-server-side.js';
import { LATE_CLIENT, LATE_SERVER, whoIsLate } from './http-timeouts.js';
import { BODY_BROKEN, BODY_KEPT, ClientInput, NOT_SCANNED } from './client-input.js';
import { RequestRewriter } from './http-request-rewrite.js';
import { logExchange, recordResponse } from './http-exchange-log.js';
import { RequestView } from '../routing/request-view.js';
import { answerBytes } from '../routing/routing.js';
import type { RateLimiter } from '../overload/rate-limit.js';
import { LIMIT_RATE_CONNECTIONS, LIMIT_RATE_REQUESTS, NO_SERVER } from '../overload/refusals.js';
import { httpsRedirect } from './https-redirect.js';

// The client side of an HTTP connection, on top of the server side (http-exchange.ts explains
// the parts): request heads parsed with our own strict HTTP/1.1 framing (anything ambiguous is
// answered 400 and never forwarded), routed, rewritten (hop-by-hop fields out, forwarding
// fields in) and handed to the server side with the body, with backpressure; pipelined requests
// wait their turn. It owns how an exchange ends: answers of our own, aborts, timeouts, the
// access log, then the next request or a close.

/** What a session needs from the listener that accepted it. */
export interface HttpListenerContext extends ListenerState {
  readonly accessLog: AccessLog | null;
  /** Client sockets were created with `onread` (read-buffer.ts): reads come through onRead. */
  readonly onreadClients: boolean;
  /** The frontend terminates TLS: forwarded proto is https. */
  readonly secure: boolean;
  sessionClosed(session: HttpSession): void;
}

export class HttpSession implements SocketReader, Expirable, ExchangeEnds {
  readonly exchange: HttpExchange;
  private readonly serverSide: HttpServerSide;
  readonly clientIp: string;
  private readonly rewriter: RequestRewriter;
  private readonly reqHead: HttpHead;
  /** Request bodies to the server side; client bytes not consumed yet (exchange.pending). */
  private readonly input: ClientInput;
  /** When the current head began to arrive (http_request timeout). */
  private headStart = 0;
  /** The current client read's chunk is still referenced by a queued write. */
  private clientChunkKept = false;
  /** The connection's request view (src/routing), made on its first routed request. */
  private view: RequestView | null = null;
  /** Accepted over `rate_limit.connections` for its address (listener.ts): its first request gets 429. */
  connLimited = false;
  /** The current request said the client closes after it (Connection: close, HTTP/1.0 without keep-alive). */
  private clientCloses = false;

  constructor(
    readonly socket: ClientSocket,
    private readonly listener: HttpListenerContext,
  ) {
    const x = new HttpExchange(listener);
    this.exchange = x;
    this.rewriter = new RequestRewriter(socket, listener.secure);
    const ip = this.rewriter.clientIp;
    this.clientIp = ip;
    const limits = x.frontend.config.limits;
    this.reqHead = new HttpHead(limits);
    this.serverSide = new HttpServerSide(x, socket, this, ip, limits);
    this.input = new ClientInput(x, socket, this.serverSide);
    setReader(socket, this, listener.onreadClients);
    socket.on('end', onClientEnd);
    socket.on('close', onClientClose);
    socket.on('error', noop);
    socket.on('drain', onClientDrain);
    track(this);
    x.deadline = coarseNow + x.frontend.config.timeouts.httpRequestMs;
  }

  // Read by the sweeper (Expirable) and by `show sess` (runtime-api/sessions.ts).
  get deadline(): number {
    return this.exchange.deadline;
  }
  set deadline(at: number) {
    this.exchange.deadline = at;
  }
  get backend(): Backend | null {
    return this.exchange.backend;
  }
  get server(): Server | null {
    return this.serverSide.server;
  }
  get start(): number {
    return this.exchange.start;
  }

  /** A client read through `onread`: true when `chunk` is still referenced afterwards. */
  onRead(chunk: Buffer): boolean {
    this.clientChunkKept = false;
    this.onClientData(chunk);
    return this.clientChunkKept || this.exchange.pending !== null || this.serverSide.holding();
  }

  private onClientData(chunk: Buffer): void {
    const x = this.exchange;
    x.frontend.counters.bin += chunk.length;
    switch (x.phase) {
      case PHASE_HEAD:
        if (x.pending !== null) {
          const grown = this.input.append(chunk);
          if (!this.reqHead.worthReparsing(chunk, grown.length)) {
            x.pending = grown;
            return;
          }
          chunk = grown;
          x.pending = null;
        } else {
          this.headStart = coarseNow;
        }
        this.processInput(chunk, 0);
        return;
      case PHASE_EXCHANGE:
        x.clientActive = coarseNow;
        if (!x.reqDone) this.forwardRequestBody(chunk, 0, NOT_SCANNED);
        else this.input.hold(chunk);
        return;
      case PHASE_TUNNEL:
        x.bytesIn += chunk.length;
        this.serverSide.countToServer(chunk.length);
        if (this.serverSide.write(chunk)) this.clientChunkKept = true;
        return;
      default:
        return;
    }
  }

  /** Parse requests from buf[offset..]; runs again for pipelined requests after each exchange. */
  private processInput(buf: Buffer, offset: number): void {
    const head = this.reqHead;
    const x = this.exchange;
    const r = head.parseRequest(buf, offset, buf.length);
    if (r === PARSE_INCOMPLETE) {
      x.pending = offset === 0 ? buf : buf.subarray(offset);
      // Slow-loris guard: the whole head must arrive within http_request.
      if (Date.now() - this.headStart > x.frontend.config.timeouts.httpRequestMs) this.reject(408, 'request head not received in time');
      else x.deadline = this.headStart + x.frontend.config.timeouts.httpRequestMs;
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
    const x = this.exchange;
    const c = x.frontend.counters;
    c.ereq++;
    c.reqTot++;
    c.response(status, 0);
    x.status = status;
    this.logAccess(why);
    x.phase = PHASE_CLOSED;
    this.linger(cannedResponse(status, null, true));
  }

  private beginExchange(buf: Buffer, offset: number): void {
    const head = this.reqHead;
    const x = this.exchange;
    const scannedTo = this.input.frame(head, buf);
    if (scannedTo === CHUNKED_ERROR) {
      this.reject(400, `bad chunked request body: ${this.input.chunkError}`);
      return;
    }
    const now = Date.now();
    x.phase = PHASE_EXCHANGE;
    x.start = now;
    x.deadline = 0;
    x.frontend = this.listener.frontend;
    const frontend = x.frontend;
    frontend.counters.reqTot++;
    x.method = head.method;
    // The target as a string only for the access log (it costs an allocation per request).
    x.target = this.listener.accessLog !== null ? head.target : '';
    x.clientMinor = head.minor;
    x.isHeadRequest = head.method === 'HEAD';
    x.status = 0;
    x.bytesIn = head.headEnd - offset;
    x.bytesOut = 0;
    x.connectedAt = 0;
    x.resStarted = false;
    x.resDone = false;
    x.upstreamReusable = false;
    if (frontend.config.redirectHttps !== null) {
      this.redirectToHttps(buf, frontend.config.redirectHttps);
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
    x.routed = routed;
    x.backend = backend;
    this.clientCloses = head.minor === 1 ? head.connectionClose : !head.connectionKeepAlive;
    x.keepAlive = !this.listener.stopping && !this.clientCloses;
    x.wantsTunnel = head.hasUpgrade && head.connectionUpgrade;
    if (x.wantsTunnel) head.keepUpgrade(buf);
    if (routed !== null && routed.backend === null) {
      this.answerHere(routed, buf);
      return;
    }

    const serverSide = this.serverSide;
    serverSide.begin(this.rewriter.rewrite(head, buf, offset, frontend.config, x.wantsTunnel, routed));
    x.clientActive = coarseNow;
    const sticky = backend.config.sticky;
    // The name is kept with the exchange: a reload may change the backend's sticky settings
    // before the response arrives.
    x.stickyCookieName = sticky !== null && sticky.type === 'cookie' ? sticky.name : '';
    serverSide.ctx.stickyCookie = x.stickyCookieName !== '' && head.cookie !== null ? readCookie(head.cookie, x.stickyCookieName) : null;

    // The head is copied into the server side's request; what follows is body or the next request.
    const rest = head.headEnd;
    // rate_limit: the frontend's, then the route's (src/overload/rate-limit.ts).
    const limiter = frontend.rateLimiter();
    if ((limiter !== null || this.connLimited) && this.rateLimited(limiter, now, buf, rest)) return;
    const route = routed === null ? null : routed.route;
    if (route !== null && route.limiter !== null && this.rateLimited(route.limiter, now, buf, rest)) {
      route.stats.rateLimited++;
      return;
    }
    if (!serverSide.connect(now)) return;
    if (rest < buf.length) {
      if (!x.reqDone) this.forwardRequestBody(buf, rest, scannedTo);
      else this.input.hold(buf.subarray(rest));
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
    const x = this.exchange;
    const c = x.frontend.counters;
    c.rateLimited++;
    c.dreq++;
    c.response(429, 0);
    x.status = 429;
    x.backend = null;
    this.serverSide.forgetRequest();
    this.logAccess(`limit reached: ${limit}`);
    const close = this.connLimited || !x.reqDone || !x.keepAlive || this.listener.stopping;
    this.answeredHere(cannedResponse(429, null, close, limit, wait), close, buf, rest);
    return true;
  }

  /**
   * redirect_https: the request is answered here, never forwarded. Keep-alive continues when the
   * request has no body; one with a body closes after the answer (we will not read it).
   */
  private redirectToHttps(buf: Buffer, redirect: NonNullable<FrontendConfig['redirectHttps']>): void {
    const head = this.reqHead;
    const x = this.exchange;
    x.backend = null;
    x.routed = null;
    const close = !x.reqDone || this.listener.stopping || (head.minor === 1 ? head.connectionClose : !head.connectionKeepAlive);
    x.keepAlive = !close;
    const response = httpsRedirect(head, buf, redirect, close);
    if (response === null) {
      this.reject(400, 'no usable Host for the https redirect');
      return;
    }
    x.status = redirect.status;
    x.frontend.counters.response(redirect.status, 0);
    this.logAccess('redirect to https');
    this.answeredHere(response, close, buf, head.headEnd);
  }

  /**
   * A route (or user code) answered the request itself: redirect, deny. Nothing goes to a
   * server; the connection stays open unless a request body is still arriving (it cannot be
   * told apart from the next request without reading it) or the client asked to close.
   */
  private answerHere(routed: RequestView, buf: Buffer): void {
    const x = this.exchange;
    x.backend = null;
    const close = !x.reqDone || !x.keepAlive || this.listener.stopping;
    const status = routed.answerStatus;
    x.status = status;
    const out = answerBytes(routed, close);
    x.bytesOut = out.length;
    x.frontend.counters.response(status, Date.now() - x.start);
    this.logAccess(routed.answerWhy);
    x.frontend.counters.bout += out.length;
    this.answeredHere(out, close, buf, this.reqHead.headEnd);
  }

  /**
   * Our own answer instead of a server's (429, a redirect, a route's answer) is written; the
   * connection goes on with buf[rest..] (the next request) unless `close`.
   */
  private answeredHere(out: Buffer, close: boolean, buf: Buffer, rest: number): void {
    this.exchange.resDone = true;
    this.socket.write(out);
    if (close) {
      this.close();
      return;
    }
    if (rest < buf.length) this.input.hold(buf.subarray(rest));
    this.finishExchange();
  }

  /** Body bytes from buf[offset..] on to the server (client-input.ts); the exchange may end here. */
  private forwardRequestBody(buf: Buffer, offset: number, scannedTo: number): void {
    const x = this.exchange;
    const sent = this.input.forward(buf, offset, scannedTo);
    if (sent === BODY_BROKEN) {
      // Part of the message already went out: abort both sides; the server connection is
      // closed before the message completes, never reused (release(false)).
      x.frontend.counters.ereq++;
      this.abort(x.resStarted ? 0 : 400, `bad chunked request body: ${this.input.chunkError}`);
      return;
    }
    if (sent === BODY_KEPT) this.clientChunkKept = true;
    if (x.reqDone && x.resDone) this.finishExchange();
  }

  onClientEnd(): void {
    const x = this.exchange;
    // Half-close from the client: finish what is in flight, then close.
    x.keepAlive = false;
    if (x.phase === PHASE_HEAD) this.close();
    else if (x.phase === PHASE_TUNNEL) this.serverSide.upstream?.socket.end();
    else if (x.phase === PHASE_EXCHANGE && !x.reqDone) {
      // The request body never completed: nothing sensible can be forwarded.
      x.frontend.counters.cliAbrt++;
      this.abort(0, 'client closed during request body');
    }
  }

  onClientClose(): void {
    const x = this.exchange;
    if (x.phase !== PHASE_CLOSED) {
      if ((x.phase === PHASE_EXCHANGE || x.phase === PHASE_TUNNEL) && !x.resDone) {
        x.frontend.counters.cliAbrt++;
        const server = this.serverSide.server;
        if (server !== null) server.counters.cliAbrt++;
        this.logAccess('client aborted');
      }
      x.phase = PHASE_CLOSED;
    }
    this.serverSide.release(false);
    untrack(this);
    this.listener.sessionClosed(this);
  }

  onClientDrain(): void {
    const x = this.exchange;
    x.clientActive = coarseNow;
    const up = this.serverSide.upstream;
    if (up !== null && (x.phase === PHASE_EXCHANGE || x.phase === PHASE_TUNNEL)) up.socket.resume();
  }

  // --- how an exchange ends (ExchangeEnds: the server side reports here)

  /** The response is complete: record it; then the next request, or a close. */
  responseDone(): void {
    const x = this.exchange;
    this.recordResponse();
    if (x.reqDone) this.finishExchange();
    else if (!x.keepAlive) {
      // The server answered before the request body finished (e.g. 413), or the body is
      // close-delimited: stop here.
      this.serverSide.release(false);
      this.close();
    }
  }

  /** Answer from the balancer itself (503, 502, 504…) and end or continue the connection. */
  answer(status: number, why: string, limit: string): void {
    const x = this.exchange;
    x.status = status;
    const backend = x.backend;
    if (backend !== null && status >= 500) backend.counters.response(status, Date.now() - x.start);
    x.frontend.counters.response(status, Date.now() - x.start);
    this.logAccess(why);
    this.serverSide.release(false);
    x.resDone = true;
    // A request whose body is still arriving cannot be resynchronised: close after answering.
    const close = !x.reqDone || !x.keepAlive || this.listener.stopping;
    this.socket.write(cannedResponse(status, backend?.name ?? null, close, limit));
    if (close) this.close();
    else this.finishExchange();
  }

  /** Abort an exchange mid-way: answer `status` if nothing was sent yet (0: just close). */
  abort(status: number, why: string): void {
    const x = this.exchange;
    if (status !== 0 && !x.resStarted) {
      this.answer(status, why, NO_SERVER);
      this.close();
      return;
    }
    this.logAccess(why);
    this.serverSide.release(false);
    x.phase = PHASE_CLOSED;
    this.socket.destroy();
  }

  /** The server's 101 went to the client: bytes flow both ways until either side closes. */
  tunnelOpened(): void {
    this.recordResponse();
  }

  tunnelClosed(): void {
    this.serverSide.release(false);
    this.close();
  }

  /** Both directions complete: pool the server connection and serve the next request. */
  private finishExchange(): void {
    const x = this.exchange;
    this.serverSide.release(x.upstreamReusable);
    if (!x.keepAlive || this.listener.stopping) {
      this.close();
      return;
    }
    x.phase = PHASE_HEAD;
    x.deadline = coarseNow + x.frontend.config.timeouts.keepAliveMs;
    const pending = x.pending;
    if (pending !== null) {
      x.pending = null;
      this.headStart = coarseNow;
      if (this.socket.isPaused()) this.socket.resume();
      this.processInput(pending, 0);
    } else if (this.socket.isPaused()) {
      this.socket.resume();
    }
  }

  /**
   * Close once what was written is sent. A client that said it closes after this request, sent
   * all of it and nothing after it, will send nothing more (RFC 9112 9.6): once everything is
   * with the kernel the connection is closed at once, as nginx does, instead of half-closed and
   * kept until the client's own close (a shutdown, a read and an event loop turn or two per
   * connection). Otherwise the close lingers, bounded by the client timeout (HAProxy's `timeout
   * client`): what the client still sends is read and dropped rather than answered with a reset
   * that could destroy the response in flight.
   */
  close(): void {
    const x = this.exchange;
    x.phase = PHASE_CLOSED;
    const socket = this.socket;
    if (this.clientCloses && x.reqDone && x.pending === null && socket.writableLength === 0) {
      x.deadline = 0;
      socket.destroy();
      return;
    }
    this.linger(undefined);
  }

  /**
   * A lingering close after `last` (close() says why), bounded by the client timeout: reading
   * goes on and what arrives is dropped (PHASE_CLOSED) until the client closes.
   */
  private linger(last: Buffer | undefined): void {
    this.exchange.deadline = coarseNow + this.exchange.frontend.config.timeouts.clientMs;
    if (last === undefined) this.socket.end();
    else this.socket.end(last);
  }

  /** Graceful stop: an idle keep-alive connection closes now; a busy one after its exchange. */
  stop(): void {
    const x = this.exchange;
    if (x.phase === PHASE_HEAD && x.pending === null) this.close();
    else x.keepAlive = false;
  }

  expire(now: number): void {
    const x = this.exchange;
    x.deadline = 0;
    switch (x.phase) {
      case PHASE_HEAD:
        // A partial head past http_request gets 408; an idle keep-alive (or never used)
        // connection is closed quietly (HAProxy `timeout http-keep-alive`, browsers' preconnects).
        if (x.pending !== null) this.reject(408, 'request head not received in time');
        else this.close();
        return;
      case PHASE_EXCHANGE:
        this.expireExchange(now);
        return;
      case PHASE_CLOSED:
        // A lingering close the client never finished.
        this.socket.destroy();
        return;
      default:
        return;
    }
  }

  /** A look at an exchange under way (http-timeouts.ts has the model). */
  private expireExchange(now: number): void {
    const serverSide = this.serverSide;
    // Waiting in the backend's queue (src/overload): the queue timeout decides.
    if (serverSide.queueTimedOut(now)) return;
    const up = serverSide.upstream;
    if (abortConnectOnTimeout(up)) return;
    const x = this.exchange;
    if (x.backend === null) {
      // Answered here (a route's redirect or deny) and still being written: nothing to wait on.
      this.abort(0, 'client timeout');
      return;
    }
    switch (whoIsLate(x, this.socket, up, now)) {
      case LATE_CLIENT:
        this.clientTimeout();
        return;
      case LATE_SERVER:
        serverSide.timedOut();
        return;
      default:
        return;
    }
  }

  /** The client went quiet while we waited on it: 408, or a close once a response started. */
  private clientTimeout(): void {
    const x = this.exchange;
    x.frontend.counters.cliAbrt++;
    const server = this.serverSide.server;
    if (server !== null) server.counters.cliAbrt++;
    x.keepAlive = false;
    // A client that does not even read (bytes of ours still queued) gets no answer: a close.
    if (!x.resStarted && this.socket.writableLength === 0) this.answer(408, 'client timeout', NO_SERVER);
    else this.abort(0, 'client timeout');
  }

  private recordResponse(): void {
    recordResponse(this.exchange, this.serverSide.server, this.listener.accessLog, this.clientIp, this.reqHead);
  }

  private logAccess(why: string): void {
    logExchange(this.listener.accessLog, this.exchange, this.serverSide.server, this.clientIp, this.reqHead, why);
  }
}

function session(socket: ClientSocket): HttpSession {
  return readerOf<HttpSession>(socket);
}
function onClientEnd(this: ClientSocket): void {
  session(this).onClientEnd();
}
function onClientClose(this: ClientSocket): void {
  session(this).onClientClose();
}
function onClientDrain(this: ClientSocket): void {
  session(this).onClientDrain();
}
function noop(): void {}

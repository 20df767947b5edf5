import type { ClientSocket } from '../model/proxy-socket.js';
import type { Server } from '../model/server.js';
import type { BalanceContext } from '../strategies/sticky.js';
import { CHUNKED_ERROR, ChunkedScanner } from './chunked.js';
import { HttpHead, PARSE_INCOMPLETE, PARSE_OK, type ParserLimits } from './http-head.js';
import { rewriteHead } from './head-rewrite.js';
import { writeKept } from './read-buffer.js';
import { coarseNow } from './sweeper.js';
import type { Upstream } from './upstream.js';
import { routedResponseLines } from '../routing/head-edit.js';
import { BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE, PHASE_TUNNEL, type HttpExchange } from './http-exchange.js';

// What comes back from the server (http-exchange.ts explains the parts): the response head
// parsed with the same strict framing as requests (a malformed one becomes our 502, never
// passed through), hop-by-hop fields dropped, the head written verbatim whenever nothing in it
// changes, the body relayed to the client with backpressure until its framing says it ended,
// and a 101 response turned into a tunnel. The relay decides nothing about the server
// connection: read() returns what happened (RELAY_*), and the server side acts on it.

/** Body bytes up to this size are copied next to a rewritten head and written once. */
const COALESCE_BYTES = 16384;

const CONNECTION_CLOSE = 'Connection: close\r\n';
const CONNECTION_KEEP_ALIVE = 'Connection: keep-alive\r\n';
export const CONNECTION_UPGRADE = 'Connection: upgrade\r\n';

// What read() found (`why` says why for the failures).
/** Relayed what there was; more to come. */
export const RELAY_MORE = 0;
/** The response is complete (exchange.resDone). */
export const RELAY_DONE = 1;
/** Drop this answer unseen and send the request again (retry_on: a status, junk). */
export const RELAY_RESEND = 2;
/** Nothing went to the client: answer 502 instead. */
export const RELAY_FAILED = 3;
/** Cut the exchange: `abortStatus` if nothing went to the client yet, else 0 (just close). */
export const RELAY_ABORT = 4;
/** A 101 went to the client: the connection is a tunnel now (exchange.phase). */
export const RELAY_TUNNEL = 5;

export class HttpResponseRelay {
  readonly head: HttpHead;
  private readonly chunks = new ChunkedScanner();
  /** A partial response head from the server. */
  pending: Buffer | null = null;
  private body = BODY_NONE;
  /** BODY_LENGTH: body bytes still to relay. */
  private remaining = 0;
  /** A head (interim or final) was parsed for this request: the retry window closed. */
  answered = false;
  /** The current server read's chunk is still referenced by a queued client write. */
  chunkKept = false;
  /** Why RELAY_RESEND, RELAY_FAILED or RELAY_ABORT. */
  why = '';
  abortStatus = 0;

  constructor(
    private readonly exchange: HttpExchange,
    /** The client socket: responses go there. */
    private readonly client: ClientSocket,
    /** The server side's balance context: a sticky pick leaves its cookie in it. */
    private readonly ctx: BalanceContext,
    limits: ParserLimits,
  ) {
    this.head = new HttpHead({
      maxRequestLine: limits.maxRequestLine,
      maxHeaderBytes: Math.max(limits.maxHeaderBytes, 65536),
      maxHeaders: Math.max(limits.maxHeaders, 200),
    });
  }

  /** A new request: no response yet. */
  begin(): void {
    this.pending = null;
    this.answered = false;
    this.head.interim = 0;
  }

  /** Whether the response is delimited by the server closing the connection. */
  get closeDelimited(): boolean {
    return this.body === BODY_CLOSE;
  }

  /** Response bytes from `server`'s connection `up` (neither tunnel nor after the response). */
  read(up: Upstream, server: Server, chunk: Buffer, mayResend: boolean): number {
    if (this.exchange.resStarted) return this.forwardBody(up, chunk, 0);
    if (this.pending !== null) {
      chunk = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    return this.readHead(up, server, chunk, 0, mayResend);
  }

  private readHead(up: Upstream, server: Server, buf: Buffer, offset: number, mayResend: boolean): number {
    const head = this.head;
    const r = head.parseResponse(buf, offset, buf.length);
    if (r === PARSE_INCOMPLETE) {
      this.pending = offset === 0 ? buf : buf.subarray(offset);
      return RELAY_MORE;
    }
    const x = this.exchange;
    const backend = x.backend!;
    if (r !== PARSE_OK) {
      server.counters.eresp++;
      backend.counters.eresp++;
      backend.observer?.failure(server, '5xx');
      this.why = `invalid response: ${head.error}`;
      return backend.config.retryOn.junkResponse && mayResend ? RELAY_RESEND : RELAY_FAILED;
    }
    const status = head.status;
    if (!this.answered) {
      // `retry_on: [503, ...]`: this answer is dropped unseen and the request goes elsewhere.
      if (status >= 400 && mayResend && backend.config.retryOn.statuses.includes(status)) {
        server.counters.response(status, Date.now() - x.start);
        if (status >= 500) backend.observer?.failure(server, '5xx');
        this.why = `server answered ${status}`;
        return RELAY_RESEND;
      }
      this.answered = true;
    }
    if (status < 200 && status !== 101) {
      // Interim response (100 Continue, 103 Early Hints): relay it and keep waiting; never to
      // an HTTP/1.0 client, which has no 1xx (RFC 9110 §15.2).
      if (x.clientMinor === 1) this.writeClient(rewriteHead(head, buf, offset, '', buf.length), up);
      if (head.headEnd < buf.length) return this.readHead(up, server, buf, head.headEnd, false);
      return RELAY_MORE;
    }
    x.status = status;
    x.resStarted = true;
    server.counters.observeFirstByte(Date.now() - x.start);
    if (status === 101) {
      if (!x.wantsTunnel) {
        server.counters.eresp++;
        this.why = 'unsolicited 101 response';
        return RELAY_FAILED;
      }
      this.enterTunnel(up, buf, offset);
      return RELAY_TUNNEL;
    }
    // Response framing (RFC 9112 §6.3).
    if (x.isHeadRequest || status === 204 || status === 304) {
      this.body = BODY_NONE;
    } else if (head.chunked) {
      this.body = BODY_CHUNKED;
      this.chunks.reset();
    } else if (head.transferCoded) {
      // Transfer-Encoding whose last coding is not chunked: the body ends when the server
      // closes (RFC 9112 §6.3 ¶4).
      this.body = BODY_CLOSE;
    } else if (head.contentLength >= 0) {
      this.body = head.contentLength === 0 ? BODY_NONE : BODY_LENGTH;
      this.remaining = head.contentLength;
    } else {
      this.body = BODY_CLOSE;
    }
    // Content-Length next to Transfer-Encoding (dropped by the parser): framed by chunked, and
    // the connection is not reused after such a message (RFC 9112 §6.1, §6.3 ¶3).
    x.upstreamReusable = this.body !== BODY_CLOSE && !head.framingConflict && (head.minor === 1 ? !head.connectionClose : head.connectionKeepAlive);
    // A response the client cannot delimit except by close, or a request body left unread:
    // the client connection ends with this exchange.
    if (this.body === BODY_CLOSE || !x.reqDone || x.listener.stopping) x.keepAlive = false;
    let extra = '';
    if (this.ctx.setStickyCookie !== null && x.stickyCookieName !== '') {
      extra = `Set-Cookie: ${x.stickyCookieName}=${this.ctx.setStickyCookie}; Path=/; HttpOnly; SameSite=Lax\r\n`;
    }
    const routed = x.routed;
    if (routed !== null) {
      const hooks = x.frontend.routing.hooks; // the request's generation (frontends are per generation)
      if (hooks !== null && hooks.hasResponseHook) hooks.onResponse(routed, head, buf, server.name);
      if (routed.plan !== null || routed.responseEdits !== null) extra += routedResponseLines(head, buf, routed, backend, server);
    }
    if (!x.keepAlive) extra += CONNECTION_CLOSE;
    else if (head.soleKeepAliveLine !== -1)
      head.keepLine(head.soleKeepAliveLine); // ours too
    else if (x.clientMinor === 0) extra += CONNECTION_KEEP_ALIVE;
    const headEnd = head.headEnd;
    if (head.dropCount === 0 && extra === '') {
      // Fast path: the head goes out verbatim together with the body bytes of this read.
      x.bytesOut += headEnd - offset;
      return this.forwardBody(up, buf, offset, headEnd);
    }
    const rest = buf.length - headEnd;
    if (this.body === BODY_NONE || rest === 0) {
      const out = rewriteHead(head, buf, offset, extra, buf.length);
      x.bytesOut += out.length;
      this.writeClient(out, up);
      return this.body === BODY_NONE ? this.complete(buf, headEnd) : RELAY_MORE;
    }
    if (rest <= COALESCE_BYTES) {
      // Small body bytes ride in the same buffer as the rewritten head: one write() instead of
      // a corked writev (measured: the writev path costs more per response in Node's streams).
      const out = rewriteHead(head, buf, offset, extra, headEnd);
      const newHeadLen = out.length - rest;
      x.bytesOut += newHeadLen;
      return this.forwardBody(up, out, 0, newHeadLen);
    }
    const out = rewriteHead(head, buf, offset, extra, buf.length);
    x.bytesOut += out.length;
    this.client.cork();
    this.writeClient(out, up);
    const outcome = this.forwardBody(up, buf, headEnd);
    this.client.uncork();
    return outcome;
  }

  /**
   * Relay response body bytes buf[bodyStart..]; bytes from `from` (< bodyStart when the head
   * goes out verbatim with them) are written in the same call.
   */
  private forwardBody(up: Upstream, buf: Buffer, from: number, bodyStart = from): number {
    const x = this.exchange;
    let end = buf.length;
    switch (this.body) {
      case BODY_NONE:
        end = bodyStart;
        break;
      case BODY_LENGTH: {
        const n = Math.min(this.remaining, end - bodyStart);
        this.remaining -= n;
        end = bodyStart + n;
        break;
      }
      case BODY_CHUNKED: {
        const e = this.chunks.scan(buf, bodyStart, end);
        if (e === CHUNKED_ERROR) {
          up.server.counters.eresp++;
          if (from < bodyStart) {
            // The head was to go out with these bytes: the client has seen nothing of this
            // response yet, so it still gets a clean 502 (and a close) instead of a bare close.
            x.resStarted = false;
            x.keepAlive = false;
            x.bytesOut = 0;
          }
          this.abortStatus = x.resStarted ? 0 : 502;
          this.why = `bad chunked response: ${this.chunks.error}`;
          return RELAY_ABORT;
        }
        end = e;
        break;
      }
      default:
        break;
    }
    if (end > from) {
      x.bytesOut += end - bodyStart;
      this.writeClient(from === 0 && end === buf.length ? buf : buf.subarray(from, end), up);
    }
    const done = this.body === BODY_NONE || (this.body === BODY_LENGTH && this.remaining === 0) || (this.body === BODY_CHUNKED && this.chunks.done);
    return done ? this.complete(buf, end) : RELAY_MORE;
  }

  private complete(buf: Buffer, end: number): number {
    const x = this.exchange;
    x.resDone = true;
    // Extra bytes after the response: never reuse this connection.
    if (end < buf.length) x.upstreamReusable = false;
    return RELAY_DONE;
  }

  /** Server bytes to the client, with backpressure; notes a write left queued (read-buffer.ts). */
  writeClient(data: Buffer, up: Upstream): void {
    const x = this.exchange;
    x.frontend.counters.bout += data.length;
    x.clientActive = coarseNow;
    const socket = this.client;
    const queued = socket.writableLength;
    if (!socket.write(data)) up.socket.pause();
    if (writeKept(socket, queued)) this.chunkKept = true;
  }

  /** 101 Switching Protocols: its head and what followed it go to the client; bytes flow both ways from now on. */
  private enterTunnel(up: Upstream, buf: Buffer, offset: number): void {
    const x = this.exchange;
    x.phase = PHASE_TUNNEL;
    x.deadline = 0;
    x.resDone = true;
    const head = this.head;
    head.keepUpgrade(buf);
    this.writeClient(rewriteHead(head, buf, offset, CONNECTION_UPGRADE, buf.length), up);
    const rest = head.headEnd;
    if (rest < buf.length) this.writeClient(buf.subarray(rest), up);
  }
}

import type { Socket } from 'node:net';
import { CHUNKED_ERROR } from './chunked.js';
import { PARSE_INCOMPLETE, PARSE_OK } from './http-head.js';
import { rewriteHead } from './head-rewrite.js';
import { coarseNow } from './sweeper.js';
import type { Upstream } from './upstream.js';
import { routedResponseLines } from '../routing/head-edit.js';
import { BODY_CHUNKED, BODY_CLOSE, BODY_LENGTH, BODY_NONE, HttpExchange, PHASE_TUNNEL } from './http-exchange.js';

// What comes back from the server (http-exchange.ts explains the three layers): the response
// head parsed with the same strict framing as requests (a malformed one becomes our 502, never
// passed through), hop-by-hop fields dropped, the head written verbatim whenever nothing in it
// changes, the body relayed with backpressure until its framing says it ended, and 101
// responses turned into a tunnel.

/** Body bytes up to this size are copied next to a rewritten head and written once. */
const COALESCE_BYTES = 16384;

const CONNECTION_CLOSE = 'Connection: close\r\n';
const CONNECTION_KEEP_ALIVE = 'Connection: keep-alive\r\n';
export const CONNECTION_UPGRADE = 'Connection: upgrade\r\n';

export abstract class HttpResponder extends HttpExchange {
  /** A server read: true when `chunk` is still referenced afterwards (read-buffer.ts). */
  onUpstreamData(up: Upstream, chunk: Buffer): boolean {
    this.serverChunkKept = false;
    this.handleUpstreamData(up, chunk);
    return this.serverChunkKept || this.resPending !== null;
  }

  protected handleUpstreamData(up: Upstream, chunk: Buffer): void {
    if (up !== this.upstream) return;
    const server = this.server!;
    server.counters.bout += chunk.length;
    this.backend!.counters.bout += chunk.length;
    if (this.phase === PHASE_TUNNEL) {
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
    this.serverActive = coarseNow;
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

  protected processResponseHead(up: Upstream, buf: Buffer, offset: number): void {
    const head = this.resHead;
    const r = head.parseResponse(buf, offset, buf.length);
    if (r === PARSE_INCOMPLETE) {
      this.resPending = offset === 0 ? buf : buf.subarray(offset);
      return;
    }
    const server = this.server!;
    const backend = this.backend!;
    if (r !== PARSE_OK) {
      server.counters.eresp++;
      backend.counters.eresp++;
      backend.observer?.failure(server, '5xx');
      if (backend.config.retryOn.junkResponse && this.canResend()) {
        this.resend(server, `invalid response: ${head.error}`);
        return;
      }
      up.destroy();
      this.upstream = null;
      this.localResponse(502, `invalid response: ${head.error}`);
      return;
    }
    const status = head.status;
    if (this.requestOut !== null) {
      // `retry_on: [503, ...]`: this answer is dropped unseen and the request goes elsewhere.
      if (status >= 400 && backend.config.retryOn.statuses.includes(status) && this.canResend()) {
        server.counters.response(status, Date.now() - this.start);
        if (status >= 500) backend.observer?.failure(server, '5xx');
        this.resend(server, `server answered ${status}`);
        return;
      }
      this.requestOut = null;
    }
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
    } else if (head.transferCoded) {
      // Transfer-Encoding whose last coding is not chunked: the body ends when the server
      // closes (RFC 9112 §6.3 ¶4).
      this.resBody = BODY_CLOSE;
    } else if (head.contentLength >= 0) {
      this.resBody = head.contentLength === 0 ? BODY_NONE : BODY_LENGTH;
      this.resRemaining = head.contentLength;
    } else {
      this.resBody = BODY_CLOSE;
    }
    // Content-Length next to Transfer-Encoding (dropped by the parser): framed by chunked, and
    // the connection is not reused after such a message (RFC 9112 §6.1, §6.3 ¶3).
    this.upstreamReusable = this.resBody !== BODY_CLOSE && !head.framingConflict && (head.minor === 1 ? !head.connectionClose : head.connectionKeepAlive);
    // A response the client cannot delimit except by close, or a request body left unread:
    // the client connection ends with this exchange.
    if (this.resBody === BODY_CLOSE || !this.reqDone || this.listener.stopping) this.keepAlive = false;
    let extra = '';
    if (this.ctx.setStickyCookie !== null && this.stickyCookieName !== '') {
      extra = `Set-Cookie: ${this.stickyCookieName}=${this.ctx.setStickyCookie}; Path=/; HttpOnly; SameSite=Lax\r\n`;
    }
    const routed = this.routed;
    if (routed !== null) {
      const hooks = this.frontend.routing.hooks; // the request's generation (frontends are per generation)
      if (hooks !== null && hooks.hasResponseHook) hooks.onResponse(routed, head, buf, server.name);
    }
    if (routed !== null && (routed.plan !== null || routed.responseEdits !== null)) extra += routedResponseLines(head, buf, routed, this.backend!, server);
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
  protected rewriteResponse(buf: Buffer, offset: number, keepUpgrade: boolean, extra: string, tailFrom: number): Buffer {
    if (keepUpgrade) this.resHead.keepUpgrade(buf);
    return rewriteHead(this.resHead, buf, offset, extra, tailFrom);
  }

  /**
   * Forward response body bytes buf[bodyStart..]; bytes from `from` (< bodyStart when the head
   * goes out verbatim with them) are written in the same call.
   */
  protected forwardResponseBody(up: Upstream, buf: Buffer, from: number, bodyStart = from): void {
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
  protected writeClient(data: Buffer, up: Upstream): void {
    this.frontend.counters.bout += data.length;
    this.clientActive = coarseNow;
    const socket = this.socket;
    if (!socket.write(data)) up.socket.pause();
    if (socket.writableLength > 0) this.serverChunkKept = true;
  }

  protected responseComplete(up: Upstream, buf: Buffer, end: number): void {
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

  protected enterTunnel(up: Upstream, buf: Buffer, offset: number): void {
    this.phase = PHASE_TUNNEL;
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
}

/** A tunnel idle past its timeout (socket inactivity, HAProxy's `timeout tunnel`). */
function onTunnelTimeout(this: Socket): void {
  this.destroy();
}

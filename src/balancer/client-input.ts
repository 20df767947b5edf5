import type { ClientSocket } from '../model/proxy-socket.js';
import { CHUNKED_ERROR, ChunkedScanner } from './chunked.js';
import type { HttpHead } from './http-head.js';
import { BODY_CHUNKED, BODY_LENGTH, BODY_NONE, type HttpExchange } from './http-exchange.js';
import type { HttpServerSide } from './http-server-side.js';

// What comes from an HTTP client after a request head (http-session.ts reads the heads): the
// body, delimited as its head says (a length, or chunked: passed on byte for byte while a
// scanner finds its end) and sent on through the server side; and the bytes past the request
// (a head arriving in pieces, pipelined requests), held in `exchange.pending` until the
// current exchange ends.

/** Bytes of pipelined input we hold before we stop reading from the client. */
const MAX_PENDING = 65536;

/** frame(), forward(): no body bytes were scanned yet (CHUNKED_ERROR is -1). */
export const NOT_SCANNED = -2;

// What forward() did.
/** The body bytes went on; the read's chunk is not referenced any more. */
export const BODY_SENT = 0;
/** The body bytes went on and the read's chunk is still referenced (queued, or kept for a re-send). */
export const BODY_KEPT = 1;
/** The chunked body is malformed (`chunkError` says how): nothing more may go to the server. */
export const BODY_BROKEN = 2;

export class ClientInput {
  private readonly chunks = new ChunkedScanner();
  /** Storage for `pending` when it grows over several reads (append). */
  private acc: Buffer | null = null;
  private accUsed = 0;

  constructor(
    private readonly exchange: HttpExchange,
    private readonly client: ClientSocket,
    private readonly serverSide: HttpServerSide,
  ) {}

  get chunkError(): string {
    return this.chunks.error;
  }

  /**
   * The body framing of the request parsed into `head` (validated by the parser: never both,
   * never an unknown coding). The chunked bytes that came with the head are scanned now, so
   * that broken framing is refused before anything is forwarded or a server picked, as HAProxy
   * does (a later error can only cut the exchange). Returns how far they were scanned
   * (NOT_SCANNED: none came), or CHUNKED_ERROR.
   */
  frame(head: HttpHead, buf: Buffer): number {
    const x = this.exchange;
    if (head.chunked) {
      x.reqBody = BODY_CHUNKED;
      x.reqDone = false;
      this.chunks.reset();
      return head.headEnd < buf.length ? this.chunks.scan(buf, head.headEnd, buf.length) : NOT_SCANNED;
    }
    if (head.contentLength > 0) {
      x.reqBody = BODY_LENGTH;
      x.reqRemaining = head.contentLength;
      x.reqDone = false;
    } else {
      x.reqBody = BODY_NONE;
      x.reqDone = true;
    }
    return NOT_SCANNED;
  }

  /**
   * Body bytes from buf[offset..] to the server side (`scannedTo` >= 0: a chunked body already
   * scanned up to there); what follows the body is held. BODY_SENT, BODY_KEPT or BODY_BROKEN.
   */
  forward(buf: Buffer, offset: number, scannedTo: number): number {
    const x = this.exchange;
    let end = buf.length;
    if (x.reqBody === BODY_LENGTH) {
      const n = Math.min(x.reqRemaining, end - offset);
      x.reqRemaining -= n;
      end = offset + n;
      if (x.reqRemaining === 0) x.reqDone = true;
    } else {
      const e = scannedTo >= 0 ? scannedTo : this.chunks.scan(buf, offset, end);
      if (e === CHUNKED_ERROR) return BODY_BROKEN;
      end = e;
      if (this.chunks.done) x.reqDone = true;
    }
    let kept = BODY_SENT;
    if (end > offset && this.serverSide.send(offset === 0 && end === buf.length ? buf : buf.subarray(offset, end))) kept = BODY_KEPT;
    if (x.reqDone && end < buf.length) this.hold(buf.subarray(end));
    return kept;
  }

  /** Keep bytes past the current request until its exchange ends; stop reading past MAX_PENDING. */
  hold(chunk: Buffer): void {
    const x = this.exchange;
    const pending = x.pending === null ? chunk : this.append(chunk);
    x.pending = pending;
    if (pending.length > MAX_PENDING) this.client.pause();
  }

  /**
   * `pending` (not null) followed by `chunk`, in storage that grows by doubling: a head trickled
   * in one byte at a time costs linear copying, where concatenating per chunk would be
   * quadratic (32 KiB of head in 1-byte packets = 512 MiB copied). Only bytes past `accUsed`
   * are ever written, so views handed out earlier stay valid.
   */
  append(chunk: Buffer): Buffer {
    const pending = this.exchange.pending!;
    const total = pending.length + chunk.length;
    let acc = this.acc;
    if (
      acc !== null &&
      pending.buffer === acc.buffer &&
      pending.byteOffset + pending.length === acc.byteOffset + this.accUsed &&
      this.accUsed + chunk.length <= acc.length
    ) {
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
}

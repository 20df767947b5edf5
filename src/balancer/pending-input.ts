import type { Socket } from 'node:net';
import type { HttpExchange } from './http-exchange.js';

// Client bytes an HTTP session has read but not consumed yet (`exchange.pending`): a request
// head arriving in pieces, or pipelined requests waiting for the current exchange to end.

/** Bytes of pipelined input we hold before we stop reading from the client. */
const MAX_PENDING = 65536;

export class PendingInput {
  /** Storage for `pending` when it grows over several reads (append). */
  private acc: Buffer | null = null;
  private accUsed = 0;

  constructor(
    private readonly exchange: HttpExchange,
    private readonly client: Socket,
  ) {}

  /** Keep pipelined bytes until the current exchange ends; stop reading past MAX_PENDING. */
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
}

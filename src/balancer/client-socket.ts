// What the HTTP client side asks of a client connection: a net.Socket (TLS frontends, TCP mode,
// the fallback) or a RawSocket (plain HTTP frontends, raw-socket.ts), with net's meanings.

type Listener = (this: ClientSocket) => void;
type ClientSocketEvent = 'end' | 'close' | 'error' | 'drain' | 'timeout';

export interface ClientSocket {
  write(data: Buffer): boolean;
  // Two signatures, not one with an optional parameter: net.Socket's end(callback?) must match.
  end(): unknown;
  // eslint-disable-next-line @typescript-eslint/unified-signatures -- see above
  end(data: Buffer): unknown;
  destroy(): void;
  pause(): this;
  resume(): this;
  isPaused(): boolean;
  cork(): void;
  uncork(): void;
  setTimeout(ms: number, listener?: Listener): this;
  on(event: ClientSocketEvent, listener: Listener): this;
  off(event: ClientSocketEvent, listener: Listener): this;
  readonly writableLength: number;
  readonly writableNeedDrain: boolean;
  readonly writableCorked: number;
  readonly writableEnded: boolean;
  readonly writable: boolean;
  readonly destroyed: boolean;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly remoteFamily?: string | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  /** A TLSSocket's (read-buffer.ts writeKept). */
  readonly encrypted?: boolean;
}

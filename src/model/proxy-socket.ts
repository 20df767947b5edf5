// What the proxy core asks of a connection, with net's meanings: a net.Socket (TLS, SNI routing,
// server names to look up, the fallback) or a RawSocket on the TCP handle itself
// (src/balancer/raw-socket.ts). Client connections are ClientSockets; connections to servers
// (pooled in the model's Server) are ServerSockets.

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

type ErrorListener = (this: ServerSocket, error: Error) => void;
type ServerListener = (this: ServerSocket) => void;

/** A connection to a server: opens after connect ('connect', or 'secureConnect' over TLS). */
export interface ServerSocket extends ClientSocket {
  readonly connecting: boolean;
  on(event: 'error', listener: ErrorListener): this;
  on(event: ClientSocketEvent | 'connect' | 'secureConnect', listener: ServerListener): this;
  off(event: 'error', listener: ErrorListener): this;
  off(event: ClientSocketEvent | 'connect' | 'secureConnect', listener: ServerListener): this;
}

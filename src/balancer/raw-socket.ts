import { getSystemErrorName } from 'node:util';
import { nextReadBuffer, readerOf, type ReaderTarget } from './read-buffer.js';

// A connection on the TCP handle itself, without a net.Socket around it. net.Socket is a Duplex
// stream: two stream states, an event emitter, a WriteWrap and callbacks through
// process.nextTick per write, a shutdown request and an end-of-stream round per close. With a
// new connection per request that machinery was about 40 % of the CPU of an HTTP request through
// switchyard (docs/performance.md, "Fourth round"). Here reads land in a buffer the connection
// owns (read-buffer.ts's contract), writes go straight to the handle (one request object reused
// while writes complete at once, which is nearly always), and events are one callback slot each,
// called with the socket as `this`.
//
// Client connections of plain listeners (HTTP and TCP; not TLS, which needs a TLSSocket, nor SNI
// routing, which reads its ClientHello itself) come from accept.ts as RawSockets, and connections
// to servers given by IP address from rawConnect (upstream.ts; names go through net.connect's
// lookup, TLS through tls.connect).
//
// What it leans on is Node's handle protocol (process.binding('stream_wrap') and
// process.binding('tcp_wrap'): the TCP handle's onread, useUserBuffer, readStart/readStop,
// writeBuffer, writev, shutdown, close, getpeername, connect), not a documented API, so it is
// checked where it is used: rawSocketsSupported() and rawConnectSupported() look at the bindings
// once, isTcpHandle() at each accepted handle, and the callers fall back to net.Socket when
// anything is not as expected. SWITCHYARD_RAW_SOCKETS=0 forces that fallback; the tests run both
// (test/raw-socket.test.ts, test/read-buffers.test.ts), on Node 20 and, in the container test, the
// current LTS.
//
// The subset of net.Socket it offers (ClientSocket, ServerSocket: src/model/proxy-socket.ts) has
// net's meanings: write() is false while bytes wait for the kernel ('drain' when they are out);
// end() writes what is queued, half-closes and closes once the peer has closed too (a lingering
// close: what the peer still sends is read and dropped, not answered with a reset); destroy()
// closes at once; 'close' comes from the handle's close callback, never inside the call that
// closed it, preceded by 'error' when a connect, read or write failed.

const UV_EOF = -4095;

interface WriteReq {
  oncomplete: ((this: WriteReq, status: number) => void) | undefined;
  owner: RawSocket | null;
  buffer: Buffer | Buffer[] | null;
  bytes: number;
}
interface ShutdownReq {
  oncomplete: ((this: ShutdownReq, status: number) => void) | undefined;
  owner: RawSocket | null;
  handle: unknown;
}
interface ConnectReq {
  oncomplete: ((this: ConnectReq, status: number) => void) | undefined;
  owner: RawSocket | null;
  address: string;
  port: number;
}
interface TcpBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number };
}
interface StreamBinding {
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}
interface Address {
  address?: string;
  family?: string;
  port?: number;
}

/** The TCP handle (tcp_wrap's TCP) as onconnection hands it over. */
export interface TcpHandle {
  /** An accessor on the handle: it takes functions only. */
  onread: (this: TcpHandle) => Buffer | undefined;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: WriteReq, buf: Uint8Array): number;
  writev(req: WriteReq, chunks: Uint8Array[], allBuffers: boolean): number;
  shutdown(req: ShutdownReq): number;
  close(callback: (this: TcpHandle) => void): void;
  getpeername(out: Address): number;
  getsockname(out: Address): number;
  setNoDelay(enable: boolean): number;
  /** Outbound handles only (tcp_wrap's TCP created with constants.SOCKET). */
  connect?(req: ConnectReq, address: string, port: number): number;
  connect6?(req: ConnectReq, address: string, port: number): number;
}

const HANDLE_METHODS = [
  'readStart',
  'readStop',
  'useUserBuffer',
  'writeBuffer',
  'writev',
  'shutdown',
  'close',
  'getpeername',
  'getsockname',
  'setNoDelay',
] as const;

let binding: StreamBinding | null | undefined;
let tcpBindingLoaded: TcpBinding | null | undefined;

/** process.binding(name) when `usable` says it has what RawSocket calls; null when not, or refused. */
function loadBinding<T>(name: string, usable: (b: Partial<T>) => boolean): T | null {
  try {
    const b = (process as unknown as { binding(name: string): Partial<T> }).binding(name);
    return usable(b) ? (b as T) : null;
  } catch {
    // process.binding gone or refusing the module: net.Socket it is.
    return null;
  }
}

/** The stream binding when it has what RawSocket uses; null (once and for all) when not. */
function streamBinding(): StreamBinding | null {
  if (binding !== undefined) return binding;
  binding = loadBinding<StreamBinding>(
    'stream_wrap',
    (b) =>
      typeof b.WriteWrap === 'function' &&
      typeof b.ShutdownWrap === 'function' &&
      b.streamBaseState instanceof Int32Array &&
      typeof b.kReadBytesOrError === 'number' &&
      typeof b.kLastWriteWasAsync === 'number',
  );
  return binding;
}

/** The TCP binding when it can make outbound handles (a probe handle has the methods); null when not. */
function tcpBinding(): TcpBinding | null {
  if (tcpBindingLoaded !== undefined) return tcpBindingLoaded;
  tcpBindingLoaded = loadBinding<TcpBinding>('tcp_wrap', (b) => {
    if (typeof b.TCP !== 'function' || typeof b.TCPConnectWrap !== 'function' || typeof b.constants?.SOCKET !== 'number') return false;
    const probe = new b.TCP(b.constants.SOCKET);
    const usable = isTcpHandle(probe) && typeof probe.connect === 'function' && typeof probe.connect6 === 'function';
    probe.close(noop);
    return usable;
  });
  return tcpBindingLoaded;
}

function noop(): void {}

/**
 * SWITCHYARD_RAW_SOCKETS=0 as last read: by rawSocketsSupported(), which each listener calls as
 * it starts (reading process.env is a lookup through a C++ interceptor: not once per connection).
 */
let rawAllowed = process.env.SWITCHYARD_RAW_SOCKETS !== '0';

/** Whether this runtime offers what RawSocket needs (SWITCHYARD_RAW_SOCKETS=0: never). */
export function rawSocketsSupported(): boolean {
  rawAllowed = process.env.SWITCHYARD_RAW_SOCKETS !== '0';
  return rawAllowed && streamBinding() !== null;
}

/** Whether server connections can be RawSockets here (rawConnect). */
export function rawConnectSupported(): boolean {
  return rawSocketsSupported() && tcpBinding() !== null;
}

/**
 * A connection to `ip`:`port` (an IP address of `family` 4 or 6, as net.isIP says: names go through net.connect and its lookup) as a
 * RawSocket, `firstBuffer` its first read buffer; null when the runtime cannot make one. Writes
 * and end() before the connection opens are queued; 'connect' says it opened, 'error' (with the
 * errno as `code`, like net's) then 'close' that it did not.
 */
export function rawConnect(ip: string, port: number, family: number, firstBuffer: Buffer): RawSocket | null {
  const tcp = rawAllowed && streamBinding() !== null ? tcpBinding() : null;
  if (tcp === null) return null;
  const handle = new tcp.TCP(tcp.constants.SOCKET);
  const socket = new RawSocket(handle, firstBuffer, false, true);
  const req = new tcp.TCPConnectWrap();
  req.oncomplete = onRawConnect;
  req.owner = socket;
  req.address = ip;
  req.port = port;
  const err = family === 6 ? handle.connect6!(req, ip, port) : handle.connect!(req, ip, port);
  if (err !== 0) socket.failed(err, 'connect');
  return socket;
}

/** Whether `handle` is a TCP handle with the methods RawSocket calls. */
export function isTcpHandle(handle: unknown): handle is TcpHandle {
  if (handle === null || typeof handle !== 'object') return false;
  const h = handle as Record<string, unknown>;
  return HANDLE_METHODS.every((m) => typeof h[m] === 'function');
}

const kSocket = Symbol('switchyard.rawSocket');
type OwnedHandle = TcpHandle & { [kSocket]: RawSocket | null };

type Listener = (this: RawSocket) => void;
type ErrorListener = (this: RawSocket, error: Error) => void;
export type RawSocketEvent = 'end' | 'close' | 'drain' | 'timeout' | 'connect';

// One write request kept for the next write: it is only taken by libuv when a write cannot
// complete at once, and then replaced.
let spareReq: WriteReq | null = null;

export class RawSocket implements ReaderTarget {
  /** Bytes written and not yet taken by the kernel (corked ones included). */
  writableLength = 0;
  destroyed = false;
  /** Set when the stream ended for writing (end() called). */
  writableEnded = false;
  readonly encrypted = false;
  private handle: OwnedHandle | null;
  /** What the handle reads into: referenced here, since the handle only holds its address. */
  private readBuffer: Buffer;
  private paused: boolean;
  private eof = false;
  private writesInFlight = 0;
  private corked: Buffer[] | null = null;
  private shutdownSent = false;
  private peer: Address | null = null;
  private local: Address | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timeoutMs = 0;
  /** An outbound connection not open yet: writes wait in `corked`. */
  connecting: boolean;
  /** Why the connection failed (a libuv status and the call), reported as 'error' before 'close'. */
  private failure = 0;
  private failedIn = '';
  private onEnd: Listener | null = null;
  private onClose: Listener | null = null;
  private onError: ErrorListener | null = null;
  private onConnect: Listener | null = null;
  private onDrain: Listener | null = null;
  private onTimeout: Listener | null = null;

  /**
   * `handle` from onconnection (isTcpHandle checked), or a new outbound one (`connecting`,
   * rawConnect); reads start at once unless `paused`, or once connected.
   */
  constructor(handle: TcpHandle, firstBuffer: Buffer, paused = false, connecting = false) {
    const h = handle as OwnedHandle;
    h[kSocket] = this;
    h.onread = onRawRead;
    this.handle = h;
    this.readBuffer = firstBuffer;
    h.useUserBuffer(firstBuffer);
    this.paused = paused;
    this.connecting = connecting;
    // Writes before the connection opens wait, as corked ones do.
    if (connecting) this.corked = [];
    else if (!paused) h.readStart();
  }

  on(event: 'error', listener: ErrorListener): this;
  on(event: RawSocketEvent, listener: Listener): this;
  on(event: RawSocketEvent | 'error', listener: Listener | ErrorListener): this {
    switch (event) {
      case 'end':
        this.onEnd = listener as Listener;
        break;
      case 'close':
        this.onClose = listener as Listener;
        break;
      case 'error':
        this.onError = listener;
        break;
      case 'drain':
        this.onDrain = listener as Listener;
        break;
      case 'timeout':
        this.onTimeout = listener as Listener;
        break;
      case 'connect':
        this.onConnect = listener as Listener;
        break;
    }
    return this;
  }

  off(event: RawSocketEvent | 'error', listener: Listener | ErrorListener): this {
    if (event === 'end' && this.onEnd === listener) this.onEnd = null;
    else if (event === 'close' && this.onClose === listener) this.onClose = null;
    else if (event === 'error' && this.onError === listener) this.onError = null;
    else if (event === 'drain' && this.onDrain === listener) this.onDrain = null;
    else if (event === 'timeout' && this.onTimeout === listener) this.onTimeout = null;
    else if (event === 'connect' && this.onConnect === listener) this.onConnect = null;
    return this;
  }

  get writable(): boolean {
    return !this.destroyed && !this.writableEnded;
  }

  /** net.Socket's meaning: a write returned false and 'drain' has not come yet. */
  get writableNeedDrain(): boolean {
    return this.writesInFlight > 0;
  }

  get writableCorked(): number {
    return this.corked === null ? 0 : 1;
  }

  /** Writes `data`; false when it waits for the kernel (then 'drain' follows). */
  write(data: Buffer): boolean {
    if (this.handle === null || this.writableEnded) return false;
    if (this.corked !== null) {
      this.corked.push(data);
      this.writableLength += data.length;
      return true;
    }
    return this.send(data);
  }

  cork(): void {
    if (this.corked === null && this.handle !== null) this.corked = [];
  }

  /** Sends what was written while corked, in one writev. */
  uncork(): void {
    const chunks = this.corked;
    if (chunks === null || this.connecting) return;
    this.corked = null;
    let bytes = 0;
    for (let i = 0; i < chunks.length; i++) bytes += chunks[i]!.length;
    this.writableLength -= bytes;
    if (chunks.length === 1) this.send(chunks[0]!);
    else if (chunks.length > 1) this.sendv(chunks, bytes);
  }

  /** Write `data` (if any), then half-close once everything is out; closes when the client has too. */
  end(data?: Buffer): void {
    if (this.handle === null || this.writableEnded) return;
    if (data !== undefined) this.write(data);
    this.uncork();
    this.writableEnded = true;
    if (this.writesInFlight === 0 && !this.connecting) this.shutdown();
  }

  /** Close now: what the kernel holds still goes out; 'close' follows from the handle. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.writableEnded = true;
    this.corked = null;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const h = this.handle!;
    this.handle = null;
    h.close(onRawClosed);
  }

  pause(): this {
    if (this.paused) return this;
    this.paused = true;
    // After end() the connection is only read to see the client's close: keep reading.
    if (this.handle !== null && !this.eof && !this.shutdownSent && !this.connecting) this.handle.readStop();
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    if (this.handle !== null && !this.eof && !this.shutdownSent && !this.connecting) this.handle.readStart();
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  /** Inactivity timeout (net's meaning): `listener` runs once `ms` pass with no read or write. */
  setTimeout(ms: number, listener?: Listener): this {
    if (listener !== undefined) this.onTimeout = listener;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timeoutMs = ms;
    if (ms > 0 && !this.destroyed) {
      this.timer = setTimeout(onRawTimeout, ms, this);
      this.timer.unref();
    }
    return this;
  }

  get remoteAddress(): string | undefined {
    return this.peerAddress().address;
  }
  get remotePort(): number | undefined {
    return this.peerAddress().port;
  }
  get remoteFamily(): string | undefined {
    return this.peerAddress().family;
  }
  get localAddress(): string | undefined {
    return this.localAddressInfo().address;
  }
  get localPort(): number | undefined {
    return this.localAddressInfo().port;
  }

  // --- internals

  /** The client's address, read once (getpeername) when first asked for, as net does. */
  private peerAddress(): Address {
    if (this.peer === null) {
      // Shaped beforehand: the handle fills existing fields instead of adding three.
      const out: Address = { address: undefined, family: undefined, port: undefined };
      if (this.handle === null || this.handle.getpeername(out) !== 0) return out;
      this.peer = out;
    }
    return this.peer;
  }

  private localAddressInfo(): Address {
    if (this.local === null) {
      const out: Address = {};
      if (this.handle === null || this.handle.getsockname(out) !== 0) return out;
      this.local = out;
    }
    return this.local;
  }

  private send(data: Buffer): boolean {
    const req = spareReq ?? new binding!.WriteWrap();
    return this.written(req, this.handle!.writeBuffer(req, data), data, data.length);
  }

  private sendv(chunks: Buffer[], bytes: number): boolean {
    const req = spareReq ?? new binding!.WriteWrap();
    return this.written(req, this.handle!.writev(req, chunks, true), chunks, bytes);
  }

  /**
   * After a write call returned `err`: done at once (true; the request object is kept for the
   * next write), queued by libuv (false, 'drain' follows), or failed.
   */
  private written(req: WriteReq, err: number, data: Buffer | Buffer[], bytes: number): boolean {
    if (this.timer !== null) this.timer.refresh();
    if (err !== 0) {
      this.failed(err, 'write');
      return false;
    }
    if (binding!.streamBaseState[binding!.kLastWriteWasAsync] === 0) {
      spareReq = req;
      return true;
    }
    this.queued(req, data, bytes);
    return false;
  }

  /** libuv took the write request to finish later: it holds the bytes until writeDone. */
  private queued(req: WriteReq, data: Buffer | Buffer[], bytes: number): void {
    spareReq = null;
    req.oncomplete = onRawWriteDone;
    req.owner = this;
    req.buffer = data;
    req.bytes = bytes;
    this.writesInFlight++;
    this.writableLength += bytes;
  }

  /** @internal A queued write completed (status < 0: the connection failed). */
  writeDone(req: WriteReq, status: number): void {
    this.writesInFlight--;
    this.writableLength -= req.bytes;
    if (this.destroyed) return;
    if (status < 0) {
      this.failed(status, 'write');
      return;
    }
    if (this.writesInFlight > 0) return;
    if (this.writableEnded) this.shutdown();
    else this.onDrain?.call(this);
  }

  /** @internal Bytes (nread > 0), the client's close (UV_EOF) or a read error. */
  readDone(nread: number): Buffer | undefined {
    if (nread > 0) {
      if (this.timer !== null) this.timer.refresh();
      const buf = this.readBuffer;
      const kept = readerOf(this).onRead(buf.subarray(0, nread));
      const next = nextReadBuffer(nread, buf.length, kept);
      if (next === null || this.handle === null) return undefined;
      this.readBuffer = next;
      return next;
    }
    if (nread === 0 || this.destroyed) return undefined;
    if (nread !== UV_EOF) {
      this.failed(nread, 'read');
      return undefined;
    }
    this.eof = true;
    this.onEnd?.call(this);
    // Both directions done: nothing left to wait for.
    if (!this.destroyed && this.shutdownSent) this.destroy();
    return undefined;
  }

  /** @internal The half-close went out. */
  shutdownDone(status: number): void {
    if (!this.destroyed && (status < 0 || this.eof)) this.destroy();
  }

  /** @internal The connect completed (status 0) or failed. */
  connectDone(status: number): void {
    if (this.destroyed) return;
    if (status !== 0) {
      this.failed(status, 'connect');
      return;
    }
    this.connecting = false;
    const h = this.handle!;
    h.setNoDelay(true);
    if (!this.paused) h.readStart();
    const queued = this.corked;
    this.corked = null;
    if (queued !== null && queued.length > 0) this.flush(queued);
    if (this.destroyed) return;
    if (this.writableEnded && this.writesInFlight === 0) this.shutdown();
    this.onConnect?.call(this);
  }

  /** @internal The handle is closed: 'error' first if the connection failed, then 'close'. */
  closed(): void {
    if (this.failure !== 0 && this.onError !== null) {
      const name = getSystemErrorName(this.failure);
      const error = Object.assign(new Error(`${this.failedIn} ${name}`), { code: name, errno: this.failure, syscall: this.failedIn });
      this.onError.call(this, error);
    }
    this.onClose?.call(this);
  }

  /** @internal No read or write for timeoutMs. */
  timedOut(): void {
    this.timer = null;
    if (this.destroyed || this.timeoutMs === 0) return;
    this.onTimeout?.call(this);
  }

  private shutdown(): void {
    if (this.shutdownSent || this.handle === null) return;
    // The client closed already: close now (the kernel still sends what it holds, then a FIN).
    if (this.eof) {
      this.destroy();
      return;
    }
    this.shutdownSent = true;
    const req = new binding!.ShutdownWrap();
    req.oncomplete = onRawShutdown;
    req.owner = this;
    req.handle = this.handle;
    if (this.handle.shutdown(req) !== 0) {
      this.destroy();
      return;
    }
    // Read on (and drop) until the client closes, paused or not.
    if (this.paused) this.handle.readStart();
  }

  /** @internal A connect, write or read failed (refused, reset, broken pipe): close; 'error' comes before 'close'. */
  failed(status: number, call: string): void {
    if (this.destroyed) return;
    this.failure = status;
    this.failedIn = call;
    this.destroy();
  }

  /** What was written before the connection opened, in one go. */
  private flush(chunks: Buffer[]): void {
    let bytes = 0;
    for (let i = 0; i < chunks.length; i++) bytes += chunks[i]!.length;
    this.writableLength -= bytes;
    if (chunks.length === 1) this.send(chunks[0]!);
    else this.sendv(chunks, bytes);
  }
}

function onRawRead(this: TcpHandle): Buffer | undefined {
  const socket = (this as OwnedHandle)[kSocket];
  if (socket === null) return undefined;
  return socket.readDone(binding!.streamBaseState[binding!.kReadBytesOrError]!);
}

function onRawWriteDone(this: WriteReq, status: number): void {
  const socket = this.owner!;
  this.owner = null;
  this.buffer = null;
  socket.writeDone(this, status);
}

function onRawConnect(this: ConnectReq, status: number): void {
  const socket = this.owner!;
  this.owner = null;
  socket.connectDone(status);
}

function onRawShutdown(this: ShutdownReq, status: number): void {
  const socket = this.owner!;
  this.owner = null;
  this.handle = null;
  socket.shutdownDone(status);
}

function onRawClosed(this: TcpHandle): void {
  const h = this as OwnedHandle;
  const socket = h[kSocket];
  h[kSocket] = null;
  socket?.closed();
}

function onRawTimeout(socket: RawSocket): void {
  socket.timedOut();
}

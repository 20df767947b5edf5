import type { OnReadOpts, Socket } from 'node:net';
import type { ClientSocket } from '../model/proxy-socket.js';

// Socket reads into a buffer each socket owns, through Node's documented `onread` option
// (net.Socket / net.connect), instead of the stream 'data' path. On the stream path every read
// mallocs 64 KiB, shrinks it to the bytes read, wraps it in a new Buffer and runs it through
// Readable's push/emit/maybeReadMore machinery. With `onread` the kernel copies into memory the
// socket already has and our callback runs directly: the same proxy loop costs about half the
// user-space instructions per request (callgrind, bare TCP pipe: 39k -> 19k per request).
//
// The contract that makes this safe: a chunk handed to a reader is only valid during the call.
// A reader that keeps any reference to it afterwards (a partial head, bytes held while a server
// connection opens, a write the peer socket could not complete synchronously) says so by
// returning true, and the socket gets a fresh buffer for its next read; the old one belongs to
// whoever still holds it and is freed by the GC when they let go. In the common case (the chunk
// was written straight through) nothing is allocated per read.
//
// How the fresh buffer reaches Node: `onread.buffer` may be a function; net calls it once when
// the handle is set up and again right after every callback, synchronously, using what it
// returns when that is a Uint8Array and keeping the current buffer otherwise. So a callback
// leaves the next buffer in `nextBuffer` and `takeNextBuffer` hands it over: no closure per
// socket. (lib/internal/stream_base_commons.js onStreamRead; test/read-buffers.test.ts moves
// random bytes in short reads to a slow client and compares them, on both read paths.)

/** A socket's consumer: returns true when it keeps a reference to `chunk` after returning. */
export interface SocketReader {
  onRead(chunk: Buffer): boolean;
}

const kReader = Symbol('switchyard.reader');
/** What a reader can be set on: a net.Socket, or a RawSocket (raw-socket.ts). */
export type ReaderTarget = object;
type ReaderSocket = Socket & { [kReader]: SocketReader };

// First read buffers are cut from a shared slab (firstReadBuffer): one allocation per several
// connections instead of a malloc'd ArrayBuffer per connection, which the GC then sweeps and
// counts as external memory (V8 starts a full GC about every 64 MB of it: at 5,000 new
// connections/s with 8 + 16 KiB each, twice a second). Small first buffers are also what an
// idle connection keeps (docs/performance.md). Reads that fill a buffer grow the next one.
/** First read buffer of a client connection: a request head fits in most cases. */
export const CLIENT_READ_BYTES = 2048;
/** First read buffer of a server connection: a small response (head and body) fits. */
export const SERVER_READ_BYTES = 4096;
/**
 * Slab the first buffers are cut from. A slab lives while any buffer cut from it does, so this
 * bounds what one long-lived connection among short ones can pin (Node's own Buffer pool is
 * 8 KiB and would be used up every connection or two).
 */
const SLAB_BYTES = 32768;
/**
 * A read that fills its buffer suggests a bulk transfer: the next buffer is 4x larger up to
 * this size (Node's own read size), so large bodies move in few syscalls while idle keep-alive
 * connections keep a small buffer.
 */
export const MAX_READ_BYTES = 65536;

let nextBuffer: Buffer | null = null;
let slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
let slabUsed = 0;

/** `bytes` (<= SLAB_BYTES) cut from the current slab; a fresh slab when it is used up. */
export function firstReadBuffer(bytes: number): Buffer {
  if (slabUsed + bytes > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  const b = slab.subarray(slabUsed, slabUsed + bytes);
  slabUsed += bytes;
  return b;
}

function takeNextBuffer(): Buffer | null {
  const b = nextBuffer;
  nextBuffer = null;
  return b;
}

/**
 * The buffer the next read goes into, after `nread` bytes were read into one of `size`: a larger
 * one when the read filled it, a fresh one of the same size when the reader kept the chunk, else
 * null (read into the same buffer again).
 */
export function nextReadBuffer(nread: number, size: number, kept: boolean): Buffer | null {
  if (nread === size && size < MAX_READ_BYTES) return Buffer.allocUnsafe(Math.min(size * 4, MAX_READ_BYTES));
  return kept ? Buffer.allocUnsafe(size) : null;
}

function onSocketRead(this: ReaderSocket, nread: number, buf: Buffer): boolean {
  const kept = this[kReader].onRead(buf.subarray(0, nread));
  nextBuffer = nextReadBuffer(nread, buf.length, kept);
  // Pausing is explicit (socket.pause()), never through this return value.
  return true;
}

/**
 * Whether a chunk just written to `socket` is still referenced by it (its reader must then
 * return true); `queuedBefore` is socket.writableLength just before the write. A plain
 * socket holds the chunk while any of it is unsent (a write libuv could not finish at once).
 * A TLSSocket (`encrypted`) completes every write asynchronously (TLSWrap simulates it), so
 * writableLength stays above 0 after each one, yet its handle never keeps the caller's bytes:
 * DoWrite encrypts them at once with SSL_write, or copies them when OpenSSL cannot take them
 * yet (src/crypto/crypto_tls.cc). Only the stream's own queue keeps a chunk there: one written
 * behind another still in flight, corked, or before the TCP connection opened. Telling the
 * two apart saves a fresh server read buffer per response to a TLS client, whose external
 * memory made V8 collect about twice a second under load (docs/tls.md#speed).
 * test/tls-read.test.ts checks the TLSWrap part on the running Node.
 */
export function writeKept(socket: ClientSocket | Socket, queuedBefore: number): boolean {
  if (socket.writableLength === 0) return false;
  return (
    (socket as { encrypted?: boolean }).encrypted !== true ||
    queuedBefore > 0 ||
    socket.writableCorked > 0 ||
    (socket as { connecting?: boolean }).connecting === true
  );
}

/** The `onread` callback every socket shares (tls-read.ts sets it on TLS sockets itself). */
export const socketReadCallback: OnReadOpts['callback'] = onSocketRead;

/**
 * `onread` options for a socket about to be created (net.connect or new Socket({ handle })).
 * Call it immediately before creating the socket: the first buffer is taken during creation.
 */
export function readOptions(firstBytes: number): OnReadOpts {
  nextBuffer = firstReadBuffer(firstBytes);
  return { buffer: takeNextBuffer as () => Uint8Array, callback: socketReadCallback };
}

/**
 * Call right after creating the socket: false when the runtime did not take the first buffer
 * during creation, i.e. does not implement `onread` as read-buffer.ts relies on (that socket
 * must not be used).
 */
export function firstBufferTaken(): boolean {
  const taken = nextBuffer === null;
  nextBuffer = null;
  return taken;
}

/**
 * Attach a socket to its reader, which is also its owner: the sessions and Upstream find
 * themselves from the socket through readerOf() in their module-level event handlers. A socket
 * not created with readOptions() (net's own accept, where the runtime would not let us) gets
 * its reads as 'data' events, handed to the same onRead.
 */
export function setReader(socket: ReaderTarget, reader: SocketReader, viaOnread: boolean): void {
  (socket as ReaderSocket)[kReader] = reader;
  if (!viaOnread) (socket as Socket).on('data', onSocketData);
}

/** Detach the reader before another setReader() (stream path: drop its 'data' listener). */
export function clearReader(socket: Socket, viaOnread: boolean): void {
  if (!viaOnread) socket.removeListener('data', onSocketData);
}

/** The reader (owner) set on `socket` by setReader(); the caller names the kind it set. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- a typed lookup: each caller's handlers only ever see sockets it gave its own reader
export function readerOf<T extends SocketReader>(socket: ReaderTarget): T {
  return (socket as ReaderSocket)[kReader] as T;
}

/** The stream path: every chunk is a fresh Buffer, so what the reader keeps needs no care. */
function onSocketData(this: ReaderSocket, chunk: Buffer): void {
  this[kReader].onRead(chunk);
}

/**
 * Before handing a socket to another reader on the stream path: drop the 'data' listener the
 * first setReader() added, so the next one does not read every chunk twice (a PROXY protocol
 * header reader hands its socket to the session: proxy-accept.ts).
 */
export function detachReader(socket: ReaderTarget): void {
  (socket as Socket).off('data', onSocketData);
}

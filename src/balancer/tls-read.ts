import { Socket, type SocketConstructorOpts } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { CLIENT_READ_BYTES, readOptions, socketReadCallback } from './read-buffer.js';

// Decrypted bytes of a terminated TLS connection read into the socket's own buffer, as plain
// client sockets do through `onread` (read-buffer.ts), instead of Readable's 'data' path. Node
// takes `onread` for a TLSSocket only when it makes its own TCP connection (tls.connect), never
// for one wrapping an accepted socket, although the native TLSWrap honours a user buffer like
// any stream handle (it copies each decrypted record into whatever buffer its listener offers).
// So this module does, once the TLSSocket exists, what net.Socket's constructor does with
// `onread`: it sets the socket's three onread slots and hands the first buffer to the handle
// (lib/net.js initSocketHandle). From then on lib/internal/stream_base_commons.js onStreamRead
// calls our callback with our buffer, and pause()/resume() stop and start the handle.
//
// These slots are private symbols of Node's net, so they are found by identity: a throwaway
// net.Socket built with `onread` holds our probe values under them. The path is used only
// when the three slots are found, the handle has `useUserBuffer`, and the first decrypted read
// proves the handle filled our buffer (a handle that ignored it would pass the bytes in an
// ArrayBuffer of its own instead of none). Otherwise the socket reads through 'data' events
// as before, bytes intact: setReader()'s 'data' listener never fires while the onread path is
// on, and takes over when it is turned off. SWITCHYARD_STREAM_READS=1 keeps the stream path,
// as for plain listeners. test/tls-read.test.ts runs both paths and the fallback.

interface OnreadSlots {
  /** The current read buffer (a Uint8Array), or `true` before the generator has given one. */
  readonly buffer: symbol;
  /** Called after every read for the next buffer (read-buffer.ts takeNextBuffer). */
  readonly gen: symbol;
  /** Called with (nread, buffer) for every read (read-buffer.ts onSocketRead). */
  readonly cb: symbol;
}

type Slotted = Record<symbol, unknown>;

interface StreamHandle {
  useUserBuffer?: (buffer: Uint8Array) => void;
  onread: (this: StreamHandle, arrayBuffer: ArrayBuffer | undefined) => unknown;
  [kSocket]?: TLSSocket;
  [kStreamOnread]?: StreamHandle['onread'];
}

const kSocket = Symbol('switchyard.tlsReadSocket');
const kStreamOnread = Symbol('switchyard.streamOnread');

let slots: OnreadSlots | null | undefined;

/** net.Socket's onread slots, found once by building sockets with `onread` (no handle, no I/O). */
export function onreadSlots(): OnreadSlots | null {
  if (slots === undefined) slots = findSlots();
  return slots;
}

function findSlots(): OnreadSlots | null {
  const probeBuffer = new Uint8Array(1);
  const probeGen = (): Uint8Array => probeBuffer;
  const probeCb = (): boolean => true;
  // net.Socket's constructor reads `onread` as net.connect does (its types only declare it there).
  const withOnread = (buffer: unknown): Slotted => new Socket({ onread: { buffer, callback: probeCb } } as SocketConstructorOpts) as unknown as Slotted;
  const fixed = withOnread(probeBuffer);
  const generated = withOnread(probeGen);
  const holding = (socket: Slotted, value: unknown): symbol | null => {
    const found = Object.getOwnPropertySymbols(socket).filter((s) => socket[s] === value);
    return found.length === 1 ? found[0]! : null;
  };
  const buffer = holding(fixed, probeBuffer);
  const gen = holding(generated, probeGen);
  const cb = holding(fixed, probeCb);
  (fixed as unknown as Socket).destroy();
  (generated as unknown as Socket).destroy();
  if (buffer === null || gen === null || cb === null || buffer === gen || buffer === cb || gen === cb) return null;
  // A socket without onread must have the same slots, empty: otherwise they are not what we think.
  const plain = new Socket() as unknown as Slotted;
  const empty = plain[buffer] === null && plain[gen] === null && plain[cb] === null;
  (plain as unknown as Socket).destroy();
  return empty ? { buffer, gen, cb } : null;
}

/**
 * Switch a server-side TLSSocket, just created over an accepted connection, to reads through
 * `onread` buffers. Call before its first read (the TLSSocket starts reading on the next tick)
 * and give it a reader (read-buffer.ts setReader) before application data can arrive: once
 * the handshake completes. Returns false, changing nothing, when the runtime does not look as
 * expected or SWITCHYARD_STREAM_READS=1: the socket then reads through 'data' events.
 */
export function readTlsViaOnread(socket: TLSSocket, found: OnreadSlots | null = onreadSlots()): boolean {
  if (found === null || process.env.SWITCHYARD_STREAM_READS === '1') return false;
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  const s = socket as unknown as Slotted;
  if (handle == null || typeof handle.useUserBuffer !== 'function' || typeof handle.onread !== 'function') return false;
  if (s[found.buffer] !== null || s[found.gen] !== null || s[found.cb] !== null) return false;
  const options = readOptions(CLIENT_READ_BYTES);
  const takeFirst = options.buffer as () => Uint8Array;
  const first = takeFirst();
  s[found.buffer] = first;
  s[found.gen] = takeFirst;
  s[found.cb] = firstRead;
  handle[kSocket] = socket;
  handle[kStreamOnread] = handle.onread;
  handle.onread = verifyingOnread;
  handle.useUserBuffer(first);
  return true;
}

/** The onread callback for a socket's first read: marks it proven, then reads as always. */
function firstRead(this: TLSSocket, nread: number, buffer: Uint8Array): boolean {
  (this as unknown as Slotted)[slots!.cb] = socketReadCallback;
  return socketReadCallback.call(this, nread, buffer);
}

/**
 * The handle's read callback until the first decrypted bytes. With our buffer in use they come
 * with no ArrayBuffer (the bytes are in ours) and net's callback hands them to firstRead(); an
 * ArrayBuffer means the handle ignored our buffer: the onread slots are cleared, so this read
 * and all later ones go the stream way. An end of stream also comes without an ArrayBuffer and
 * decides nothing.
 */
function verifyingOnread(this: StreamHandle, arrayBuffer: ArrayBuffer | undefined): unknown {
  const streamOnread = this[kStreamOnread]!;
  const s = this[kSocket]! as unknown as Slotted;
  const found = slots!;
  if (arrayBuffer !== undefined) {
    s[found.buffer] = null;
    s[found.gen] = null;
    s[found.cb] = null;
    fellBack++;
    this.onread = streamOnread;
    this[kSocket] = undefined;
    return streamOnread.call(this, arrayBuffer);
  }
  const next = streamOnread.call(this, arrayBuffer);
  if (s[found.cb] === socketReadCallback) {
    this.onread = streamOnread;
    this[kSocket] = undefined;
  }
  return next;
}

/** Sockets whose handle ignored the user buffer and went back to stream reads (tests force it). */
export let fellBack = 0;

/** How `socket` reads now: through our `onread` buffers, or through stream 'data' events. */
export function tlsReadPath(socket: TLSSocket): 'onread' | 'stream' {
  const found = onreadSlots();
  return found !== null && (socket as unknown as Slotted)[found.buffer] != null ? 'onread' : 'stream';
}

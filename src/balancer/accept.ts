import { Socket, type Server as NetServer } from 'node:net';
import { CLIENT_READ_BYTES, firstBufferTaken, firstReadBuffer, readOptions } from './read-buffer.js';
import { isTcpHandle, rawSocketsSupported, RawSocket } from './raw-socket.js';
import type { ClientSocket } from '../model/proxy-socket.js';

// Accepting client connections ourselves so that their sockets read through `onread`
// (read-buffer.ts): net.Server has no option to pass `onread` to the sockets it creates. The
// listening handle calls `onconnection(status, clientHandle)` for every accepted connection (a
// real TCP handle, or cluster's round-robin handle in a worker); we replace that callback on our
// own listening socket, once, and build the net.Socket the way net.Server would, plus `onread`.
// Plain HTTP listeners go one step further where the runtime allows (raw-socket.ts): the handle
// becomes a RawSocket, with no net.Socket at all.
//
// This leans on net's handle protocol, stable since Node 0.x but not a documented API, so it is
// checked where it is used: when the handle does not look as expected the listener keeps net's
// own path ('connection' events and 'data' reads) and says so in the log. The proxy and cluster
// tests run on both Node 20 and, in the container test, the current LTS.

type OnConnection = (this: unknown, status: number, clientHandle: unknown) => void;
interface ListeningHandle {
  onconnection?: OnConnection;
  /** TCPWrap's: 0 on success, else a libuv error code. */
  setNoDelay?: (enable: boolean) => number;
}

/**
 * Linux copies TCP_NODELAY from a listening socket to every socket accepted from it (the
 * accepted socket starts as a clone of the listener), so setting it once on the listener saves a
 * setsockopt(2) per connection (about 1.5 % of the CPU with a new connection per request,
 * docs/performance.md). Other systems, and a listening handle without setNoDelay (node:cluster's
 * round-robin handle in a worker), keep one call per accepted socket, as net does.
 */
const LISTENER_NODELAY_INHERITED = process.platform === 'linux';

export interface AcceptOptions {
  readonly allowHalfOpen: boolean;
  /** TCP mode: no byte is read before a server connection exists to take it. */
  readonly pauseOnCreate: boolean;
  /** Make RawSockets where the runtime and the handle allow (plain HTTP listeners). */
  readonly raw: boolean;
}

/** What net.Socket accepts from net.Server, beyond the public constructor options. */
interface ServerSocketOptions {
  handle: unknown;
  allowHalfOpen: boolean;
  pauseOnCreate: boolean;
  readable: true;
  writable: true;
  onread: ReturnType<typeof readOptions> | null;
}

/** How a listener's connections are read: RawSockets, net.Sockets with `onread`, or net's own way. */
export type AcceptPath = 'raw' | 'onread' | 'net';

/**
 * After `server` listens: route its connections to `onSocket` as RawSockets (`options.raw` and
 * the runtime allows it) or as net.Sockets created with `onread`, and say which. Returns 'net'
 * (and changes nothing) when the listening handle is not the kind expected; calls
 * `onUnsupported` and gives the handle back to net if the runtime turns out not to honour
 * `onread` on the first connection (that connection is closed).
 */
export function acceptWithOnread(server: NetServer, options: AcceptOptions, onSocket: (socket: ClientSocket) => void, onUnsupported: () => void): AcceptPath {
  const handle = (server as unknown as { _handle?: ListeningHandle | null })._handle;
  if (handle == null || typeof handle.onconnection !== 'function') return 'net';
  const netOnConnection = handle.onconnection;
  const noDelayInherited = LISTENER_NODELAY_INHERITED && typeof handle.setNoDelay === 'function' && handle.setNoDelay(true) === 0;
  const raw = options.raw && !options.pauseOnCreate && rawSocketsSupported();
  // One options object for every socket: net.Socket copies what it is given.
  const socketOptions: ServerSocketOptions = {
    handle: null,
    allowHalfOpen: options.allowHalfOpen,
    pauseOnCreate: options.pauseOnCreate,
    readable: true,
    writable: true,
    onread: null,
  };
  handle.onconnection = function onconnection(this: unknown, status: number, clientHandle: unknown): void {
    // Accept errors (EMFILE...) and anything unexpected: net's own handling reports them.
    if (status !== 0 || clientHandle == null) {
      netOnConnection.call(this, status, clientHandle);
      return;
    }
    // A handle of another shape than expected (a runtime's change) takes net's way, per connection.
    if (raw && isTcpHandle(clientHandle)) {
      if (!noDelayInherited) clientHandle.setNoDelay(true);
      onSocket(new RawSocket(clientHandle, firstReadBuffer(CLIENT_READ_BYTES)));
      return;
    }
    socketOptions.handle = clientHandle;
    socketOptions.onread = readOptions(CLIENT_READ_BYTES);
    const socket = new Socket(socketOptions);
    // Not kept past this call: the options would hold the last connection's handle.
    socketOptions.handle = null;
    socketOptions.onread = null;
    if (!firstBufferTaken()) {
      handle.onconnection = netOnConnection;
      socket.destroy();
      onUnsupported();
      return;
    }
    if (!noDelayInherited) socket.setNoDelay(true);
    onSocket(socket);
  };
  return raw ? 'raw' : 'onread';
}

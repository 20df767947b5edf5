import type { ClientSocket } from '../model/proxy-socket.js';
import { addressInBlocks } from '../routing/cidr.js';
import type { Frontend } from '../model/frontend.js';
import { MAX_V2_BYTES, parseProxyHeader, PROXY_ERROR, PROXY_INCOMPLETE } from '../proxy-protocol/parse.js';
import { setCarried } from './client-address.js';
import { detachReader, readerOf, setReader, type SocketReader } from './read-buffer.js';

// `accept_proxy: true` (HAProxy `accept-proxy`): every connection to the frontend must start
// with a PROXY protocol v1 or v2 header, from a peer in `trusted_sources` when that is set.
// A ProxyGate owns a new connection until its header is complete, then records the carried
// client address on the socket (client-address.ts) and hands the socket, with any bytes that
// followed the header, to the listener, which opens the session as for a plain connection.
// A header that is malformed, missing (the peer closed, or sent something else), slow (not
// complete within the frontend's request timeout) or from an untrusted peer: the connection is
// closed, counted (`dcon`, frontend.proxyRefused) and logged, and nothing reaches a server.
//
// Plain frontends never get here: the listener decides once per connection by a config flag.

export interface ProxyGateOwner {
  readonly frontend: Frontend;
  readonly onreadClients: boolean;
  /** The header is in: open the session; returns its reader, or null when refused (limits). */
  admitProxied(socket: ClientSocket): SocketReader | null;
  /** Refused: count and log. */
  proxyRefused(socket: ClientSocket, why: string): void;
  gateClosed(gate: ProxyGate): void;
}

export class ProxyGate implements SocketReader {
  private pending: Buffer | null = null;
  private timer: NodeJS.Timeout | null = null;
  private done = false;

  constructor(
    readonly socket: ClientSocket,
    private readonly owner: ProxyGateOwner,
  ) {
    const config = owner.frontend.config;
    const list = config.trustedSources;
    if (list.length > 0 && !addressInBlocks(list, socket.remoteAddress ?? '')) {
      this.refuse('PROXY header from an untrusted source');
      return;
    }
    setReader(socket, this, owner.onreadClients);
    socket.on('end', onGateEnd);
    socket.on('close', onGateClose);
    socket.on('error', noop);
    // The header must be complete within the time a request head gets (HTTP) or the client
    // timeout (TCP), as HAProxy bounds its handshake by `timeout client`.
    const ms = config.mode === 'http' ? config.timeouts.httpRequestMs : config.timeouts.clientMs;
    this.timer = setTimeout(onGateTimeout, ms, this);
    this.timer.unref();
    // A TCP frontend accepts paused (nothing is read before a server takes it): read the header.
    if (socket.isPaused()) socket.resume();
  }

  /** Still waiting for the header (false once admitted or refused). */
  get waiting(): boolean {
    return !this.done;
  }

  onRead(chunk: Buffer): boolean {
    if (this.done) return false;
    const own = this.pending !== null;
    const buf = own ? Buffer.concat([this.pending!, chunk]) : chunk;
    const r = parseProxyHeader(buf);
    if (r.status === PROXY_INCOMPLETE) {
      // Bounded: the parser errors out before a header can exceed MAX_V2_BYTES.
      this.pending = own ? buf : Buffer.from(buf);
      if (this.pending.length > MAX_V2_BYTES) this.refuse('PROXY header too long');
      return false;
    }
    if (r.status === PROXY_ERROR) {
      this.refuse(`bad PROXY header: ${r.error}`);
      return false;
    }
    const socket = this.socket;
    this.finish();
    if (r.addresses !== null) setCarried(socket, r.addresses);
    socket.off('end', onGateEnd);
    socket.off('close', onGateClose);
    socket.off('error', noop);
    if (!this.owner.onreadClients) detachReader(socket);
    // A TCP session expects its client paused until the server connection opens.
    if (this.owner.frontend.config.mode === 'tcp') socket.pause();
    const session = this.owner.admitProxied(socket);
    if (session === null || r.length === buf.length) return false;
    const kept = session.onRead(buf.subarray(r.length));
    // Bytes of our own copy may be kept freely; the socket's buffer only if the session says so.
    return own ? false : kept;
  }

  onEnd(): void {
    if (!this.done) this.refuse('connection closed before a PROXY header');
  }

  onClose(): void {
    if (!this.done) this.finish();
  }

  onTimeout(): void {
    this.timer = null;
    if (!this.done) this.refuse('PROXY header not received in time');
  }

  /** Graceful stop or reload: a connection still without its header is closed. */
  stop(): void {
    if (this.done) return;
    this.finish();
    this.socket.destroy();
  }

  private refuse(why: string): void {
    this.finish();
    this.owner.proxyRefused(this.socket, why);
    this.socket.destroy();
  }

  private finish(): void {
    this.done = true;
    this.pending = null;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.owner.gateClosed(this);
  }
}

function gateOf(socket: ClientSocket): ProxyGate {
  return readerOf<ProxyGate>(socket);
}

function onGateEnd(this: ClientSocket): void {
  gateOf(this).onEnd();
}
function onGateClose(this: ClientSocket): void {
  gateOf(this).onClose();
}
function onGateTimeout(gate: ProxyGate): void {
  gate.onTimeout();
}
function noop(): void {}

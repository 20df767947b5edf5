import type { Socket } from 'node:net';
import type { Backend } from '../model/backend.js';
import type { Frontend } from '../model/frontend.js';
import { clearReader, setReader, readerOf, type SocketReader } from './read-buffer.js';
import { HELLO_INCOMPLETE, HELLO_OK, HELLO_OVERSIZED, MAX_HELLO_BYTES, parseClientHello } from './client-hello.js';
import { track, untrack, type Expirable } from './sweeper.js';

// TLS passthrough routed by name: a TCP frontend with `sni_routes` reads the ClientHello
// (client-hello.ts), picks the backend its server name maps to, and hands the connection to an
// ordinary TCP session that sends the hello bytes first and then relays both ways, never
// decrypting (HAProxy: `tcp-request inspect-delay` + `use_backend ... if { req.ssl_sni ... }`).
// Garbage, an oversized or malformed hello, or a client too slow to send it
// (timeouts.handshake) close the connection and count a failure; nothing reaches a server.

export interface SniRoutingOwner {
  /** The hello was read: serve the connection with `backend`, sending `hello` first. */
  routed(socket: Socket, backend: Backend, hello: Buffer): void;
  /** The connection closed before it could be routed (failure counted). */
  handshakeClosed(raw: Socket): void;
}

export function startSniRouting(socket: Socket, owner: SniRoutingOwner, frontend: Frontend, viaOnread: boolean): void {
  const peek = new HelloPeek(socket, owner, frontend, viaOnread);
  setReader(socket, peek, viaOnread);
  socket.on('end', onPeekEnd);
  socket.on('close', onPeekClose);
  socket.on('error', noop);
  // TCP listeners accept paused; the hello is the one thing read before a server is chosen.
  socket.resume();
}

class HelloPeek implements SocketReader, Expirable {
  deadline: number;
  /** The bytes so far, copied (an onread chunk is only valid during the call). */
  private data: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(
    readonly socket: Socket,
    private readonly owner: SniRoutingOwner,
    private readonly frontend: Frontend,
    private readonly viaOnread: boolean,
  ) {
    this.deadline = Date.now() + frontend.config.timeouts.handshakeMs;
    track(this);
  }

  onRead(chunk: Buffer): boolean {
    if (this.done) return false;
    // Bounded: the hello is at most MAX_HELLO_BYTES plus its record headers.
    if (this.data.length + chunk.length > MAX_HELLO_BYTES + 5 * 8) {
      this.fail('oversized');
      return false;
    }
    this.data = Buffer.concat([this.data, chunk]);
    const r = parseClientHello(this.data);
    if (r.status === HELLO_INCOMPLETE) return false;
    if (r.status === HELLO_OVERSIZED) {
      this.fail('oversized');
      return false;
    }
    if (r.status !== HELLO_OK) {
      this.fail('protocol');
      return false;
    }
    this.done = true;
    untrack(this);
    const socket = this.socket;
    socket.pause();
    clearReader(socket, this.viaOnread);
    socket.removeListener('end', onPeekEnd);
    socket.removeListener('close', onPeekClose);
    socket.removeListener('error', noop);
    const frontend = this.frontend;
    frontend.tls.handshakes++;
    const backend = frontend.sniRoutes?.lookup(r.serverName) ?? frontend.backend;
    this.owner.routed(socket, backend, this.data);
    return false;
  }

  fail(reason: 'oversized' | 'protocol' | 'timeout' | 'client_closed'): void {
    if (this.done) return;
    this.done = true;
    untrack(this);
    this.frontend.tls.failed(reason);
    this.socket.destroy();
  }

  expire(): void {
    this.deadline = 0;
    this.fail('timeout');
  }

  closed(): void {
    this.fail('client_closed');
    this.owner.handshakeClosed(this.socket);
  }
}

function onPeekEnd(this: Socket): void {
  readerOf<HelloPeek>(this).fail('client_closed');
}
function onPeekClose(this: Socket): void {
  readerOf<HelloPeek>(this).closed();
}
function noop(): void {}

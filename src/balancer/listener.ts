import { createServer, Socket, type Server as NetServer } from 'node:net';
import type { Frontend } from '../model/frontend.js';
import type { Mode } from '../config/types.js';
import type { Logger } from '../log.js';
import type { AccessLog } from './access-log.js';
import { HttpSession, type HttpListenerContext } from './http-session.js';
import { TcpSession, type TcpListenerContext } from './tcp-session.js';
import { acceptWithOnread, type AcceptPath } from './accept.js';
import type { TLSSocket } from 'node:tls';
import { TlsTerminator, type TlsHandshakeOwner } from './tls-terminate.js';
import { startSniRouting, type SniRoutingOwner } from './sni-route.js';
import type { Backend } from '../model/backend.js';
import { clientIpOf } from './client-address.js';
import { ProxyGate, type ProxyGateOwner } from './proxy-accept.js';
import type { SocketReader } from './read-buffer.js';
import type { ClientSocket } from '../model/proxy-socket.js';
import { SlotList } from '../model/slot-list.js';

// A frontend's listening socket. The listener outlives reloads while its bind address and mode
// stay the same: a reload assigns a new `frontend` and only connections accepted (HTTP: requests
// started) afterwards see it. Connection limits (maxconn, per source) are checked at accept.

type Session = HttpSession | TcpSession;

// Per-connection collections are SlotLists, not Sets (slot-list.ts says why).
const kSessionSlot = Symbol('switchyard.listenerSessionSlot');
const kHandshakeSlot = Symbol('switchyard.listenerHandshakeSlot');
const kGateSlot = Symbol('switchyard.listenerGateSlot');

/** The per-source map and address a connection counts under (kept on its socket, not in a Map). */
interface SourceCount {
  readonly map: Map<string, number>;
  readonly ip: string;
}
const kCounted = Symbol('switchyard.sourceCount');
type CountedSocket = ClientSocket & { [kCounted]?: SourceCount | undefined };

export class FrontendListener implements HttpListenerContext, TcpListenerContext, TlsHandshakeOwner, SniRoutingOwner, ProxyGateOwner {
  readonly mode: Mode;
  readonly bindKey: string;
  /** Terminates TLS (tls-terminate.ts): connections are served once their handshake completes. */
  readonly secure: boolean;
  /** TCP routed by SNI (sni-route.ts): a connection is served once its ClientHello was read. */
  readonly sniRouting: boolean;
  /** The current generation's certificates (rebuilt when a reload changes `tls`). */
  private terminator: TlsTerminator | null = null;
  /** Connections still in their TLS handshake or ClientHello (counted for maxconn, cut on stop). */
  private readonly handshaking = new SlotList<Socket>(kHandshakeSlot);
  stopping = false;
  accessLog: AccessLog | null;
  /** How client connections are made and read (accept.ts): 'net' is net's own accept and 'data' path. */
  acceptPath: AcceptPath = 'net';
  private readonly server: NetServer;
  private readonly sessions = new SlotList<Session>(kSessionSlot);
  // A connection counted in a per-source map keeps the map and address it counts under on its
  // socket (kCounted: the accepted one, or its TLS socket once the handshake is done): a reload
  // may turn the per-address limits off and on while it lives, so closing undoes exactly what
  // accepting did, not what the current config would have done.
  /** Per-address counting (maxconn_per_source, rate_limit.connections) was on at the last accept (turned on again: recountSources). */
  private countingSources = false;
  private idleWaiters: (() => void)[] = [];
  private lastLimitLog = 0;
  /** HTTP sessions (or their sockets still in a TLS handshake) taken over rate_limit.connections: not counted per address. */
  private readonly uncounted = new Set<Session | ClientSocket>();
  /** Connections still reading their PROXY header (accept_proxy). */
  private readonly gates = new SlotList<ProxyGate>(kGateSlot);
  private lastProxyLog = 0;

  constructor(
    public frontend: Frontend,
    accessLog: AccessLog | null,
    private readonly logger: Logger,
    /** Listen with SO_REUSEPORT (a worker whose primary chose it: src/cluster/listen-mode.ts). */
    private readonly reusePort = false,
  ) {
    this.mode = frontend.config.mode;
    this.bindKey = bindKey(frontend);
    this.accessLog = accessLog;
    this.secure = frontend.config.tls !== null;
    this.sniRouting = !this.secure && frontend.config.sniRoutes !== null;
    if (this.secure) this.terminator = new TlsTerminator(frontend.config.tls!, this.mode);
    // TCP: accept paused so no byte is read before a server connection exists to take it; on
    // the onread path (acceptOwnSockets) a plain TCP session reads at once and holds what comes
    // before the connection (TcpSession.holdEarly). TLS: the handshake reads at once.
    this.server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: this.mode === 'tcp' && !this.secure }, (socket) => this.accept(socket));
  }

  /**
   * Take over accepting (accept.ts) once the listening handle exists. SWITCHYARD_STREAM_READS=1
   * keeps net's own accept and stream reads: an escape hatch should a runtime's net change under
   * us (and how the tests cover that path).
   */
  private acceptOwnSockets(): void {
    if (process.env.SWITCHYARD_STREAM_READS === '1' || this.secure) return;
    // SNI routing peeks at the ClientHello itself (sni-route.ts) and wants its sockets paused.
    // RawSockets (raw-socket.ts) for plain listeners; SNI routing reads its sockets itself.
    const options = { allowHalfOpen: true, pauseOnCreate: this.mode === 'tcp' && this.sniRouting, raw: !this.sniRouting };
    this.acceptPath = acceptWithOnread(
      this.server,
      options,
      (socket) => this.accept(socket),
      () => {
        this.acceptPath = 'net';
        this.logger.warn(
          { frontend: this.frontend.name, node: process.version },
          'this Node.js does not honour onread on accepted sockets: using stream reads',
        );
      },
    );
    if (!this.sniRouting && this.acceptPath !== 'raw') {
      this.logger.info({ frontend: this.frontend.name, node: process.version, path: this.acceptPath }, 'raw client sockets unavailable here: using net.Socket');
    }
  }

  /** Client sockets read through `onread` (RawSocket or net.Socket); false: net's 'data' events. */
  get onreadClients(): boolean {
    return this.acceptPath !== 'net';
  }

  listen(): Promise<void> {
    const { host, port } = this.frontend.config.bind;
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host, port, backlog: 4096, reusePort: this.reusePort && port !== 0 }, () => {
        this.server.off('error', onError);
        this.acceptOwnSockets();
        this.server.on('error', (error) => this.logger.error({ frontend: this.frontend.name, err: error }, 'listener error'));
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address();
    if (a === null || typeof a === 'string') return { host: this.frontend.config.bind.host, port: this.frontend.config.bind.port };
    return { host: a.address, port: a.port };
  }

  get connections(): number {
    return this.sessions.size + this.handshaking.size;
  }

  private accept(socket: ClientSocket): void {
    if (this.frontend.config.acceptProxy) {
      // The PROXY header first (proxy-accept.ts); admitProxied() opens the session after it.
      const gate = new ProxyGate(socket, this);
      if (gate.waiting) this.gates.add(gate);
      return;
    }
    this.admit(socket);
  }

  private admit(socket: ClientSocket): Session | null {
    const frontend = this.frontend;
    const { maxconn, maxconnPerSource } = frontend.config;
    if (maxconn > 0 && this.sessions.size + this.handshaking.size >= maxconn) {
      this.deny(socket, `maxconn ${maxconn} reached`);
      return null;
    }
    let overRate = false;
    const perAddress = perAddressLimit(frontend);
    if (perAddress > 0) {
      if (!this.countingSources) this.recountSources(frontend.perSource);
      const ip = clientIpOf(socket);
      const n = frontend.perSource.get(ip) ?? 0;
      if (maxconnPerSource > 0 && n >= maxconnPerSource) {
        this.deny(socket, `maxconn_per_source ${maxconnPerSource} reached for ${ip}`);
        return null;
      }
      // rate_limit (docs/overload.md): TCP connections are refused here; an HTTP connection is
      // taken and its first request answered 429 with Retry-After (an HTTP client reads that).
      const limiter = frontend.rateLimiter();
      const connections = frontend.config.rateLimit?.connections ?? 0;
      if (connections > 0 && n >= connections) {
        frontend.counters.connLimited++;
        if (this.mode === 'tcp') {
          this.deny(socket, `rate_limit.connections ${connections} reached for ${ip}`);
          return null;
        }
        overRate = true;
      } else if (this.mode === 'tcp' && limiter !== null && limiter.take(ip, Date.now()) > 0) {
        frontend.counters.rateLimited++;
        this.deny(socket, `rate_limit.requests_per_second ${limiter.config.requestsPerSecond} reached for ${ip}`);
        return null;
      }
      if (!overRate) {
        frontend.perSource.set(ip, n + 1);
        (socket as CountedSocket)[kCounted] = { map: frontend.perSource, ip };
      }
    } else {
      this.countingSources = false;
    }
    const limiter = perAddress === 0 && this.mode === 'tcp' ? frontend.rateLimiter() : null;
    if (limiter !== null) {
      // Only with a limiter: a TCP session reads the client address when something needs it.
      const ip = clientIpOf(socket);
      if (limiter.take(ip, Date.now()) > 0) {
        frontend.counters.rateLimited++;
        this.deny(socket, `rate_limit.requests_per_second ${limiter.config.requestsPerSecond} reached for ${ip}`);
        return null;
      }
    }
    frontend.counters.sessionOpened(Date.now());
    // TLS and SNI routing take the socket themselves (accept_proxy is refused with them by the
    // config checks: the header would have to come off before the handshake reads).
    if (this.secure) {
      if (overRate) this.uncounted.add(socket);
      this.startTls(netSocket(socket), frontend);
      return null;
    }
    if (this.sniRouting) {
      const s = netSocket(socket);
      this.handshaking.add(s);
      startSniRouting(s, this, frontend, this.onreadClients);
      return null;
    }
    return this.openSession(socket, overRate);
  }

  private startTls(socket: Socket, frontend: Frontend): void {
    const tls = frontend.config.tls;
    if (tls === null) {
      // A reload took TLS away from this frontend: its replacement listener serves it; this
      // one is draining and takes nothing new.
      socket.destroy();
      return;
    }
    let terminator = this.terminator!;
    if (terminator.config !== tls) {
      // Certificates of a new config generation: new handshakes use them from now on.
      terminator = new TlsTerminator(tls, this.mode);
      this.terminator = terminator;
    }
    this.handshaking.add(socket);
    terminator.start(socket, this, frontend);
  }

  handshakeDone(socket: TLSSocket, raw: Socket): void {
    this.handshaking.delete(raw);
    const counted = (raw as CountedSocket)[kCounted];
    if (counted !== undefined) {
      // From now on the session's socket is the TLS one (released() is given that).
      (raw as CountedSocket)[kCounted] = undefined;
      (socket as CountedSocket)[kCounted] = counted;
    }
    // Over rate_limit.connections at accept: the session answers 429 (as a plain one would).
    const overRate = this.uncounted.size > 0 && this.uncounted.delete(raw);
    this.openSession(socket, overRate);
  }

  handshakeClosed(raw: Socket): void {
    if (this.handshaking.delete(raw)) this.released(raw, raw);
  }

  /** SNI routing read the ClientHello: a TCP session to `backend`, the hello first. */
  routed(socket: Socket, backend: Backend, hello: Buffer): void {
    this.handshaking.delete(socket);
    const session = new TcpSession(socket, this, backend, hello);
    this.sessions.add(session);
  }

  private openSession(socket: ClientSocket, overRate: boolean): Session {
    // TLS in TCP mode: as with plain TCP, nothing is read before a server takes it.
    if (this.mode === 'tcp' && this.secure) socket.pause();
    const session = this.mode === 'http' ? new HttpSession(socket, this) : new TcpSession(socket, this);
    this.sessions.add(session);
    if (overRate) {
      (session as HttpSession).connLimited = true;
      this.uncounted.add(session);
    }
    if (this.stopping) session.stop();
    return session;
  }

  admitProxied(socket: ClientSocket): SocketReader | null {
    if (this.stopping) {
      socket.destroy();
      return null;
    }
    return this.admit(socket);
  }

  proxyRefused(socket: ClientSocket, why: string): void {
    this.frontend.proxyRefused++;
    const now = Date.now();
    if (now - this.lastProxyLog > 1000) {
      this.lastProxyLog = now;
      this.logger.warn({ frontend: this.frontend.name, client: socket.remoteAddress }, `connection refused: ${why}`);
    }
  }

  gateClosed(gate: ProxyGate): void {
    this.gates.delete(gate);
  }

  /** Sessions open now (the runtime API's `show sess`). */
  openSessions(): Iterable<Session> {
    return this.sessions;
  }

  /**
   * A per-address limit was just turned on (first accept, or a reload after none was set):
   * count every connection open now, so that those accepted meanwhile count too.
   */
  private recountSources(map: Map<string, number>): void {
    map.clear();
    const count = (socket: ClientSocket): void => {
      const ip = clientIpOf(socket);
      map.set(ip, (map.get(ip) ?? 0) + 1);
      (socket as CountedSocket)[kCounted] = { map, ip };
    };
    for (const session of this.sessions) if (!this.uncounted.has(session)) count(session.socket);
    for (const raw of this.handshaking) if (!this.uncounted.has(raw)) count(raw);
    this.countingSources = true;
  }

  private deny(socket: ClientSocket, why: string): void {
    this.frontend.denied++;
    this.frontend.counters.dreq++;
    socket.destroy();
    const now = Date.now();
    if (now - this.lastLimitLog > 1000) {
      this.lastLimitLog = now;
      this.logger.warn({ frontend: this.frontend.name, client: socket.remoteAddress }, `connection refused: ${why}`);
    }
  }

  sessionClosed(session: Session): void {
    if (!this.sessions.delete(session)) return;
    this.released(session, session.socket);
  }

  /**
   * A connection accepted by accept() is gone: counters, per-source count, stop waiters. `key`:
   * its session, or its socket while it was still in its handshake.
   */
  private released(key: Session | ClientSocket, socket: ClientSocket): void {
    const frontend = this.frontend;
    frontend.counters.sessionClosed();
    // Over rate_limit.connections: never counted for its address.
    if (this.uncounted.size > 0) this.uncounted.delete(key);
    const counted = (socket as CountedSocket)[kCounted];
    if (counted !== undefined) {
      (socket as CountedSocket)[kCounted] = undefined;
      const n = (counted.map.get(counted.ip) ?? 1) - 1;
      if (n <= 0) counted.map.delete(counted.ip);
      else counted.map.set(counted.ip, n);
    }
    if (this.sessions.size === 0 && this.handshaking.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Stop accepting. Existing connections keep going until `drain`. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
    });
  }

  /**
   * Graceful stop: no new connections, idle keep-alive ones closed, busy ones finish their
   * exchange; past `timeoutMs` whatever remains is cut.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const closed = this.stopAccepting();
    for (const g of this.gates) g.stop();
    for (const s of this.sessions) s.stop();
    // Connections still in their handshake carry no request yet: closed now.
    for (const raw of this.handshaking) raw.destroy();
    if (this.sessions.size > 0 || this.handshaking.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          for (const s of this.sessions) s.socket.destroy();
          resolve();
        }, timeoutMs);
        timer.unref();
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await closed;
  }
}

/** TLS and SNI-routing listeners accept net.Sockets only: accept.ts makes RawSockets for plain listeners alone (acceptOwnSockets). */
function netSocket(socket: ClientSocket): Socket {
  if (socket instanceof Socket) return socket;
  throw new Error('a TLS or SNI-routing listener was handed a raw socket');
}

/** Connections are counted per client address when a limit needs it (maxconn_per_source, rate_limit.connections). */
function perAddressLimit(frontend: Frontend): number {
  return Math.max(frontend.config.maxconnPerSource, frontend.config.rateLimit?.connections ?? 0);
}

export function bindKey(frontend: Frontend): string {
  const { host, port } = frontend.config.bind;
  // Plain, TLS and SNI-routing listeners accept differently: a change between them opens a new one.
  const kind = frontend.config.tls !== null ? 'tls' : frontend.config.sniRoutes !== null ? 'sni' : 'plain';
  return `${frontend.config.mode}|${host}|${port}|${kind}`;
}

import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import type { FrontendTlsConfig, Mode } from '../config/types.js';
import type { Frontend } from '../model/frontend.js';
import type { TlsFailureReason } from '../model/tls-counters.js';
import { track, untrack, type Expirable } from './sweeper.js';
import { readerOf, setReader, type SocketReader } from './read-buffer.js';
import { readTlsViaOnread } from './tls-read.js';

// TLS termination on a frontend. The listener accepts plain TCP connections as usual and hands
// them here; each is wrapped in a server-side TLSSocket, and once the handshake completes the
// decrypted socket goes to an ordinary HTTP or TCP session, which reads it through `onread`
// buffers as it reads plain sockets (tls-read.ts; 'data' events where that is unavailable).
//
// A TlsTerminator belongs to one config generation: the secure contexts of its certificates and
// the SNI table built from them. A reload that changes `tls` makes the listener build a new
// one; handshakes that start afterwards use it, connections already open keep what they
// negotiated (HAProxy's `set ssl cert` + `commit ssl cert` has the same effect).
//
// Certificate choice by SNI (RFC 6066 §3), as HAProxy's `crt` list does it: an exact name,
// then a wildcard covering one label (`*.example.com` matches `a.example.com`, not
// `a.b.example.com`, RFC 6125 §6.4.3), then the first certificate as the default. With
// `strict_sni` there is no default: an unknown or missing SNI fails the handshake.

const HTTP_ALPN = ['http/1.1'];

export class TlsTerminator {
  private readonly exact = new Map<string, SecureContext>();
  private readonly wildcard = new Map<string, SecureContext>();
  /** The context a handshake starts with: the default certificate, or none with strict_sni. */
  readonly defaultContext: SecureContext;
  readonly alpn: string[] | undefined;
  /**
   * Asked for each handshake's server name, or undefined when the answer is always the default
   * certificate (one certificate, no strict_sni): then OpenSSL does not call into JavaScript
   * during the handshake at all.
   */
  private readonly sniCallback: typeof onServerName | undefined;

  constructor(
    readonly config: FrontendTlsConfig,
    mode: Mode,
  ) {
    const shared = { minVersion: config.minVersion, maxVersion: config.maxVersion, ciphers: config.ciphers ?? undefined };
    let first: SecureContext | null = null;
    for (const pair of config.certificates) {
      const ctx = createSecureContext({ ...shared, cert: pair.cert, key: pair.key });
      first ??= ctx;
      for (const name of pair.names) {
        // The first certificate to claim a name keeps it (the order of the list decides).
        if (name.startsWith('*.')) {
          if (!this.wildcard.has(name.slice(2))) this.wildcard.set(name.slice(2), ctx);
        } else if (!this.exact.has(name)) {
          this.exact.set(name, ctx);
        }
      }
    }
    // Without a certificate OpenSSL cannot complete a handshake: strict SNI with no (or an
    // unknown) server name ends in a handshake failure, which is what strict_sni asks for.
    this.defaultContext = config.strictSni ? createSecureContext(shared) : first!;
    this.alpn = mode === 'http' ? HTTP_ALPN : undefined;
    this.sniCallback = config.certificates.length > 1 || config.strictSni ? onServerName : undefined;
  }

  /** The context for a ClientHello's server name, or null when none serves it. */
  contextFor(servername: string): SecureContext | null {
    const name = servername.toLowerCase();
    const exact = this.exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.wildcard.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return this.config.strictSni ? null : this.defaultContext;
  }

  /** Start the handshake on an accepted connection; `owner` hears how it ends. */
  start(raw: Socket, owner: TlsHandshakeOwner, frontend: Frontend): void {
    const hs = new TlsHandshake(raw, owner, frontend, this);
    const socket = new TLSSocket(raw, { isServer: true, secureContext: this.defaultContext, SNICallback: this.sniCallback, ALPNProtocols: this.alpn });
    (socket as unknown as HandshakeSocket)[kHandshake] = hs;
    hs.socket = socket;
    // Decrypted bytes into the session's own buffers (tls-read.ts); the handshake holds the
    // place of the reader until a session takes the socket.
    if (readTlsViaOnread(socket)) setReader(socket, hs, true);
    socket.on('secure', onSecure);
    socket.on('error', onTlsError);
    // Listeners accept half-open connections (allowHalfOpen): a FIN mid-handshake ends it here.
    socket.on('end', onTlsEnd);
    raw.on('close', onRawClose);
    (raw as HandshakeSocket)[kHandshake] = hs;
  }
}

/** What the listener does with a connection once its handshake ends. */
export interface TlsHandshakeOwner {
  /** Handshake complete: serve the decrypted `socket`. */
  handshakeDone(socket: TLSSocket, raw: Socket): void;
  /** The connection closed before its handshake completed (failure already counted). */
  handshakeClosed(raw: Socket): void;
}

const kHandshake = Symbol('switchyard.tlsHandshake');
type HandshakeSocket = Socket & { [kHandshake]: TlsHandshake };

/** One connection's handshake: its deadline (timeouts.handshake) and how it ended. */
class TlsHandshake implements Expirable, SocketReader {
  deadline: number;
  socket: TLSSocket | null = null;
  done = false;
  /** A failure was counted (the first cause wins: a timeout then the close it causes count once). */
  failed = false;
  /** Set when the SNI callback refused the name (strict_sni). */
  noCertificate = false;
  /** Decrypted bytes read before the session took the socket (onRead). */
  early: Buffer | null = null;

  constructor(
    readonly raw: Socket,
    readonly owner: TlsHandshakeOwner,
    readonly frontend: Frontend,
    readonly terminator: TlsTerminator,
  ) {
    this.deadline = Date.now() + frontend.config.timeouts.handshakeMs;
    track(this);
  }

  fail(reason: TlsFailureReason): void {
    if (this.failed || this.done) return;
    this.failed = true;
    this.frontend.tls.failed(reason);
    untrack(this);
    this.socket?.destroy();
    this.raw.destroy();
  }

  expire(): void {
    this.deadline = 0;
    this.fail('timeout');
  }

  /**
   * Decrypted bytes before a session took the socket. OpenSSL hands out application data only
   * after the handshake completes, and 'secure' (which opens the session) is emitted before
   * that, so nothing should come here; should a runtime order it differently, the bytes are
   * kept (copied: the read buffer is reused) and given to the session when it opens.
   */
  onRead(chunk: Buffer): boolean {
    this.early = this.early === null ? Buffer.from(chunk) : Buffer.concat([this.early, chunk]);
    return false;
  }
}

function onServerName(this: TLSSocket, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void {
  const hs = (this as unknown as HandshakeSocket)[kHandshake];
  const ctx = hs.terminator.contextFor(servername);
  if (ctx === null) {
    hs.noCertificate = true;
    cb(new Error('no certificate for this server name'));
    return;
  }
  cb(null, ctx);
}

function onSecure(this: TLSSocket): void {
  const hs = (this as unknown as HandshakeSocket)[kHandshake];
  if (hs.failed) return;
  hs.done = true;
  hs.deadline = 0;
  untrack(hs);
  const c = hs.frontend.tls;
  c.handshakes++;
  if (this.getProtocol() === 'TLSv1.3') c.tls13++;
  else c.tls12++;
  if (this.isSessionReused()) c.resumed++;
  hs.owner.handshakeDone(this, hs.raw);
  const early = hs.early;
  if (early !== null) {
    hs.early = null;
    readerOf(this).onRead(early);
  }
}

function onTlsError(this: TLSSocket, error: Error): void {
  const hs = (this as unknown as HandshakeSocket)[kHandshake];
  if (hs.done) return; // the session that took the socket handles its errors
  hs.fail(hs.noCertificate ? 'no_certificate' : failureReason(error));
}

function onTlsEnd(this: TLSSocket): void {
  const hs = (this as unknown as HandshakeSocket)[kHandshake];
  if (!hs.done) hs.fail('client_closed');
}

function onRawClose(this: Socket): void {
  const hs = (this as HandshakeSocket)[kHandshake];
  if (hs.done) return;
  hs.fail('client_closed');
  hs.owner.handshakeClosed(this);
}

/** OpenSSL's error codes (as Node names them) grouped into the reasons the stats show. */
export function failureReason(error: Error): TlsFailureReason {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_SSL_UNEXPECTED_EOF_WHILE_READING') return 'client_closed';
  if (/UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION|VERSION_TOO_LOW|VERSION_TOO_HIGH|NO_PROTOCOLS_AVAILABLE/.test(code)) return 'version';
  if (/NO_SHARED_CIPHER|NO_SUITABLE_SIGNATURE|NO_SHARED_GROUP|NO_CIPHERS|INSUFFICIENT_SECURITY|HANDSHAKE_FAILURE/.test(code)) return 'cipher';
  if (/ALERT_(?:UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED|DECRYPT_ERROR)/.test(code)) return 'client_rejected';
  if (code.startsWith('ERR_SSL_')) return 'protocol';
  return 'other';
}

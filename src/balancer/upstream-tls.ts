import { isIP, type OnReadOpts } from 'node:net';
import { connect as tlsConnect, createSecureContext, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import type { BackendConfig, BackendTlsConfig } from '../config/types.js';
import type { Server } from '../model/server.js';

// TLS to the servers (backend `tls:`): one secure context per backend config generation (CA
// bundle, client certificate for mutual TLS, versions, ciphers), SNI and verification against
// `servername` (default: the server's host when it is a name; an IP is checked against the
// certificate's IP entries and never sent as SNI, RFC 6066 §3), ALPN http/1.1 for HTTP
// backends. The last session a server gave us is offered on the next connection to it, so
// new pooled connections resume (an abbreviated handshake) instead of a full one.

const contexts = new WeakMap<BackendTlsConfig, SecureContext>();
/** The latest session ticket per server, with the settings it was made under. */
const sessions = new WeakMap<Server, { readonly tls: BackendTlsConfig; readonly session: Buffer }>();
const kServer = Symbol('switchyard.tlsServer');
type TaggedSocket = TLSSocket & { [kServer]: { server: Server; tls: BackendTlsConfig } };

/** The secure context of a backend's tls settings (built once per config generation). */
export function clientContext(tls: BackendTlsConfig): SecureContext {
  let ctx = contexts.get(tls);
  if (ctx === undefined) {
    const pair = tls.clientCert;
    ctx = createSecureContext({
      ca: tls.ca ?? undefined,
      cert: pair?.cert,
      key: pair?.key,
      minVersion: tls.minVersion,
      ciphers: tls.ciphers ?? undefined,
    });
    contexts.set(tls, ctx);
  }
  return ctx;
}

/** SNI for a server: `servername`, else its host unless that is an IP address. */
export function serverName(tls: BackendTlsConfig, host: string): string | undefined {
  return tls.servername ?? (isIP(host) === 0 ? host : undefined);
}

/** Connect to `server` over TLS; 'secureConnect' marks it usable (upstream.ts). */
export function connectTls(server: Server, backend: BackendConfig, allowHalfOpen: boolean, onread: OnReadOpts): TLSSocket {
  const tls = backend.tls!;
  const saved = sessions.get(server);
  const options = {
    host: server.host,
    port: server.port,
    servername: serverName(tls, server.host),
    secureContext: clientContext(tls),
    rejectUnauthorized: tls.verify,
    session: saved !== undefined && saved.tls === tls ? saved.session : undefined,
    ALPNProtocols: backend.mode === 'http' ? ['http/1.1'] : undefined,
    allowHalfOpen,
    noDelay: true,
    onread,
  };
  // allowHalfOpen is passed on to the TLSSocket by tls.connect (lib/_tls_wrap.js), though
  // @types/node does not list it.
  const socket = tlsConnect(options as ConnectionOptions) as TaggedSocket;
  socket[kServer] = { server, tls };
  socket.on('session', onSession);
  return socket;
}

function onSession(this: TaggedSocket, session: Buffer): void {
  const { server, tls } = this[kServer];
  sessions.set(server, { tls, session });
}

/** Same TLS settings (a reload builds new config objects; pooled connections stay usable). */
export function sameTls(a: BackendTlsConfig | null, b: BackendTlsConfig | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return (
    a.ca === b.ca &&
    a.servername === b.servername &&
    a.verify === b.verify &&
    a.minVersion === b.minVersion &&
    a.ciphers === b.ciphers &&
    a.clientCert?.cert === b.clientCert?.cert &&
    a.clientCert?.key === b.clientCert?.key
  );
}

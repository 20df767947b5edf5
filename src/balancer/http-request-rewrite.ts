import type { ClientSocket } from '../model/proxy-socket.js';
import type { FrontendConfig } from '../config/types.js';
import type { HttpHead } from './http-head.js';
import type { RequestView } from '../routing/request-view.js';
import { routedRequestHead } from '../routing/head-edit.js';
import { forwardingLines, normalizeIp, rewriteHead } from './head-rewrite.js';
import { carriedOf } from './client-address.js';
import { isTrustedPeer } from './trusted-proxies.js';
import { CONNECTION_UPGRADE } from './http-response.js';

// A request head as the server gets it, for one client connection: hop-by-hop fields dropped,
// forwarding fields (X-Forwarded-For / -Proto, Forwarded) added, the route's edits applied.
// What is the same for every request of the connection (the client's forwarding lines, whether
// its peer is a trusted proxy under a config generation) is computed once.

export class RequestRewriter {
  /** The client's address (the PROXY header's when accept_proxy carried one). */
  readonly clientIp: string;
  /** The connection's immediate peer (trusted_proxies is checked against it, not clientIp). */
  private readonly peerAddress: string;
  /** How the client reached us: X-Forwarded-Proto / Forwarded proto. */
  private readonly proto: 'http' | 'https';
  /** X-Forwarded-For / -Proto / Forwarded lines for a client that sent no X-Forwarded-For. */
  private readonly forwardedLines: string;
  /** Whether peerAddress is a trusted proxy, for `trustFor` (a frontend config generation). */
  private trustFor: FrontendConfig | null = null;
  private trusted = false;

  constructor(socket: ClientSocket, secure: boolean) {
    // The client as the PROXY header (accept_proxy) carried it, else the socket's peer: the
    // address trusted_proxies judges too, as HAProxy's `src` is the carried one.
    this.peerAddress = carriedOf(socket)?.srcIp ?? socket.remoteAddress ?? '';
    const ip = normalizeIp(this.peerAddress);
    this.clientIp = ip;
    this.proto = secure ? 'https' : 'http';
    this.forwardedLines = forwardingLines(ip, null, this.proto);
  }

  /** The head parsed into `head` from buf[offset..], rewritten for the server (a new Buffer). */
  rewrite(head: HttpHead, buf: Buffer, offset: number, config: FrontendConfig, upgrade: boolean, routed: RequestView | null): Buffer {
    // From anyone but a trusted proxy, client-sent forwarding fields are replaced (trusted-proxies.ts).
    let extra =
      (head.xff === null && head.forwarded === null) || !this.peerTrusted(config)
        ? this.forwardedLines
        : forwardingLines(this.clientIp, head.xff, this.proto, head.forwarded);
    if (upgrade) extra += CONNECTION_UPGRADE;
    // Header rules, path rewrite, request id (src/routing/head-edit.ts).
    if (routed !== null && (routed.plan !== null || routed.edits !== null)) return routedRequestHead(head, buf, offset, extra, routed);
    return rewriteHead(head, buf, offset, extra, buf.length);
  }

  /** Whether this connection's peer is in `config`'s trusted_proxies. */
  private peerTrusted(config: FrontendConfig): boolean {
    if (config !== this.trustFor) {
      this.trustFor = config;
      this.trusted = isTrustedPeer(config, this.peerAddress);
    }
    return this.trusted;
  }
}

import type { ClientSocket } from '../model/proxy-socket.js';
import type { Endpoints } from '../proxy-protocol/header.js';
import { normalizeIp } from './head-rewrite.js';

// The client's address as the rest of the proxy sees it: the one a PROXY protocol header
// carried (accept_proxy), else the peer of the socket. Kept on the socket itself so that every
// part that reads it (sessions for X-Forwarded-For, ip-hash and sticky source; the listener for
// per-source limits; the access log; send_proxy) asks one place, and a plain connection pays
// one missing-property lookup for it.

const kCarried = Symbol('switchyard.proxyEndpoints');
type Carrying = ClientSocket & { [kCarried]?: Endpoints };

/** Record what the PROXY header of this connection said. */
export function setCarried(socket: ClientSocket, endpoints: Endpoints): void {
  (socket as Carrying)[kCarried] = endpoints;
}

/** The endpoints a PROXY header carried for this connection, if any. */
export function carriedOf(socket: ClientSocket): Endpoints | undefined {
  return (socket as Carrying)[kCarried];
}

/** The client's IP: carried by a PROXY header or the socket's peer, IPv4-mapped form unwrapped. */
export function clientIpOf(socket: ClientSocket): string {
  const carried = (socket as Carrying)[kCarried];
  return normalizeIp(carried !== undefined ? carried.srcIp : (socket.remoteAddress ?? ''));
}

/** Both ends of the client's connection (for `send_proxy`); null when the socket has none. */
export function clientEndpoints(socket: ClientSocket): Endpoints | null {
  const carried = (socket as Carrying)[kCarried];
  if (carried !== undefined) return carried;
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) return null;
  return { srcIp: remoteAddress, srcPort: remotePort, dstIp: localAddress, dstPort: localPort };
}

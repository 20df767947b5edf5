import type { FrontendConfig } from '../config/types.js';
import { addressInBlocks } from '../routing/cidr.js';

// Which peers may vouch for a client (`trusted_proxies`): only from those are an incoming
// X-Forwarded-For and Forwarded kept and appended to; from anyone else they are replaced by
// what switchyard saw itself, so that a client cannot claim another address to the servers
// (Traefik's `forwardedHeaders.trustedIPs`, Envoy's `xff_num_trusted_hops`). Empty by
// default: trust nobody. `[0.0.0.0/0, ::/0]` gives HAProxy's `option forwardfor` behaviour
// (always append).
//
// The peer checked is the connection's immediate peer (the socket's remote address), even
// when the PROXY protocol names another client address: that header only says who the client
// is, while the X-Forwarded-For in the request came through the peer that connected to us.
//
// The list is compiled once per config generation (routing/cidr.ts, shared with routes and
// the PROXY protocol's trusted_sources); a session asks once per connection and again only
// when a reload swapped its frontend's config.

/** Whether `peer` (a socket's remote address, IPv4-mapped or not) is one of `config.trustedProxies`. */
export function isTrustedPeer(config: FrontendConfig, peer: string): boolean {
  return peer !== '' && addressInBlocks(config.trustedProxies, peer);
}

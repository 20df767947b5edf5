import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { FrontendConfig } from '../config/types.js';

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
// One BlockList per config generation (the frozen FrontendConfig is the key); a session asks
// once per connection and again only when a reload swapped its frontend's config.

const lists = new WeakMap<FrontendConfig, BlockList | null>();

function listOf(config: FrontendConfig): BlockList | null {
  let list = lists.get(config);
  if (list === undefined) {
    list = null;
    if (config.trustedProxies.length > 0) {
      list = new BlockList();
      for (const cidr of config.trustedProxies) {
        const slash = cidr.lastIndexOf('/');
        const address = cidr.slice(0, slash);
        list.addSubnet(address, Number(cidr.slice(slash + 1)), isIPv6(address) ? 'ipv6' : 'ipv4');
      }
    }
    lists.set(config, list);
  }
  return list;
}

/** Whether `peer` (a socket's remote address, IPv4-mapped or not) is one of `config.trustedProxies`. */
export function isTrustedPeer(config: FrontendConfig, peer: string): boolean {
  const list = listOf(config);
  if (list === null || peer === '') return false;
  if (peer.startsWith('::ffff:') && isIPv4(peer.slice(7))) peer = peer.slice(7);
  return list.check(peer, isIPv6(peer) ? 'ipv6' : 'ipv4');
}

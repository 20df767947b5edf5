import { isIPv4 } from 'node:net';
import { ipBytes } from '../config/cidr.js';
import { V2_SIGNATURE } from './parse.js';

// PROXY protocol headers we send to servers (`send_proxy: v1|v2`, HAProxy `send-proxy` and
// `send-proxy-v2`), built once per server connection from the client's endpoints. Health checks
// speak for the balancer itself: v1 `PROXY UNKNOWN`, v2 `LOCAL`, as HAProxy's checks do.

const V1_UNKNOWN = Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
const V2_LOCAL = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);

/** The endpoints of the client's connection as it reached the first proxy in the chain. */
export interface Endpoints {
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; both ends must be one family, so a lone IPv4 end is mapped. */
function families(e: Endpoints): { v4: boolean; src: string; dst: string } {
  const strip = (ip: string) => (ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip);
  const src = strip(e.srcIp);
  const dst = strip(e.dstIp);
  const s4 = isIPv4(src);
  const d4 = isIPv4(dst);
  if (s4 && d4) return { v4: true, src, dst };
  return { v4: false, src: s4 ? `::ffff:${src}` : src, dst: d4 ? `::ffff:${dst}` : dst };
}

/** The header for a connection carrying a client's traffic; null endpoints: unknown / LOCAL. */
export function proxyHeader(version: 1 | 2, e: Endpoints | null): Buffer {
  if (e === null || ipBytes(e.srcIp) === null || ipBytes(e.dstIp) === null) return version === 1 ? V1_UNKNOWN : V2_LOCAL;
  const f = families(e);
  if (version === 1) return Buffer.from(`PROXY ${f.v4 ? 'TCP4' : 'TCP6'} ${f.src} ${f.dst} ${e.srcPort} ${e.dstPort}\r\n`, 'latin1');
  const addrLen = f.v4 ? 12 : 36;
  const out = Buffer.allocUnsafe(16 + addrLen);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, command PROXY
  out[13] = f.v4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  out.writeUInt16BE(addrLen, 14);
  const src = ipBytes(f.src)!;
  const dst = ipBytes(f.dst)!;
  if (f.v4) {
    out.set(src, 16);
    out.set(dst, 20);
    out.writeUInt16BE(e.srcPort, 24);
    out.writeUInt16BE(e.dstPort, 26);
  } else {
    out.set(v6(src), 16);
    out.set(v6(dst), 32);
    out.writeUInt16BE(e.srcPort, 48);
    out.writeUInt16BE(e.dstPort, 50);
  }
  return out;
}

/** ipBytes gives 4 bytes for mapped addresses: widen back to 16. */
function v6(b: Uint8Array): Uint8Array {
  if (b.length === 16) return b;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(b, 12);
  return out;
}

/** The header a health check sends: it speaks for the balancer, not for a client. */
export function checkProxyHeader(version: 1 | 2): Buffer {
  return version === 1 ? V1_UNKNOWN : V2_LOCAL;
}

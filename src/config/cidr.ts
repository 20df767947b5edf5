import { isIPv4, isIPv6 } from 'node:net';

// Address ranges in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or a bare address meaning /32 or
// /128), checked when the config loads (`trusted_sources`, `trusted_proxies`, route sources)
// and written as bytes into PROXY v2 headers (ipBytes). The one address parser: matching at run
// time (routing/cidr.ts's CidrList, compiled once per config generation, and a client's
// address, once per connection) is built on it.

export interface CidrRange {
  /** 4 or 16 bytes, already masked. */
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Parse `addr/prefix` or a bare address; returns an error message on anything else. */
export function parseCidr(text: unknown): CidrRange | string {
  if (typeof text !== 'string') return 'expected an address range like 10.0.0.0/8';
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = ipBytes(addr);
  if (bytes === null) return `expected an address range like 10.0.0.0/8, got "${text}"`;
  const max = bytes.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return `prefix length must be 0 to ${max} in "${text}"`;
    prefix = Number(p);
  }
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return { bytes, prefix };
}

/** An IPv4 or IPv6 address as bytes; IPv4-mapped IPv6 (`::ffff:1.2.3.4`) becomes 4 bytes. */
export function ipBytes(addr: string): Uint8Array | null {
  if (isIPv4(addr)) return Uint8Array.from(addr.split('.').map(Number));
  if (!isIPv6(addr)) return null;
  const zone = addr.indexOf('%');
  const text = zone < 0 ? addr : addr.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped !== null) return ipBytes(mapped[1]!);
  let head = text;
  let tail = '';
  const gap = text.indexOf('::');
  if (gap >= 0) {
    head = text.slice(0, gap);
    tail = text.slice(gap + 2);
  }
  const words = (s: string): number[] => {
    if (s === '') return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const v4 = ipBytes(part);
        if (v4 === null || v4.length !== 4) return [NaN];
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else out.push(parseInt(part, 16));
    }
    return out;
  };
  const h = words(head);
  const t = words(tail);
  const fill = 8 - h.length - t.length;
  if (fill < 0 || (gap < 0 && fill !== 0)) return null;
  const all = [...h, ...new Array<number>(fill).fill(0), ...t];
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const w = all[i]!;
    if (!(w >= 0 && w <= 0xffff)) return null;
    bytes[i * 2] = w >> 8;
    bytes[i * 2 + 1] = w & 0xff;
  }
  return bytes;
}

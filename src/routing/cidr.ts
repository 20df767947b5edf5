import { isIPv4, isIPv6 } from 'node:net';

// Client-address matching for routes (`source:` / `not_source:`): CIDR blocks parsed once per
// config generation into integers, a client address parsed once per connection (the view
// caches it), and a match is a few integer compares with no allocation. IPv4-mapped IPv6
// addresses (::ffff:10.0.0.1) are matched as the IPv4 address they carry (RFC 4291 §2.5.5.2).

/** An address as four 32-bit words (IPv4 in the last word, with `v4` set). */
export interface ParsedAddress {
  readonly v4: boolean;
  readonly w: Uint32Array;
}

export function parseAddress(text: string): ParsedAddress | null {
  if (isIPv4(text)) {
    const w = new Uint32Array(4);
    w[3] = v4Word(text);
    return { v4: true, w };
  }
  if (!isIPv6(text)) return null;
  const pct = text.indexOf('%');
  const w = v6Words(pct === -1 ? text : text.slice(0, pct));
  // ::ffff:a.b.c.d
  if (w[0] === 0 && w[1] === 0 && w[2] === 0xffff) return { v4: true, w: Uint32Array.of(0, 0, 0, w[3]!) };
  return { v4: false, w };
}

function v4Word(text: string): number {
  const p = text.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

function v6Words(text: string): Uint32Array {
  let tail = text;
  const groups: number[] = [];
  let v4: number | null = null;
  const lastColon = tail.lastIndexOf(':');
  if (tail.indexOf('.', lastColon) !== -1) {
    v4 = v4Word(tail.slice(lastColon + 1));
    tail = tail.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = tail.indexOf('::');
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  if (dbl === -1) groups.push(...parse(tail));
  else {
    const head = parse(tail.slice(0, dbl));
    const rest = parse(tail.slice(dbl + 2));
    groups.push(...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest);
  }
  const w = new Uint32Array(4);
  for (let i = 0; i < 4; i++) w[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  if (v4 !== null) w[3] = v4;
  return w;
}

/** A compiled CIDR list: IPv4 blocks as (base, mask) pairs; IPv6 blocks as word quadruples. */
export class CidrList {
  private readonly v4: Uint32Array;
  private readonly v6: Uint32Array;

  constructor(readonly blocks: readonly string[]) {
    const v4: number[] = [];
    const v6: number[] = [];
    for (const block of blocks) {
      const slash = block.indexOf('/');
      const addr = parseAddress(slash === -1 ? block : block.slice(0, slash));
      if (addr === null) throw new Error(`bad address ${block}`);
      const bits = slash === -1 ? (addr.v4 && !block.includes(':') ? 32 : 128) : Number(block.slice(slash + 1));
      if (addr.v4 && !block.includes(':')) {
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        v4.push((addr.w[3]! & mask) >>> 0, mask);
      } else {
        // An IPv6 block (a ::ffff:0:0/96-style block also reaches mapped IPv4 clients through
        // their words).
        const words = addr.v4 ? Uint32Array.of(0, 0, 0xffff, addr.w[3]!) : addr.w;
        for (let i = 0; i < 4; i++) {
          const b = Math.max(0, Math.min(32, bits - 32 * i));
          const mask = b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
          v6.push((words[i]! & mask) >>> 0, mask);
        }
      }
    }
    this.v4 = Uint32Array.from(v4);
    this.v6 = Uint32Array.from(v6);
  }

  contains(a: ParsedAddress): boolean {
    const w = a.w;
    if (a.v4) {
      const x = w[3]!;
      const v4 = this.v4;
      for (let i = 0; i < v4.length; i += 2) if (((x & v4[i + 1]!) >>> 0) === v4[i]) return true;
      // Mapped form against IPv6 blocks such as ::ffff:0:0/96.
      return this.containsWords(0, 0, 0xffff, x);
    }
    return this.containsWords(w[0]!, w[1]!, w[2]!, w[3]!);
  }

  private containsWords(a: number, b: number, c: number, d: number): boolean {
    const v6 = this.v6;
    for (let i = 0; i < v6.length; i += 8) {
      if (((a & v6[i + 1]!) >>> 0) === v6[i] && ((b & v6[i + 3]!) >>> 0) === v6[i + 2] &&
        ((c & v6[i + 5]!) >>> 0) === v6[i + 4] && ((d & v6[i + 7]!) >>> 0) === v6[i + 6]) return true;
    }
    return false;
  }
}

const compiledLists = new WeakMap<readonly string[], CidrList>();

/**
 * Is `address` (a socket's remote address, text) in `blocks`? The one address-range check of
 * the runtime: routes (`source`), the PROXY protocol's `trusted_sources` and
 * `trusted_proxies` all go through CidrList. `blocks` is a frozen config list, so it is
 * compiled once per config generation; only the address is parsed per call.
 */
export function addressInBlocks(blocks: readonly string[], address: string): boolean {
  if (blocks.length === 0) return false;
  let list = compiledLists.get(blocks);
  if (list === undefined) {
    list = new CidrList(blocks);
    compiledLists.set(blocks, list);
  }
  const parsed = parseAddress(address);
  return parsed !== null && list.contains(parsed);
}

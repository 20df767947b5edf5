import { ipBytes, parseCidr } from '../config/cidr.js';

// Client-address matching at run time (routes' `source:` / `not_source:`, `trusted_sources`,
// `trusted_proxies`): CIDR blocks compiled once per config generation into 32-bit words, a
// client address parsed once per connection (the view caches it), and a match is a few integer
// compares with no allocation. Text is parsed by config/cidr.ts (ipBytes, parseCidr), the one
// address parser, which also validated these blocks when the config loaded. IPv4-mapped IPv6
// addresses (::ffff:10.0.0.1) are matched as the IPv4 address they carry (RFC 4291 §2.5.5.2).

/** An address as four 32-bit words (IPv4 in the last word, with `v4` set). */
export interface ParsedAddress {
  readonly v4: boolean;
  readonly w: Uint32Array;
}

/** Big-endian 32-bit word of `bytes` at `at`. */
function word(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** The leading `bits` of a 32-bit word set. */
function maskOf(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** `::ffff:0:0/96`: the IPv4-mapped prefix, however the address was spelled. */
function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

export function parseAddress(text: string): ParsedAddress | null {
  const b = ipBytes(text);
  if (b === null) return null;
  if (b.length === 4) return { v4: true, w: Uint32Array.of(0, 0, 0, word(b, 0)) };
  if (isMapped(b)) return { v4: true, w: Uint32Array.of(0, 0, 0, word(b, 12)) };
  return { v4: false, w: Uint32Array.of(word(b, 0), word(b, 4), word(b, 8), word(b, 12)) };
}

/** A compiled CIDR list: IPv4 blocks as (base, mask) pairs; IPv6 blocks as word quadruples. */
export class CidrList {
  private readonly v4: Uint32Array;
  private readonly v6: Uint32Array;

  constructor(readonly blocks: readonly string[]) {
    const v4: number[] = [];
    const v6: number[] = [];
    for (const block of blocks) {
      const range = parseCidr(block);
      if (typeof range === 'string') throw new Error(range);
      const { bytes, prefix } = range;
      if (bytes.length === 4) v4.push(word(bytes, 0), maskOf(prefix));
      else {
        // An IPv6 block (a ::ffff:0:0/96-style block also reaches mapped IPv4 clients through
        // their words).
        for (let i = 0; i < 4; i++) v6.push(word(bytes, 4 * i), maskOf(prefix - 32 * i));
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
      for (let i = 0; i < v4.length; i += 2) if ((x & v4[i + 1]!) >>> 0 === v4[i]) return true;
      // Mapped form against IPv6 blocks such as ::ffff:0:0/96.
      return this.containsWords(0, 0, 0xffff, x);
    }
    return this.containsWords(w[0]!, w[1]!, w[2]!, w[3]!);
  }

  private containsWords(a: number, b: number, c: number, d: number): boolean {
    const v6 = this.v6;
    for (let i = 0; i < v6.length; i += 8) {
      if (
        (a & v6[i + 1]!) >>> 0 === v6[i] &&
        (b & v6[i + 3]!) >>> 0 === v6[i + 2] &&
        (c & v6[i + 5]!) >>> 0 === v6[i + 4] &&
        (d & v6[i + 7]!) >>> 0 === v6[i + 6]
      )
        return true;
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

import { isIPv4, isIPv6 } from 'node:net';

// A strict, bounded parser of the PROXY protocol header (haproxy.org/download/2.6/doc/
// proxy-protocol.txt), v1 (text) and v2 (binary). It reads what arrived so far and answers
// "need more", "here is the header and its length", or an error; it never reads past the
// header, never holds more than the largest header we accept, and never throws.
//
// Bounds: a v1 line is at most 107 bytes with its CRLF (spec §2.1); a v2 header is 16 bytes
// plus a length we cap at MAX_V2_BYTES (spec §2.2 allows 64 KiB of TLVs; real senders use a
// few hundred bytes: AWS NLB and GCP add one small TLV, HAProxy at most a few SSL ones).

export const V1_MAX_BYTES = 107;
export const MAX_V2_BYTES = 2048;
/** The v2 signature: \r\n\r\n\0\r\nQUIT\n (spec §2.2). */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');

export const PROXY_INCOMPLETE = 0;
export const PROXY_OK = 1;
export const PROXY_ERROR = 2;

/** What a header said: the original connection's endpoints, or null to keep the real ones. */
export interface ProxyAddresses {
  readonly family: 'tcp4' | 'tcp6';
  readonly srcIp: string;
  readonly srcPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
}

export interface ProxyParse {
  status: typeof PROXY_INCOMPLETE | typeof PROXY_OK | typeof PROXY_ERROR;
  /** Bytes the header took (PROXY_OK). */
  length: number;
  version: 1 | 2 | 0;
  /**
   * PROXY_OK: the carried addresses; null for v1 `UNKNOWN`, v2 `LOCAL` (health checks of the
   * sender) and v2 families we do not route (UDP, Unix): as HAProxy, the real ones stay.
   */
  addresses: ProxyAddresses | null;
  /** PROXY_ERROR: why, in a few words for the log. */
  error: string;
}

function result(status: ProxyParse['status'], length: number, version: 0 | 1 | 2, addresses: ProxyAddresses | null, error: string): ProxyParse {
  return { status, length, version, addresses, error };
}

const INCOMPLETE = result(PROXY_INCOMPLETE, 0, 0, null, '');
const err = (why: string): ProxyParse => result(PROXY_ERROR, 0, 0, null, why);

/** Parse the header at the start of `buf` (everything received so far). */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return INCOMPLETE;
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50) return parseV1(buf);
  return err('not a PROXY protocol header');
}

/** Bytes of `buf` match the start of `sig` (so far). */
function prefixMatches(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

// ---- v1: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" -------------------------------

function parseV1(buf: Buffer): ProxyParse {
  if (!prefixMatches(buf, V1_PREFIX)) return err('not a PROXY protocol header');
  const limit = Math.min(buf.length, V1_MAX_BYTES);
  let lf = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const c = buf[i]!;
    if (c === 0x0a) {
      lf = i;
      break;
    }
    // Printable ASCII, spaces and the CR before LF only.
    if ((c < 0x20 && c !== 0x0d) || c > 0x7e) return err('v1: bad character');
  }
  if (lf < 0) return buf.length >= V1_MAX_BYTES ? err('v1: line longer than 107 bytes') : INCOMPLETE;
  if (buf[lf - 1] !== 0x0d) return err('v1: line not ended by CRLF');
  const line = buf.toString('latin1', V1_PREFIX.length, lf - 1);
  const length = lf + 1;
  if (line.startsWith('UNKNOWN')) {
    // "PROXY UNKNOWN" may carry anything up to the CRLF; the receiver keeps the real addresses.
    if (line.length > 7 && line[7] !== ' ') return err('v1: unknown protocol');
    return result(PROXY_OK, length, 1, null, '');
  }
  const parts = line.split(' ');
  if (parts.length !== 5) return err('v1: expected "PROXY TCP4|TCP6 src dst sport dport"');
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
  let family: 'tcp4' | 'tcp6';
  if (proto === 'TCP4') {
    if (!isIPv4(src) || !isIPv4(dst)) return err('v1: bad IPv4 address');
    family = 'tcp4';
  } else if (proto === 'TCP6') {
    if (!isIPv6(src) || !isIPv6(dst) || src.includes('%') || dst.includes('%')) return err('v1: bad IPv6 address');
    family = 'tcp6';
  } else {
    return err('v1: unknown protocol');
  }
  const sp = port(sport);
  const dp = port(dport);
  if (sp < 0 || dp < 0) return err('v1: bad port');
  return result(PROXY_OK, length, 1, { family, srcIp: src, srcPort: sp, dstIp: dst, dstPort: dp }, '');
}

/** A v1 port: 0-65535 in decimal, no sign, no leading zero (spec §2.1). */
function port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

// ---- v2: signature, ver_cmd, fam, len (network order), addresses, TLVs ---------------------

function parseV2(buf: Buffer): ProxyParse {
  if (!prefixMatches(buf, V2_SIGNATURE)) return err('not a PROXY protocol header');
  if (buf.length < 16) return INCOMPLETE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return err('v2: unsupported version');
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return err('v2: unknown command');
  const fam = buf[13]!;
  const len = buf.readUInt16BE(14);
  const total = 16 + len;
  if (total > MAX_V2_BYTES) return err(`v2: header longer than ${MAX_V2_BYTES} bytes`);
  if (buf.length < total) return INCOMPLETE;
  // LOCAL: the sender speaks for itself (its health checks); the real addresses stay.
  if (cmd === 0) return result(PROXY_OK, total, 2, null, '');
  switch (fam) {
    case 0x11: {
      // TCP over IPv4
      if (len < 12) return err('v2: address block too short');
      const src = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`;
      const dst = `${buf[20]}.${buf[21]}.${buf[22]}.${buf[23]}`;
      return result(PROXY_OK, total, 2, { family: 'tcp4', srcIp: src, srcPort: buf.readUInt16BE(24), dstIp: dst, dstPort: buf.readUInt16BE(26) }, '');
    }
    case 0x21: {
      // TCP over IPv6
      if (len < 36) return err('v2: address block too short');
      return result(
        PROXY_OK,
        total,
        2,
        {
          family: 'tcp6',
          srcIp: ipv6(buf, 16),
          srcPort: buf.readUInt16BE(48),
          dstIp: ipv6(buf, 32),
          dstPort: buf.readUInt16BE(50),
        },
        '',
      );
    }
    case 0x00: // UNSPEC
    case 0x12:
    case 0x22: // UDP
    case 0x31:
    case 0x32: // Unix stream / datagram
      // A valid header for a connection we cannot describe by IP: keep the real addresses,
      // as HAProxy does for families it does not support.
      return result(PROXY_OK, total, 2, null, '');
    default:
      return err('v2: unknown address family');
  }
}

/** 16 bytes at `at` in the compressed text form Node uses for remoteAddress (`::1`, `fe80::2`). */
function ipv6(buf: Buffer, at: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(buf.readUInt16BE(at + i * 2));
  // IPv4-mapped (::ffff:a.b.c.d) as Node prints it.
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${buf[at + 12]}.${buf[at + 13]}.${buf[at + 14]}.${buf[at + 15]}`;
  }
  // The longest run of two or more zero words becomes "::" (RFC 5952 §4.2).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

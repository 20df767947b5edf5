// Reading the server name (SNI) out of a TLS ClientHello without decrypting anything, so a TCP
// frontend can route TLS by name and pass the bytes through untouched (HAProxy's
// `req.ssl_sni`). Strict and bounded: anything that is not a well-formed ClientHello in TLS
// handshake records is refused, and at most MAX_HELLO_BYTES of it are read.
//
// Wire format (RFC 8446 §4.1.2 and §5.1, RFC 5246 §7.4.1.2, RFC 6066 §3):
//   record:        type(1)=22 handshake, legacy_version(2) 3.x, length(2) <= 2^14, fragment
//   handshake:     msg_type(1)=1 client_hello, length(3), body — may span several records
//   client_hello:  legacy_version(2), random(32), session_id<0..32>, cipher_suites<2..2^16-2>,
//                  compression_methods<1..2^8-1>, extensions<0..2^16-1> (absent in very old ones)
//   extension:     type(2), data<0..2^16-1>; each type at most once (RFC 8446 §4.2)
//   server_name:   type 0: server_name_list<1..2^16-1> of name_type(1)=0 host_name<1..2^16-1>

/** Handshake bytes read before routing at most: HAProxy's default buffer is 16 KiB as well. */
export const MAX_HELLO_BYTES = 16384;

export const HELLO_INCOMPLETE = 0;
export const HELLO_OK = 1;
export const HELLO_INVALID = 2;
export const HELLO_OVERSIZED = 3;

export interface HelloResult {
  /** HELLO_INCOMPLETE: read more; HELLO_OK: `serverName` is set (or null: no SNI); else refuse. */
  status: number;
  /** Lower case, without a trailing dot; null when the client sent none. */
  serverName: string | null;
  /** Why an invalid hello was refused (for the log; never contains the bytes). */
  error: string;
}

const RECORD_HEADER = 5;
const MAX_RECORD = 16384;

function result(status: number, serverName: string | null = null, error = ''): HelloResult {
  return { status, serverName, error };
}

/**
 * Parse what arrived so far (from the first byte of the connection). Call again with more
 * bytes while it answers HELLO_INCOMPLETE; `data` longer than the hello is fine (the client may
 * already have sent more).
 */
export function parseClientHello(data: Buffer): HelloResult {
  // 1. Reassemble the handshake message from as many records as it needs.
  let p = 0;
  let hs: Buffer;
  let hsLength = -1;
  const parts: Buffer[] = [];
  let got = 0;
  for (;;) {
    if (data.length - p < RECORD_HEADER) {
      // Refuse early what cannot become a ClientHello, rather than wait for more bytes.
      if (data.length - p >= 1 && data[p] !== 22) return result(HELLO_INVALID, null, 'not a TLS handshake record');
      if (data.length - p >= 2 && data[p + 1] !== 3) return result(HELLO_INVALID, null, 'not a TLS record version');
      return result(HELLO_INCOMPLETE);
    }
    if (data[p] !== 22) return result(HELLO_INVALID, null, 'not a TLS handshake record');
    if (data[p + 1] !== 3) return result(HELLO_INVALID, null, 'not a TLS record version');
    const len = data.readUInt16BE(p + 3);
    if (len === 0 || len > MAX_RECORD) return result(HELLO_INVALID, null, 'bad record length');
    if (data.length - p - RECORD_HEADER < len) {
      // A partial record: enough to know the hello's size already?
      if (hsLength === -1 && got + (data.length - p - RECORD_HEADER) >= 4) {
        const head = Buffer.concat([...parts, data.subarray(p + RECORD_HEADER)]);
        const v = checkHandshakeHeader(head);
        if (v !== null) return v;
      }
      return result(HELLO_INCOMPLETE);
    }
    parts.push(data.subarray(p + RECORD_HEADER, p + RECORD_HEADER + len));
    got += len;
    p += RECORD_HEADER + len;
    if (hsLength === -1 && got >= 4) {
      const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      const v = checkHandshakeHeader(head);
      if (v !== null) return v;
      hsLength = head.readUIntBE(1, 3);
    }
    if (hsLength !== -1 && got >= 4 + hsLength) {
      hs = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      // Bytes of another handshake message after the hello in the same flight: not a client's.
      if (got > 4 + hsLength) return result(HELLO_INVALID, null, 'data after the ClientHello');
      break;
    }
  }
  return parseBody(hs.subarray(4, 4 + hsLength));
}

/** The handshake header: a ClientHello of a size we accept. Null: fine so far. */
function checkHandshakeHeader(head: Buffer): HelloResult | null {
  if (head[0] !== 1) return result(HELLO_INVALID, null, 'not a ClientHello');
  const n = head.readUIntBE(1, 3);
  if (n > MAX_HELLO_BYTES - 4) return result(HELLO_OVERSIZED, null, 'ClientHello too large');
  if (n < 38) return result(HELLO_INVALID, null, 'ClientHello too short');
  return null;
}

function parseBody(b: Buffer): HelloResult {
  const bad = (why: string) => result(HELLO_INVALID, null, why);
  const end = b.length;
  if (b[0] !== 3) return bad('bad ClientHello version');
  let p = 2 + 32;
  // session_id
  const sid = b[p]!;
  if (sid > 32 || p + 1 + sid > end) return bad('bad session id');
  p += 1 + sid;
  // cipher_suites
  if (p + 2 > end) return bad('truncated cipher suites');
  const cs = b.readUInt16BE(p);
  if (cs < 2 || cs % 2 !== 0 || p + 2 + cs > end) return bad('bad cipher suites');
  p += 2 + cs;
  // compression_methods
  if (p + 1 > end) return bad('truncated compression methods');
  const cm = b[p]!;
  if (cm < 1 || p + 1 + cm > end) return bad('bad compression methods');
  p += 1 + cm;
  if (p === end) return result(HELLO_OK); // no extensions at all: no SNI
  if (p + 2 > end) return bad('truncated extensions');
  const extLen = b.readUInt16BE(p);
  p += 2;
  if (p + extLen !== end) return bad('extensions do not fill the ClientHello');
  let serverName: string | null = null;
  const seen = new Set<number>();
  while (p < end) {
    if (p + 4 > end) return bad('truncated extension');
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    p += 4;
    if (p + len > end) return bad('extension overruns the ClientHello');
    if (seen.has(type)) return bad('duplicate extension');
    seen.add(type);
    if (type === 0) {
      const name = parseServerName(b, p, p + len);
      if (typeof name !== 'string' || name === '') return bad(name === '' ? 'empty server name' : 'bad server_name extension');
      serverName = name;
    }
    p += len;
  }
  return result(HELLO_OK, serverName);
}

/** RFC 6066 §3: the host_name entry of a server_name extension; null when malformed. */
function parseServerName(b: Buffer, start: number, end: number): string | null {
  if (start + 2 > end) return null;
  const listLen = b.readUInt16BE(start);
  let p = start + 2;
  if (listLen === 0 || p + listLen !== end) return null;
  let host: string | null = null;
  while (p < end) {
    if (p + 3 > end) return null;
    const kind = b[p]!;
    const len = b.readUInt16BE(p + 1);
    p += 3;
    if (p + len > end) return null;
    if (kind === 0) {
      if (host !== null) return null; // "MUST NOT contain more than one name of the same name_type"
      host = hostName(b, p, p + len);
      if (host === null) return null;
    }
    p += len;
  }
  return host;
}

/** An ASCII DNS name (letters, digits, `-`, `_`, dots; RFC 6066: no trailing dot, but tolerated). */
function hostName(b: Buffer, start: number, end: number): string | null {
  let stop = end;
  if (stop > start && b[stop - 1] === 0x2e) stop--;
  if (stop - start < 1 || stop - start > 253) return null;
  for (let i = start; i < stop; i++) {
    const c = b[i]!;
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f;
    if (!ok) return null;
    if (c === 0x2e && (i === start || b[i - 1] === 0x2e)) return null; // empty label
  }
  return b.toString('latin1', start, stop).toLowerCase();
}

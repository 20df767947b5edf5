// Byte-level HTTP/1.1 grammar shared by the head parser and the chunked scanner: character
// classes as 256-entry tables (one load per byte on the hot path), ASCII case folding without
// strings, and the header names the proxy acts on. RFC 9110 §5.6.2 (token), §5.5 (field
// values), RFC 9112 §3.2 (request-target), RFC 3986 §3.2.2 (authority).

/** tchar: the bytes of a token (method, field name). */
export const TCHAR = new Uint8Array(256);
/** field-vchar / obs-text / SP / HTAB: the bytes of a field value (no CTL, no DEL). */
export const FIELD = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(ch)) TCHAR[c] = 1;
  if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c === 0x20 || c === 0x09) FIELD[c] = 1;
}
/** request-target: visible ASCII only (no SP, no CTL, no obs-text), and no `#` (a fragment is
 * never part of a request-target, RFC 9112 §3.2). */
export const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;
TARGET[0x23] = 0;
/** Host value / absolute-form authority: uri-host [":" port]. No userinfo `@`, no `/`, no SP. */
const AUTHORITY = new Uint8Array(256);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:[]%") AUTHORITY[ch.charCodeAt(0)] = 1;

/**
 * buf[start..end) is uri-host [":" port] made of authority bytes. An empty Host is allowed
 * (RFC 9110 §7.2), an empty absolute-form authority is not.
 */
export function validAuthority(buf: Buffer, start: number, end: number, allowEmpty: boolean): boolean {
  if (start === end) return allowEmpty;
  for (let i = start; i < end; i++) if (AUTHORITY[buf[i]!] !== 1) return false;
  return true;
}

/** Case-insensitive compare of buf[start..start+lower.length) with a lowercase ASCII name. */
export function eqLower(buf: Buffer, start: number, lower: Buffer): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = buf[start + i]!;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower[i]) return false;
  }
  return true;
}

/** buf[a..a+n) equals buf[b..b+n), ASCII case-insensitively. */
export function sameIgnoringCase(buf: Buffer, a: number, b: number, n: number): boolean {
  for (let i = 0; i < n; i++) {
    let x = buf[a + i]!,
      y = buf[b + i]!;
    if (x >= 65 && x <= 90) x += 32;
    if (y >= 65 && y <= 90) y += 32;
    if (x !== y) return false;
  }
  return true;
}

// Header names the proxy acts on, by kind.
export const H_OTHER = 0;
export const H_HOST = 1;
export const H_CONTENT_LENGTH = 2;
export const H_TRANSFER_ENCODING = 3;
export const H_CONNECTION = 4;
export const H_KEEP_ALIVE = 5;
export const H_PROXY_CONNECTION = 6;
export const H_TE = 7;
export const H_UPGRADE = 8;
export const H_XFF = 9;
export const H_COOKIE = 10;
export const H_XFP = 11;
export const H_FORWARDED = 12;

const NAMES: readonly [string, number][] = [
  ['host', H_HOST],
  ['content-length', H_CONTENT_LENGTH],
  ['transfer-encoding', H_TRANSFER_ENCODING],
  ['connection', H_CONNECTION],
  ['keep-alive', H_KEEP_ALIVE],
  ['proxy-connection', H_PROXY_CONNECTION],
  ['te', H_TE],
  ['upgrade', H_UPGRADE],
  ['x-forwarded-for', H_XFF],
  ['cookie', H_COOKIE],
  ['x-forwarded-proto', H_XFP],
  ['forwarded', H_FORWARDED],
];
/** Known names grouped by length so most headers are classified by one length check. */
const BY_LENGTH: [Buffer, number][][] = [];
for (const [name, kind] of NAMES) (BY_LENGTH[name.length] ??= []).push([Buffer.from(name, 'latin1'), kind]);

/** The kind (H_*) of the field name buf[start..end). */
export function classify(buf: Buffer, start: number, end: number): number {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return H_OTHER;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    if (eqLower(buf, start, c[0])) return c[1];
  }
  return H_OTHER;
}

/** Lowercased, trimmed comma-separated tokens of a header value (Connection options). */
export function tokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '') out.push(t);
  }
  return out;
}

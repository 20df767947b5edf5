import type { HttpLimits } from '../config/types.js';
import { latin1 } from './latin1.js';

// HTTP/1.1 message-head parser (RFC 9112), strict enough to stop request smuggling: every
// ambiguity in framing is an error, never a guess. One instance per connection side is reused
// for every message: offsets go into preallocated typed arrays and the only strings made are
// the method, the target and the few header values the proxy needs.
//
// Framing rules enforced (RFC 9112 §6): Transfer-Encoding must be exactly `chunked` (once);
// Transfer-Encoding together with Content-Length is rejected; Content-Length is 1*DIGIT and
// repeated values must agree; obs-fold, whitespace before the colon, bare CR/LF and NUL/CTL
// characters are rejected.

export const PARSE_INCOMPLETE = 0;
export const PARSE_OK = 1;
// Any other result is the HTTP status to answer with (400, 414, 431, 501, 505; 502 for responses).

/** Byte classes: 1 = tchar (RFC 9110 §5.6.2 token), 2 = field-vchar/obs-text/SP/HTAB. */
const TCHAR = new Uint8Array(256);
const FIELD = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  if (/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(ch)) TCHAR[c] = 1;
  if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c === 0x20 || c === 0x09) FIELD[c] = 1;
}
/** request-target: visible ASCII only (no SP, no CTL, no obs-text). */
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

// Header names the proxy acts on, by kind.
const H_OTHER = 0;
const H_HOST = 1;
const H_CONTENT_LENGTH = 2;
const H_TRANSFER_ENCODING = 3;
const H_CONNECTION = 4;
const H_KEEP_ALIVE = 5;
const H_PROXY_CONNECTION = 6;
const H_TE = 7;
const H_UPGRADE = 8;
const H_XFF = 9;
const H_EXPECT = 10;
const H_COOKIE = 11;
const H_TRAILER = 12;

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
  ['expect', H_EXPECT],
  ['cookie', H_COOKIE],
  ['trailer', H_TRAILER],
];
/** Known names grouped by length so most headers are classified by one length check. */
const BY_LENGTH: [Buffer, number][][] = [];
for (const [name, kind] of NAMES) (BY_LENGTH[name.length] ??= []).push([Buffer.from(name, 'latin1'), kind]);

/** Case-insensitive compare of buf[start..start+lower.length) with a lowercase ASCII name. */
function eqLower(buf: Buffer, start: number, lower: Buffer): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = buf[start + i]!;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower[i]) return false;
  }
  return true;
}

function classify(buf: Buffer, start: number, end: number): number {
  const candidates = BY_LENGTH[end - start];
  if (candidates === undefined) return H_OTHER;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    if (eqLower(buf, start, c[0])) return c[1];
  }
  return H_OTHER;
}

/** Lowercased, trimmed comma-separated tokens of a header value (Connection options). */
function tokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase();
    if (t !== '') out.push(t);
  }
  return out;
}

export class HttpHead {
  // --- request line / status line
  method = '';
  target = '';
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 */
  minor = 1;
  status = 0;
  /** Offset just past the start line's CRLF. */
  startLineEnd = 0;
  /** Offset just past the blank line ending the head. */
  headEnd = 0;
  // --- framing
  /** -1: no Content-Length */
  contentLength = -1;
  chunked = false;
  // --- connection management
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  hasUpgrade = false;
  expectContinue = false;
  hostCount = 0;
  /** Start/end offsets of the first Host value (requests). */
  hostStart = 0;
  hostEnd = 0;
  /** X-Forwarded-For values already present (joined with ", "), null when absent. */
  xff: string | null = null;
  /** Cookie header values, joined with "; ", null when absent. */
  cookie: string | null = null;
  // --- header lines: offsets, and which ones to drop when forwarding
  count = 0;
  readonly lineStart: Int32Array;
  readonly nameEnd: Int32Array;
  readonly lineEnd: Int32Array;
  readonly drop: Uint8Array;
  dropCount = 0;
  /** Extra hop-by-hop names listed in Connection, lowercased; null when none. */
  private connectionOptions: string[] | null = null;
  /** Why the last parse failed (for logs). */
  error = '';

  constructor(readonly limits: HttpLimits) {
    const n = limits.maxHeaders + 1;
    this.lineStart = new Int32Array(n);
    this.nameEnd = new Int32Array(n);
    this.lineEnd = new Int32Array(n);
    this.drop = new Uint8Array(n);
  }

  private reset(): void {
    this.contentLength = -1;
    this.chunked = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.connectionUpgrade = false;
    this.hasUpgrade = false;
    this.expectContinue = false;
    this.hostCount = 0;
    this.xff = null;
    this.cookie = null;
    this.count = 0;
    this.dropCount = 0;
    this.connectionOptions = null;
    this.error = '';
    this.status = 0;
  }

  private fail(status: number, why: string): number {
    this.error = why;
    return status;
  }

  /** Where the head ends (just past CRLFCRLF) in buf[start..end), or -1. */
  static findHeadEnd(buf: Buffer, start: number, end: number): number {
    const i = buf.indexOf('\r\n\r\n', start, 'latin1');
    return i === -1 || i + 4 > end ? -1 : i + 4;
  }

  /**
   * Parse a request head from buf[start..end). Returns PARSE_INCOMPLETE, PARSE_OK or an error
   * status. Offsets recorded are absolute positions in `buf`.
   */
  parseRequest(buf: Buffer, start: number, end: number): number {
    this.reset();
    const limits = this.limits;
    // Request line: method SP request-target SP HTTP-version CRLF
    // maxRequestLine counts the line without its CRLF: up to that many bytes plus a CR may
    // wait for the LF.
    let lineEnd = buf.indexOf(LF, start);
    if (lineEnd === -1 || lineEnd >= end) {
      if (end - start > limits.maxRequestLine + 1) return this.fail(414, 'request line too long');
      return PARSE_INCOMPLETE;
    }
    if (lineEnd - 1 - start > limits.maxRequestLine) return this.fail(414, 'request line too long');
    // lineEnd === start: never look at the byte before `start` (a previous pipelined message).
    if (lineEnd === start || buf[lineEnd - 1] !== CR) return this.fail(400, 'bare LF in request line');
    const headEnd = HttpHead.findHeadEnd(buf, start, end);
    if (headEnd === -1) {
      if (end - start > limits.maxHeaderBytes) return this.fail(431, 'request head too large');
      // A head ended by bare LFs would otherwise wait for a CRLFCRLF that never comes.
      const lfHead = buf.indexOf('\n\n', start, 'latin1');
      if (lfHead !== -1 && lfHead + 1 < end) return this.fail(400, 'bare LF in header section');
      return PARSE_INCOMPLETE;
    }
    if (headEnd - start > limits.maxHeaderBytes) return this.fail(431, 'request head too large');
    let p = start;
    while (p < lineEnd && TCHAR[buf[p]!] === 1) p++;
    if (p === start || buf[p] !== SP) return this.fail(400, 'bad method');
    this.method = latin1(buf, start, p);
    const targetStart = ++p;
    while (p < lineEnd && TARGET[buf[p]!] === 1) p++;
    if (p === targetStart || buf[p] !== SP) return this.fail(400, 'bad request target');
    this.target = latin1(buf, targetStart, p);
    p++;
    const v = this.parseVersion(buf, p, lineEnd - 1);
    if (v !== PARSE_OK) return v;
    this.startLineEnd = lineEnd + 1;
    const r = this.parseFields(buf, lineEnd + 1, headEnd, 400);
    if (r !== PARSE_OK) return r;
    // RFC 9112 §3.2: a 1.1 request without exactly one Host is a 400.
    if (this.hostCount > 1) return this.fail(400, 'more than one Host');
    if (this.minor === 1 && this.hostCount === 0) return this.fail(400, 'missing Host');
    if (this.chunked && this.minor === 0) return this.fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (this.method === 'CONNECT') return this.fail(405, 'CONNECT is not supported');
    return PARSE_OK;
  }

  /** Parse a response head (status line + fields); errors are 502 (never forwarded). */
  parseResponse(buf: Buffer, start: number, end: number): number {
    this.reset();
    const headEnd = HttpHead.findHeadEnd(buf, start, end);
    if (headEnd === -1) {
      if (end - start > this.limits.maxHeaderBytes) return this.fail(502, 'response head too large');
      return PARSE_INCOMPLETE;
    }
    if (headEnd - start > this.limits.maxHeaderBytes) return this.fail(502, 'response head too large');
    const lineEnd = buf.indexOf(LF, start);
    if (lineEnd === start || buf[lineEnd - 1] !== CR) return this.fail(502, 'bare LF in status line');
    // HTTP-version SP 3DIGIT SP [reason] CRLF
    // The SP before an empty reason is often missing in the wild: accept "HTTP/1.1 200\r\n".
    if (lineEnd - start < 13 || buf[start + 8] !== SP || (buf[start + 12] !== SP && start + 12 !== lineEnd - 1)) {
      return this.fail(502, 'bad status line');
    }
    const v = this.parseVersion(buf, start, start + 8);
    if (v !== PARSE_OK) return this.fail(502, 'bad response version');
    const d0 = buf[start + 9]! - 48, d1 = buf[start + 10]! - 48, d2 = buf[start + 11]! - 48;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.fail(502, 'bad status code');
    this.status = d0 * 100 + d1 * 10 + d2;
    for (let i = start + 13; i < lineEnd - 1; i++) if (FIELD[buf[i]!] !== 1) return this.fail(502, 'bad reason phrase');
    this.startLineEnd = lineEnd + 1;
    return this.parseFields(buf, lineEnd + 1, headEnd, 502);
  }

  private parseVersion(buf: Buffer, p: number, end: number): number {
    // "HTTP/" DIGIT "." DIGIT
    if (end - p !== 8 || buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 6] !== 46) {
      return this.fail(400, 'bad HTTP version');
    }
    const major = buf[p + 5]! - 48, minor = buf[p + 7]! - 48;
    if (major < 0 || major > 9 || minor < 0 || minor > 9) return this.fail(400, 'bad HTTP version');
    if (major !== 1 || minor > 1) return this.fail(505, 'HTTP version not supported');
    this.minor = minor;
    return PARSE_OK;
  }

  private parseFields(buf: Buffer, p: number, headEnd: number, errorStatus: number): number {
    const last = headEnd - 2; // the final CRLF
    const max = this.limits.maxHeaders;
    while (p < last) {
      if (this.count === max) return this.fail(errorStatus === 400 ? 431 : 502, 'too many header fields');
      const c0 = buf[p]!;
      if (c0 === SP || c0 === HTAB) return this.fail(errorStatus, 'obsolete line folding');
      const nameStart = p;
      while (TCHAR[buf[p]!] === 1) p++;
      if (p === nameStart || buf[p] !== COLON) return this.fail(errorStatus, 'bad header name');
      const nameEnd = p;
      p++;
      while (buf[p] === SP || buf[p] === HTAB) p++;
      const valueStart = p;
      while (FIELD[buf[p]!] === 1) p++;
      if (buf[p] !== CR || buf[p + 1] !== LF) return this.fail(errorStatus, 'bad header value');
      let valueEnd = p;
      while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
      const i = this.count++;
      this.lineStart[i] = nameStart;
      this.nameEnd[i] = nameEnd;
      this.lineEnd[i] = p + 2;
      this.drop[i] = 0;
      const kind = classify(buf, nameStart, nameEnd);
      if (kind !== H_OTHER) {
        const r = this.field(kind, i, buf, valueStart, valueEnd, errorStatus);
        if (r !== PARSE_OK) return r;
      }
      p += 2;
    }
    this.headEnd = headEnd;
    if (this.chunked && this.contentLength !== -1) return this.fail(errorStatus, 'both Transfer-Encoding and Content-Length');
    if (this.connectionOptions !== null) this.dropConnectionOptions(buf);
    return PARSE_OK;
  }

  private field(kind: number, i: number, buf: Buffer, vs: number, ve: number, errorStatus: number): number {
    switch (kind) {
      case H_HOST:
        if (this.hostCount++ === 0) {
          this.hostStart = vs;
          this.hostEnd = ve;
        }
        return PARSE_OK;
      case H_CONTENT_LENGTH: {
        if (ve === vs || ve - vs > 15) return this.fail(errorStatus, 'bad Content-Length');
        let n = 0;
        for (let k = vs; k < ve; k++) {
          const d = buf[k]! - 48;
          if (d < 0 || d > 9) return this.fail(errorStatus, 'bad Content-Length');
          n = n * 10 + d;
        }
        if (this.contentLength !== -1 && this.contentLength !== n) return this.fail(errorStatus, 'differing Content-Length values');
        this.contentLength = n;
        return PARSE_OK;
      }
      case H_TRANSFER_ENCODING:
        // Only `chunked`, once: any other coding or a list cannot be framed unambiguously here.
        if (this.chunked || ve - vs !== 7 || !eqLower(buf, vs, CHUNKED)) return this.fail(errorStatus === 400 ? 400 : 502, 'Transfer-Encoding other than chunked');
        this.chunked = true;
        return PARSE_OK;
      case H_CONNECTION: {
        this.markDrop(i);
        // The two values nearly every peer sends, without splitting a string.
        if (ve - vs === 10 && eqLower(buf, vs, KEEP_ALIVE)) {
          this.connectionKeepAlive = true;
          return PARSE_OK;
        }
        if (ve - vs === 5 && eqLower(buf, vs, CLOSE)) {
          this.connectionClose = true;
          return PARSE_OK;
        }
        for (const t of tokens(latin1(buf, vs, ve))) {
          if (t === 'close') this.connectionClose = true;
          else if (t === 'keep-alive') this.connectionKeepAlive = true;
          else if (t === 'upgrade') this.connectionUpgrade = true;
          else (this.connectionOptions ??= []).push(t);
        }
        return PARSE_OK;
      }
      case H_KEEP_ALIVE:
      case H_PROXY_CONNECTION:
      case H_TE:
        this.markDrop(i);
        return PARSE_OK;
      case H_UPGRADE:
        // Hop-by-hop (RFC 9110 §7.8); kept only for a tunnelled upgrade (keepUpgrade).
        this.hasUpgrade = true;
        this.markDrop(i);
        return PARSE_OK;
      case H_XFF: {
        const v = latin1(buf, vs, ve);
        this.xff = this.xff === null ? v : `${this.xff}, ${v}`;
        this.markDrop(i);
        return PARSE_OK;
      }
      case H_EXPECT:
        if (ve - vs === 12 && eqLower(buf, vs, CONTINUE)) this.expectContinue = true;
        return PARSE_OK;
      case H_COOKIE: {
        const v = latin1(buf, vs, ve);
        this.cookie = this.cookie === null ? v : `${this.cookie}; ${v}`;
        return PARSE_OK;
      }
      default:
        return PARSE_OK;
    }
  }

  private markDrop(i: number): void {
    if (this.drop[i] === 0) {
      this.drop[i] = 1;
      this.dropCount++;
    }
  }

  /** RFC 9110 §7.6.1: fields named in Connection are hop-by-hop too. */
  private dropConnectionOptions(buf: Buffer): void {
    const names = this.connectionOptions!;
    for (let i = 0; i < this.count; i++) {
      const name = latin1(buf, this.lineStart[i]!, this.nameEnd[i]!).toLowerCase();
      // Never drop framing fields because a peer listed them.
      if (name === 'content-length' || name === 'transfer-encoding' || name === 'host') continue;
      if (names.includes(name)) this.markDrop(i);
    }
  }

  /** Keep Upgrade + Connection: upgrade for a tunnelled upgrade request (dropped otherwise). */
  keepUpgrade(buf: Buffer): void {
    for (let i = 0; i < this.count; i++) {
      const kind = classify(buf, this.lineStart[i]!, this.nameEnd[i]!);
      if (kind === H_UPGRADE && this.drop[i] === 1) {
        this.drop[i] = 0;
        this.dropCount--;
      }
    }
  }

  /** The first Host value (requests). */
  host(buf: Buffer): string {
    return this.hostCount === 0 ? '' : latin1(buf, this.hostStart, this.hostEnd);
  }
}

const CHUNKED = Buffer.from('chunked', 'latin1');
const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1');
const CLOSE = Buffer.from('close', 'latin1');
const CONTINUE = Buffer.from('100-continue', 'latin1');

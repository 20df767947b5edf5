import type { HttpLimits } from '../config/types.js';
import { latin1 } from './latin1.js';
import * as g from './http-grammar.js';

// HTTP/1.1 message-head parser (RFC 9112), strict enough to stop request smuggling: every
// ambiguity in framing is an error, never a guess. One instance per connection side is reused
// for every message: offsets go into preallocated typed arrays and the only strings made are
// the method, the target and the few header values the proxy needs.
//
// Framing rules enforced (RFC 9112 §6): Transfer-Encoding must be exactly `chunked` (once);
// Transfer-Encoding together with Content-Length is rejected; Content-Length is 1*DIGIT and
// repeated values must agree; whitespace before the colon, bare CR/LF and NUL/CTL characters
// are rejected; obs-fold is rejected unless `obsFold: 'unfold'` (then replaced by spaces in
// place, RFC 9112 §5.2). Routing rules: the request-target is origin-form, `*` for OPTIONS, or
// an http(s) absolute-form whose authority is the Host value; Host is a valid authority.

export const PARSE_INCOMPLETE = 0;
export const PARSE_OK = 1;
// Any other result is the HTTP status to answer with (400, 414, 431, 501, 505; 502 for responses).

/** Parser settings: the frontend's limits, plus what to do with obs-fold (default reject). */
export interface ParserLimits extends Omit<HttpLimits, 'obsFold'> {
  readonly obsFold?: 'reject' | 'unfold';
}

/** Consecutive interim (1xx) responses relayed before the server's answer counts as garbage. */
export const MAX_INTERIM_RESPONSES = 32;

// Module-local aliases: the hot loops read these exactly as before the grammar moved out.
const TCHAR = g.TCHAR,
  FIELD = g.FIELD,
  TARGET = g.TARGET;
const eqLower = g.eqLower,
  classify = g.classify,
  tokens = g.tokens,
  validAuthority = g.validAuthority;
const {
  H_OTHER,
  H_HOST,
  H_CONTENT_LENGTH,
  H_TRANSFER_ENCODING,
  H_CONNECTION,
  H_KEEP_ALIVE,
  H_PROXY_CONNECTION,
  H_TE,
  H_UPGRADE,
  H_XFF,
  H_XFP,
  H_COOKIE,
  H_FORWARDED,
} = g;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const SLASH = 47;
const STAR = 42;

/** The tables of a head that has not parsed anything yet. */
const NO_LINES = new Int32Array(0);
const NO_DROPS = new Uint8Array(0);
/**
 * Shared store for head tables (tables()), about four HTTP sessions' worth: a slab lives while
 * any head cut from it does, so this bounds what one long-lived connection can pin.
 */
const TABLE_SLAB_BYTES = 16384;
let tableSlab = new ArrayBuffer(TABLE_SLAB_BYTES);
let tableSlabUsed = 0;

export class HttpHead {
  // --- request line / status line
  method = '';
  /** Offsets of the request-target in the parsed buffer (`target` reads them). */
  targetStart = 0;
  targetEnd = 0;
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
  /** The last transfer coding is chunked: the body is chunked. */
  chunked = false;
  /**
   * Transfer-Encoding present (responses may list codings: `gzip, chunked`; when chunked is
   * not last the body runs to the close). Requests accept exactly `chunked` only.
   */
  transferCoded = false;
  /**
   * A response had Content-Length next to Transfer-Encoding: the Content-Length lines are
   * dropped, chunked frames it, and the connection is not reused (RFC 9112 §6.1, §6.3 ¶3).
   */
  framingConflict = false;
  /** `chunked` appeared among the codings (it may be applied once). */
  private sawChunked = false;
  // --- connection management
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  hasUpgrade = false;
  hostCount = 0;
  /** Start/end offsets of the first Host value (requests). */
  hostStart = 0;
  hostEnd = 0;
  /** X-Forwarded-For values already present (joined with ", "), null when absent. */
  xff: string | null = null;
  /** Forwarded (RFC 7239) values already present (joined with ", "), null when absent. */
  forwarded: string | null = null;
  /** Cookie header values, joined with "; ", null when absent. */
  cookie: string | null = null;
  // --- header lines: offsets, and which ones to drop when forwarding
  count = 0;
  // Made on the first parse (tables()): a connection that never sends a request (a browser's
  // preconnect, an idle client) or never gets a response does not pay for them.
  lineStart: Int32Array = NO_LINES;
  nameEnd: Int32Array = NO_LINES;
  lineEnd: Int32Array = NO_LINES;
  drop: Uint8Array = NO_DROPS;
  dropCount = 0;
  /**
   * The line index of the head's only Connection field when its value is exactly
   * `keep-alive`, else -1. A proxy keeping the connection may pass that line on as its own
   * control option (RFC 9110 §7.6.1: remove Connection "or replace it with the intermediary's
   * own"), which saves rewriting most responses.
   */
  soleKeepAliveLine = -1;
  private connectionLines = 0;
  /** Extra hop-by-hop names listed in Connection, lowercased; null when none. */
  private connectionOptions: string[] | null = null;
  /** Why the last parse failed (for logs). */
  error = '';
  /**
   * Interim (1xx) response heads parsed since the last final one (responses). The session
   * should zero it when an exchange starts; it is also zeroed by every final status.
   */
  interim = 0;
  private readonly unfold: boolean;
  /** The buffer of the last parse (for `target`). */
  private parsed: Buffer | null = null;

  constructor(readonly limits: ParserLimits) {
    this.unfold = limits.obsFold === 'unfold';
  }

  /**
   * One region for the four tables, cut from a shared store: a head is made per connection (two
   * per HTTP session), and an ArrayBuffer of its own would be a zeroed allocation the GC sweeps
   * one by one (docs/performance.md). Regions are never reused, so they start zeroed.
   */
  private tables(): void {
    const n = this.limits.maxHeaders + 1;
    const bytes = (n * 13 + 7) & ~7;
    let store: ArrayBuffer;
    let at = 0;
    if (bytes > TABLE_SLAB_BYTES / 4) {
      store = new ArrayBuffer(bytes);
    } else {
      if (tableSlabUsed + bytes > TABLE_SLAB_BYTES) {
        tableSlab = new ArrayBuffer(TABLE_SLAB_BYTES);
        tableSlabUsed = 0;
      }
      store = tableSlab;
      at = tableSlabUsed;
      tableSlabUsed += bytes;
    }
    this.lineStart = new Int32Array(store, at, n);
    this.nameEnd = new Int32Array(store, at + n * 4, n);
    this.lineEnd = new Int32Array(store, at + n * 8, n);
    this.drop = new Uint8Array(store, at + n * 12, n);
  }

  private reset(buf: Buffer): void {
    if (this.drop === NO_DROPS) this.tables();
    this.parsed = buf;
    this.targetEnd = 0;
    this.startLineEnd = 0;
    this.contentLength = -1;
    this.chunked = false;
    this.transferCoded = false;
    this.framingConflict = false;
    this.sawChunked = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.connectionUpgrade = false;
    this.hasUpgrade = false;
    this.hostCount = 0;
    this.xff = null;
    this.forwarded = null;
    this.cookie = null;
    this.count = 0;
    this.dropCount = 0;
    this.connectionOptions = null;
    this.soleKeepAliveLine = -1;
    this.connectionLines = 0;
    this.error = '';
    this.status = 0;
  }

  private fail(status: number, why: string): number {
    this.error = why;
    return status;
  }

  /**
   * The request-target as a string, made on demand (most requests never need it as one).
   * Valid while the parsed buffer is: read it in the same read callback.
   */
  get target(): string {
    return this.targetEnd === 0 ? '' : latin1(this.parsed!, this.targetStart, this.targetEnd);
  }

  /**
   * Whether it is worth parsing again after `chunk` was appended to a head that was
   * incomplete (`total` bytes now): only when a line may have ended or a size limit is passed.
   * A head trickled in without line ends then costs one native byte search per read instead
   * of a full re-parse (which made a 32 KiB head sent a byte at a time quadratic).
   */
  worthReparsing(chunk: Buffer, total: number): boolean {
    if (chunk.indexOf(LF) !== -1 || total > this.limits.maxHeaderBytes) return true;
    return this.startLineEnd === 0 && total > this.limits.maxRequestLine + 1;
  }

  /**
   * Parse a request head from buf[start..end). Returns PARSE_INCOMPLETE, PARSE_OK or an error
   * status. Offsets recorded are absolute positions in `buf`.
   */
  parseRequest(buf: Buffer, start: number, end: number): number {
    this.reset(buf);
    const limits = this.limits;
    // Request line: method SP request-target SP HTTP-version CRLF
    // maxRequestLine counts the line without its CRLF: up to that many bytes plus a CR may
    // wait for the LF.
    const lineEnd = buf.indexOf(LF, start);
    if (lineEnd === -1 || lineEnd >= end) {
      if (end - start > limits.maxRequestLine + 1) return this.fail(414, 'request line too long');
      return PARSE_INCOMPLETE;
    }
    if (lineEnd - 1 - start > limits.maxRequestLine) return this.fail(414, 'request line too long');
    // lineEnd === start: never look at the byte before `start` (a previous pipelined message).
    if (lineEnd === start || buf[lineEnd - 1] !== CR) return this.fail(400, 'bad request line (bare LF)');
    let p = start;
    while (p < lineEnd && TCHAR[buf[p]!] === 1) p++;
    if (p === start || buf[p] !== SP) return this.fail(400, 'bad method');
    this.method = methodName(buf, start, p);
    const targetStart = ++p;
    while (p < lineEnd && TARGET[buf[p]!] === 1) p++;
    if (p === targetStart || buf[p] !== SP) return this.fail(400, 'bad request target');
    const targetEnd = p;
    this.targetStart = targetStart;
    this.targetEnd = targetEnd;
    p++;
    const v = this.parseVersion(buf, p, lineEnd - 1);
    if (v !== PARSE_OK) return v;
    this.startLineEnd = lineEnd + 1;
    const r = this.parseFields(buf, lineEnd + 1, start, end, 400);
    if (r !== PARSE_OK) return r;
    // RFC 9112 §3.2: a 1.1 request without exactly one Host is a 400.
    if (this.hostCount > 1) return this.fail(400, 'more than one Host');
    if (this.minor === 1 && this.hostCount === 0) return this.fail(400, 'missing Host');
    if (this.hostCount === 1 && !validAuthority(buf, this.hostStart, this.hostEnd, true)) return this.fail(400, 'bad Host');
    // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
    if (this.chunked && this.minor === 0) return this.fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
    // A gateway has no tunnel to offer; 501, not 405, which would owe an Allow list (RFC 9110 §15.5.6).
    if (this.method === 'CONNECT') return this.fail(501, 'CONNECT is not supported');
    // The common case costs one byte compare; other forms are checked in full.
    return buf[targetStart] === SLASH ? PARSE_OK : this.checkTarget(buf, targetStart, targetEnd);
  }

  /**
   * A request-target that is not origin-form (RFC 9112 §3.2): `*` only with OPTIONS; absolute-form
   * only as http(s)://authority with that authority equal to the Host value (RFC 9112 §3.2.2 has
   * a server use the target's authority over Host: when they differ, two hops could route one
   * request two ways, so it is refused, as HAProxy does). Anything else (authority-form outside
   * CONNECT, other schemes, relative references) is a 400.
   */
  private checkTarget(buf: Buffer, start: number, end: number): number {
    if (buf[start] === STAR) {
      return end - start === 1 && this.method === 'OPTIONS' ? PARSE_OK : this.fail(400, 'asterisk-form is only for OPTIONS');
    }
    let p = start;
    if (end - start > 7 && eqLower(buf, start, HTTP)) {
      p += 4;
      if (buf[p] === 115 || buf[p] === 83) p++; // https
      if (buf[p] === COLON && buf[p + 1] === SLASH && buf[p + 2] === SLASH) p += 3;
      else p = -1;
    } else p = -1;
    if (p === -1) return this.fail(400, 'request-target must be origin-form, absolute http(s) or OPTIONS *');
    const authStart = p;
    while (p < end && buf[p] !== SLASH && buf[p] !== 63 /* ? */) p++;
    if (!validAuthority(buf, authStart, p, false)) return this.fail(400, 'bad authority in absolute-form');
    const n = p - authStart;
    if (this.hostCount === 1 && (this.hostEnd - this.hostStart !== n || !g.sameIgnoringCase(buf, authStart, this.hostStart, n))) {
      return this.fail(400, 'absolute-form authority differs from Host');
    }
    return PARSE_OK;
  }

  /** Parse a response head (status line + fields); errors are 502 (never forwarded). */
  parseResponse(buf: Buffer, start: number, end: number): number {
    this.reset(buf);
    const lineEnd = buf.indexOf(LF, start);
    if (lineEnd === -1 || lineEnd >= end) {
      if (end - start > this.limits.maxHeaderBytes) return this.fail(502, 'response head too large');
      return PARSE_INCOMPLETE;
    }
    if (lineEnd === start || buf[lineEnd - 1] !== CR) return this.fail(502, 'bare LF in status line');
    // HTTP-version SP 3DIGIT SP [reason] CRLF
    // The SP before an empty reason is often missing in the wild: accept "HTTP/1.1 200\r\n".
    if (lineEnd - start < 13 || buf[start + 8] !== SP || (buf[start + 12] !== SP && start + 12 !== lineEnd - 1)) {
      return this.fail(502, 'bad status line');
    }
    const v = this.parseVersion(buf, start, start + 8);
    if (v !== PARSE_OK) return this.fail(502, 'bad response version');
    const d0 = buf[start + 9]! - 48,
      d1 = buf[start + 10]! - 48,
      d2 = buf[start + 11]! - 48;
    if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return this.fail(502, 'bad status code');
    this.status = d0 * 100 + d1 * 10 + d2;
    for (let i = start + 13; i < lineEnd - 1; i++) if (FIELD[buf[i]!] !== 1) return this.fail(502, 'bad reason phrase');
    this.startLineEnd = lineEnd + 1;
    const r = this.parseFields(buf, lineEnd + 1, start, end, 502);
    if (r !== PARSE_OK) return r;
    if (this.transferCoded && this.minor === 0) return this.fail(502, 'Transfer-Encoding in an HTTP/1.0 response');
    if (this.status >= 200 || this.status === 101) this.interim = 0;
    // A server may send a few 1xx (100 Continue, 103 Early Hints); an endless run is a flood.
    else if (++this.interim > MAX_INTERIM_RESPONSES) return this.fail(502, 'too many interim (1xx) responses');
    return PARSE_OK;
  }

  private parseVersion(buf: Buffer, p: number, end: number): number {
    // "HTTP/" DIGIT "." DIGIT
    if (end - p !== 8 || buf[p] !== 72 || buf[p + 1] !== 84 || buf[p + 2] !== 84 || buf[p + 3] !== 80 || buf[p + 4] !== 47 || buf[p + 6] !== 46) {
      return this.fail(400, 'bad HTTP version');
    }
    const major = buf[p + 5]! - 48,
      minor = buf[p + 7]! - 48;
    if (major < 0 || major > 9 || minor < 0 || minor > 9) return this.fail(400, 'bad HTTP version');
    if (major !== 1 || minor > 1) return this.fail(505, 'HTTP version not supported');
    this.minor = minor;
    return PARSE_OK;
  }

  /**
   * The field lines from `p` up to and including the blank line that ends the head, which sets
   * headEnd. Nothing at or past start + maxHeaderBytes is read: a head not complete by then is
   * too large (431, or 502 for a response), one not complete by `end` is PARSE_INCOMPLETE.
   * Errors are reported as soon as a line shows one, complete head or not.
   */
  private parseFields(buf: Buffer, p: number, start: number, end: number, errorStatus: number): number {
    const maxEnd = start + this.limits.maxHeaderBytes;
    const stop = end < maxEnd ? end : maxEnd;
    const max = this.limits.maxHeaders;
    // Every scan is bounded by `stop`: an unbounded `while (T[buf[p]])` keeps V8's
    // out-of-bounds path in the loop and runs ~10x slower per byte (measured on Node 20).
    for (;;) {
      if (p + 2 > stop) return this.truncated(end, maxEnd, errorStatus);
      const c0 = buf[p]!;
      if (c0 === CR) {
        if (buf[p + 1] !== LF) return this.fail(errorStatus, 'bare CR in header section');
        this.headEnd = p + 2;
        break;
      }
      if (c0 === LF) return this.fail(errorStatus, 'bare LF in header section');
      if (this.count === max) return this.fail(errorStatus === 400 ? 431 : 502, 'too many header fields');
      // Continuation lines are consumed with their field below: only a first field line can
      // start with whitespace here, and that is never a fold (RFC 9112 §2.2).
      if (c0 === SP || c0 === HTAB) return this.fail(errorStatus, 'whitespace before the first field line');
      const nameStart = p;
      while (p < stop && TCHAR[buf[p]!] === 1) p++;
      if (p === stop) return this.truncated(end, maxEnd, errorStatus);
      if (p === nameStart || buf[p] !== COLON) return this.fail(errorStatus, 'bad header name');
      const nameEnd = p;
      p++;
      while (p < stop && (buf[p] === SP || buf[p] === HTAB)) p++;
      const valueStart = p;
      for (;;) {
        while (p < stop && FIELD[buf[p]!] === 1) p++;
        // CR LF and the byte after (a fold starts with SP/HTAB; a complete head has one).
        if (p + 2 >= stop) {
          if (p < stop && buf[p] !== CR) return this.fail(errorStatus, 'bad header value');
          return this.truncated(end, maxEnd, errorStatus);
        }
        if (buf[p] !== CR || buf[p + 1] !== LF) return this.fail(errorStatus, 'bad header value');
        const next = buf[p + 2];
        if (next !== SP && next !== HTAB) break;
        // obs-fold (RFC 9112 §5.2): reject, or replace the CRLF by spaces in place (same length,
        // so every offset stays valid and what is forwarded is the unfolded value).
        if (!this.unfold) return this.fail(errorStatus, 'obsolete line folding');
        buf[p] = SP;
        buf[p + 1] = SP;
        p += 2;
      }
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
    if (this.transferCoded && this.contentLength !== -1) {
      if (errorStatus === 400) return this.fail(400, 'both Transfer-Encoding and Content-Length');
      // A response: Transfer-Encoding overrides; the Content-Length lines must go before it is
      // forwarded (RFC 9112 §6.3 ¶3) and the connection closes after it (§6.1).
      for (let i = 0; i < this.count; i++) {
        if (classify(buf, this.lineStart[i]!, this.nameEnd[i]!) === H_CONTENT_LENGTH) this.markDrop(i);
      }
      this.contentLength = -1;
      this.framingConflict = true;
    }
    if (this.connectionOptions !== null) this.dropConnectionOptions(buf);
    return PARSE_OK;
  }

  /** The head did not end before `stop`: incomplete, or too large when the limit cut it. */
  private truncated(end: number, maxEnd: number, errorStatus: number): number {
    if (end <= maxEnd) return PARSE_INCOMPLETE;
    return errorStatus === 400 ? this.fail(431, 'request head too large') : this.fail(502, 'response head too large');
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
        if (errorStatus !== 400) return this.responseCodings(buf, vs, ve);
        // Requests: only `chunked`, once: any other coding or a list cannot be framed
        // unambiguously here (a server would answer 501 or 400, RFC 9112 §6.1).
        if (this.chunked || ve - vs !== 7 || !eqLower(buf, vs, CHUNKED)) return this.fail(400, 'Transfer-Encoding other than chunked');
        this.chunked = true;
        this.transferCoded = true;
        return PARSE_OK;
      case H_CONNECTION: {
        this.markDrop(i);
        // The two values nearly every peer sends, without splitting a string.
        if (ve - vs === 10 && eqLower(buf, vs, KEEP_ALIVE)) {
          this.connectionKeepAlive = true;
          this.soleKeepAliveLine = this.connectionLines++ === 0 ? i : -1;
          return PARSE_OK;
        }
        this.soleKeepAliveLine = -1;
        this.connectionLines++;
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
      case H_XFP:
        // Replaced by ours: a client must not tell the server it came over https.
        this.markDrop(i);
        return PARSE_OK;
      case H_XFF: {
        const v = latin1(buf, vs, ve);
        this.xff = this.xff === null ? v : `${this.xff}, ${v}`;
        this.markDrop(i);
        return PARSE_OK;
      }
      case H_FORWARDED: {
        // Rebuilt by the proxy (kept and appended to only from trusted_proxies).
        const v = latin1(buf, vs, ve);
        this.forwarded = this.forwarded === null ? v : `${this.forwarded}, ${v}`;
        this.markDrop(i);
        return PARSE_OK;
      }
      case H_COOKIE: {
        const v = latin1(buf, vs, ve);
        this.cookie = this.cookie === null ? v : `${this.cookie}; ${v}`;
        return PARSE_OK;
      }
      default:
        return PARSE_OK;
    }
  }

  /**
   * A response's Transfer-Encoding line: codings in order, over every such line. chunked may
   * appear once; it frames the body only when it is the last coding (RFC 9112 §6.3 ¶4).
   */
  private responseCodings(buf: Buffer, vs: number, ve: number): number {
    this.transferCoded = true;
    if (ve - vs === 7 && eqLower(buf, vs, CHUNKED)) {
      if (this.sawChunked) return this.fail(502, 'chunked applied more than once');
      this.sawChunked = true;
      this.chunked = true;
      return PARSE_OK;
    }
    const codings = tokens(latin1(buf, vs, ve));
    if (codings.length === 0) return this.fail(502, 'empty Transfer-Encoding');
    for (const c of codings) {
      if (!CODING.test(c)) return this.fail(502, 'bad Transfer-Encoding');
      if (c === 'chunked') {
        if (this.sawChunked) return this.fail(502, 'chunked applied more than once');
        this.sawChunked = true;
        this.chunked = true;
      } else {
        this.chunked = false;
      }
    }
    return PARSE_OK;
  }

  /** Leave line `i` out when forwarding (hop-by-hop fields; header rules, src/routing). */
  markDrop(i: number): void {
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

  /** Forward line `i` after all (it was marked hop-by-hop). */
  keepLine(i: number): void {
    if (this.drop[i] === 1) {
      this.drop[i] = 0;
      this.dropCount--;
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

/** A transfer-coding name (a token, RFC 9110 §5.6.2), lowercased by tokens(). */
const CODING = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const HTTP = Buffer.from('http', 'latin1');
const CHUNKED = Buffer.from('chunked', 'latin1');
const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1');
const CLOSE = Buffer.from('close', 'latin1');

/** The method as a string: the common ones without making a new string each time. */
function methodName(buf: Buffer, start: number, end: number): string {
  const n = end - start;
  const c = buf[start];
  if (n === 3 && c === 71 && buf[start + 1] === 69 && buf[start + 2] === 84) return 'GET';
  if (n === 4 && buf[start + 1] === 79 && buf[start + 2] === 83 && buf[start + 3] === 84 && c === 80) return 'POST';
  if (n === 4 && c === 72 && buf[start + 1] === 69 && buf[start + 2] === 65 && buf[start + 3] === 68) return 'HEAD';
  if (n === 3 && c === 80 && buf[start + 1] === 85 && buf[start + 2] === 84) return 'PUT';
  return latin1(buf, start, end);
}

import { TCHAR as GRAMMAR_TCHAR } from './http-grammar.js';

// Chunked transfer-coding scanner (RFC 9112 §7.1). The proxy forwards chunked bodies byte for
// byte; this only finds where the message ends and rejects what cannot be framed: a size that
// is not hex (or too long), anything but BWS then `;` or CR after the size, a size line past
// MAX_LINE_BYTES (endless extensions), a missing CRLF after the data, control characters in
// extensions, a trailer line that is not `field-name ":" field-value`, a trailer naming a
// framing or routing field, or trailers past the size limit. It keeps its state across reads.
// Forwarding what a stricter server would read differently is how bodies smuggle requests, so
// the grammar here is RFC 9112 §7.1 (chunk-ext contents are only checked for CTLs).

const S_SIZE = 0; // reading hex digits
const S_EXT = 1; // after the size: extensions up to CR
const S_SIZE_LF = 2; // expecting LF after the size line
const S_DATA = 3; // `remaining` bytes of data
const S_DATA_CR = 4; // CR after data
const S_DATA_LF = 5; // LF after data
const S_TRAILER_START = 6; // start of a trailer line (or the final CRLF)
const S_TRAILER = 7; // inside a trailer line
const S_TRAILER_LF = 8; // LF ending a trailer line
const S_LAST_LF = 9; // LF of the final empty line
const S_DONE = 10;
const S_SIZE_WS = 11; // BWS after the size: only more BWS, `;` or CR may follow
const S_TRAILER_VALUE = 12; // after the colon of a trailer field

/** Longest chunk-size accepted: 12 hex digits (256 TiB) keeps arithmetic exact. */
const MAX_SIZE_DIGITS = 12;
/** A chunk-size line (size, BWS, extensions; CRLF not counted). Node's llhttp and HAProxy
 * bound it by their buffers; real extensions are a few bytes. */
export const MAX_LINE_BYTES = 4096;
export const MAX_TRAILER_BYTES = 16384;

export const CHUNKED_ERROR = -1;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[65 + c] = 10 + c;
  HEX[97 + c] = 10 + c;
}

const TCHAR = GRAMMAR_TCHAR;

/**
 * Fields that may not come as trailers (RFC 9110 §6.5.1: framing and routing are decided by
 * the header section). A server that merges trailers into its headers would otherwise take a
 * Content-Length, Transfer-Encoding or Host the proxy never checked.
 */
const FORBIDDEN_TRAILERS = ['content-length', 'transfer-encoding', 'host'].map((n) => Buffer.from(n, 'latin1'));
const LONGEST_FORBIDDEN = 17;

export class ChunkedScanner {
  private state = S_SIZE;
  private size = 0;
  private digits = 0;
  private remaining = 0;
  private trailerBytes = 0;
  /** Bytes of the current chunk-size line after the digits. */
  private lineBytes = 0;
  /** The current trailer's name, lowercased, while it is short enough to be a forbidden one. */
  private readonly name = Buffer.alloc(LONGEST_FORBIDDEN);
  private nameLength = 0;
  error = '';

  reset(): void {
    this.state = S_SIZE;
    this.size = 0;
    this.digits = 0;
    this.remaining = 0;
    this.trailerBytes = 0;
    this.lineBytes = 0;
    this.nameLength = 0;
    this.error = '';
  }

  get done(): boolean {
    return this.state === S_DONE;
  }

  /**
   * Scan buf[start..end). Returns the offset just past the end of the message when it ends in
   * this range, `end` when more is needed, or CHUNKED_ERROR.
   */
  scan(buf: Buffer, start: number, end: number): number {
    let p = start;
    while (p < end) {
      switch (this.state) {
        case S_DATA: {
          const n = Math.min(this.remaining, end - p);
          this.remaining -= n;
          p += n;
          if (this.remaining === 0) this.state = S_DATA_CR;
          continue;
        }
        case S_SIZE: {
          const c = buf[p]!;
          const h = HEX[c]!;
          if (h >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.fail('chunk size too large');
            this.size = this.size * 16 + h;
          } else if (this.digits === 0) {
            return this.fail('bad chunk size');
          } else if (c === 59 /* ; */) {
            this.state = S_EXT;
            this.lineBytes = 1;
          } else if (c === 32 || c === 9) {
            this.state = S_SIZE_WS;
            this.lineBytes = 1;
          } else if (c === 13) {
            this.state = S_SIZE_LF;
          } else {
            return this.fail('bad chunk size');
          }
          p++;
          continue;
        }
        case S_SIZE_WS: {
          const c = buf[p]!;
          if (c === 59) this.state = S_EXT;
          else if (c === 13) this.state = S_SIZE_LF;
          else if (c !== 32 && c !== 9) return this.fail('bad chunk size');
          if (++this.lineBytes + this.digits > MAX_LINE_BYTES) return this.fail('chunk size line too long');
          p++;
          continue;
        }
        case S_EXT: {
          const c = buf[p]!;
          if (c === 13) this.state = S_SIZE_LF;
          else if ((c < 32 && c !== 9) || c === 127) return this.fail('bad chunk extension');
          else if (++this.lineBytes + this.digits > MAX_LINE_BYTES) return this.fail('chunk size line too long');
          p++;
          continue;
        }
        case S_SIZE_LF:
          if (buf[p] !== 10) return this.fail('bad chunk size line');
          p++;
          if (this.size === 0) {
            this.state = S_TRAILER_START;
          } else {
            this.remaining = this.size;
            this.state = S_DATA;
          }
          this.size = 0;
          this.digits = 0;
          this.lineBytes = 0;
          continue;
        case S_DATA_CR:
          if (buf[p] !== 13) return this.fail('missing CRLF after chunk data');
          this.state = S_DATA_LF;
          p++;
          continue;
        case S_DATA_LF:
          if (buf[p] !== 10) return this.fail('missing CRLF after chunk data');
          this.state = S_SIZE;
          p++;
          continue;
        case S_TRAILER_START:
          if (buf[p] === 13) {
            this.state = S_LAST_LF;
            p++;
            continue;
          }
          if (TCHAR[buf[p]!] !== 1) return this.fail('bad trailer');
          this.state = S_TRAILER;
          this.nameLength = 0;
          continue;
        case S_TRAILER: {
          // field-name: tchar up to the colon (no whitespace before it, RFC 9112 §5.1)
          let c = buf[p]!;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return this.fail('trailers too large');
          if (c === 58) {
            if (this.forbiddenName()) return this.fail('framing or routing field in trailers');
            this.state = S_TRAILER_VALUE;
          } else if (TCHAR[c] !== 1) {
            return this.fail('bad trailer');
          } else if (this.nameLength < LONGEST_FORBIDDEN) {
            if (c >= 65 && c <= 90) c += 32;
            this.name[this.nameLength++] = c;
          } else {
            this.nameLength = LONGEST_FORBIDDEN + 1; // longer than any forbidden name
          }
          p++;
          continue;
        }
        case S_TRAILER_VALUE: {
          const c = buf[p]!;
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return this.fail('trailers too large');
          if (c === 13) this.state = S_TRAILER_LF;
          else if ((c < 32 && c !== 9) || c === 127) return this.fail('bad trailer');
          p++;
          continue;
        }
        case S_TRAILER_LF:
          if (buf[p] !== 10) return this.fail('bad trailer line');
          this.state = S_TRAILER_START;
          p++;
          continue;
        case S_LAST_LF:
          if (buf[p] !== 10) return this.fail('bad last chunk');
          this.state = S_DONE;
          return p + 1;
        default:
          return p;
      }
    }
    return end;
  }

  private forbiddenName(): boolean {
    const n = this.nameLength;
    for (const f of FORBIDDEN_TRAILERS) if (f.length === n && this.name.compare(f, 0, n, 0, n) === 0) return true;
    return false;
  }

  private fail(why: string): number {
    this.error = why;
    return CHUNKED_ERROR;
  }
}

import type { HttpHead } from '../balancer/http-head.js';
import { HEADER_NAME, PROXY_FIELDS } from '../config/header-fields.js';

// Header changes as a list of names to drop from the head as it came and lines to add, which
// is exactly what the head rewrite does anyway (hop-by-hop lines dropped, forwarding lines
// added): a rule costs no extra pass over the bytes. Used by header rules (compiled once, see
// rules.ts) and by user code (src/usercode), one HeaderEdits per request that asks for one.

/** Drop every line of `head` whose name is one of `lowerNames` (lowercase Buffers). */
export function dropNamed(head: HttpHead, buf: Buffer, lowerNames: readonly Buffer[]): void {
  for (let i = 0; i < head.count; i++) {
    const start = head.lineStart[i]!;
    const n = head.nameEnd[i]! - start;
    for (let k = 0; k < lowerNames.length; k++) {
      const name = lowerNames[k]!;
      if (name.length === n && sameLower(buf, start, name)) {
        head.markDrop(i);
        break;
      }
    }
  }
}

function sameLower(buf: Buffer, start: number, lower: Buffer): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = buf[start + i]!;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower[i]) return false;
  }
  return true;
}

/** Field values: no CR, LF or NUL (RFC 9110 §5.5), so that no value can start a new line. */
const BAD_VALUE = /[\0\r\n]/;

/** Checked at the boundary: user code may pass anything. */
export function checkHeader(name: string, value: string | null): void {
  if (!HEADER_NAME.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
  if (PROXY_FIELDS.has(name.toLowerCase())) throw new TypeError(`header ${name} is managed by the proxy (framing, connection)`);
  if (value !== null && BAD_VALUE.test(value)) throw new TypeError(`invalid value for header ${name}: CR, LF and NUL are not allowed`);
}

/** Changes to one message's headers, made per request (user code). */
export class HeaderEdits {
  readonly remove: Buffer[] = [];
  lines = '';

  /** Replace every line named `name` with one line. */
  set(name: string, value: string): void {
    checkHeader(name, value);
    this.drop(name);
    this.lines += `${name}: ${value.trim()}\r\n`;
  }

  /** One more line, the existing ones kept. */
  add(name: string, value: string): void {
    checkHeader(name, value);
    this.lines += `${name}: ${value.trim()}\r\n`;
  }

  /** Remove every line named `name` (also lines added by an earlier set/add of this object). */
  delete(name: string): void {
    checkHeader(name, null);
    this.drop(name);
  }

  private drop(name: string): void {
    const lower = name.toLowerCase();
    if (this.lines !== '') {
      this.lines = this.lines
        .split('\r\n')
        .filter((l) => l !== '' && l.slice(0, l.indexOf(':')).toLowerCase() !== lower)
        .map((l) => `${l}\r\n`)
        .join('');
    }
    if (!this.remove.some((b) => b.toString('latin1') === lower)) this.remove.push(Buffer.from(lower, 'latin1'));
  }

  /** Apply to a parsed head: drops marked; returns the lines to add. */
  applyTo(head: HttpHead, buf: Buffer): string {
    if (this.remove.length > 0) dropNamed(head, buf, this.remove);
    return this.lines;
  }
}

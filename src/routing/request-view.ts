import type { Backend } from '../model/backend.js';
import type { HttpHead } from '../balancer/http-head.js';
import { latin1 } from '../balancer/latin1.js';
import { parseAddress, type ParsedAddress } from './cidr.js';
import { methodBit } from './route.js';
import type { CompiledRoute } from './route.js';
import type { ExchangePlan } from './rules.js';
import { checkHeader, HeaderEdits } from './header-edits.js';
import type { RequestFacts } from './request-facts.js';

// The request as routing (and user code, src/usercode) sees it: one object per client
// connection, reset for each request, reading the parsed head in place. Nothing is made until
// something asks: a table of routes on paths makes the path string and nothing else; a
// header condition compares bytes and makes the value only when it has to. Strings read are
// cached for the rest of the request.
//
// The head's bytes are only valid while the request is being decided (the read buffer is
// reused, read-buffer.ts): `capture()` keeps the values response rules need (host, path,
// query) before the decision returns; headers are readable during the request phase only.

const SLASH = 47;
const QUESTION = 63;

export class RequestView implements RequestFacts {
  readonly clientIp: string;
  private address: ParsedAddress | null | undefined = undefined;
  // --- the current request (valid during the decision)
  head: HttpHead | null = null;
  buf: Buffer = EMPTY;
  method = '';
  /** route.ts methodBit(method): routes test common methods with one AND. */
  methodBit = 0;
  /** One-entry caches: the last header / query name looked up from the start, and what was found. */
  private lastHeaderName: Buffer | null = null;
  private lastHeaderIndex = -1;
  private lastQueryName: Buffer | null = null;
  private lastQueryFound = false;
  private pathValue: string | null = null;
  private matchPathValue: string | null = null;
  private queryValue: string | null = null;
  private hostValue: string | null = null;
  /**
   * Byte positions in `buf`, found on first use (-1 until then): the path (without query), the
   * host name (without port) and the whole Host value. Routes compare bytes there, so that
   * matching makes no string unless a condition needs one (a regex, a header value).
   */
  pathStart = -1;
  pathEnd = -1;
  hostStart = -1;
  hostNameEnd = -1;
  hostEnd = -1;
  /** The path has `%` or `/.`: routes match the normalised string (matchPath), not the bytes. */
  pathNeedsNormalizing = false;
  // --- the decision
  /** The route that matched; null: the default backend (or a user router's choice). */
  route: CompiledRoute | null = null;
  /** The backend chosen; null when the request is answered here (`answer`). */
  backend: Backend | null = null;
  /** Header and path rules for this exchange; null: forward the head as it came. */
  plan: ExchangePlan | null = null;
  /** A complete response to send instead of forwarding (user code builds it); null: none. */
  answer: Buffer | null = null;
  /** A user answer (respond): its body and extra header lines; null: none. */
  answerBody: string | null = null;
  answerLines = '';
  answerStatus = 0;
  /** Why the request was answered here, for the access log. */
  answerWhy = '';
  /** The request's id (sent by the client or generated); '' until asked for. */
  requestId = '';
  /** The id came with the request: forwarded as it is, no line added. */
  requestIdSent = false;
  /** Header changes asked for by user code for this request (src/usercode); null: none. */
  edits: HeaderEdits | null = null;
  responseEdits: HeaderEdits | null = null;
  /** What user hooks keep of the request for onResponse (src/usercode); null: nothing. */
  user: unknown = null;

  constructor(clientIp: string) {
    this.clientIp = clientIp;
  }

  /** Start on a new request whose head was parsed from `buf`. */
  begin(head: HttpHead, buf: Buffer): void {
    this.head = head;
    this.buf = buf;
    this.method = head.method;
    this.methodBit = methodBit(head.method);
    this.lastHeaderName = null;
    this.lastQueryName = null;
    this.pathValue = null;
    this.matchPathValue = null;
    this.queryValue = null;
    this.hostValue = null;
    this.pathStart = -1;
    this.hostStart = -1;
    this.route = null;
    this.backend = null;
    this.plan = null;
    this.answer = null;
    this.answerBody = null;
    this.answerLines = '';
    this.answerStatus = 0;
    this.answerWhy = '';
    this.requestId = '';
    this.requestIdSent = false;
    this.edits = null;
    this.responseEdits = null;
    this.user = null;
  }

  /** Values used after the decision (response rules, user hooks) made while the bytes are there. */
  capture(): void {
    // The getters cache what they read: read them now, while the bytes are there.
    this.pathValue = this.path;
    this.queryValue = this.query;
    this.hostValue = this.host;
    this.head = null;
    this.buf = EMPTY;
  }

  /** Find the path's bytes (pathStart..pathEnd) and whether it needs normalising. */
  locatePath(): void {
    if (this.pathStart !== -1) return;
    const head = this.head!;
    const buf = this.buf;
    let p = head.targetStart;
    const end = head.targetEnd;
    if (buf[p] !== SLASH && buf[p] !== 42 /* * */) {
      // absolute-form: http(s)://authority/path (the parser checked the shape)
      p = buf.indexOf(SLASH, p) + 2;
      while (p < end && buf[p] !== SLASH && buf[p] !== QUESTION) p++;
    }
    let q = p;
    let odd = false;
    while (q < end) {
      const c = buf[q]!;
      if (c === QUESTION) break;
      if (c === 37 /* % */ || (c === 46 /* . */ && buf[q - 1] === SLASH)) odd = true;
      q++;
    }
    this.pathStart = p;
    this.pathEnd = q;
    this.pathNeedsNormalizing = odd;
  }

  /** Find the Host value's bytes: hostStart..hostNameEnd the name, ..hostEnd with the port. */
  locateHost(): void {
    if (this.hostStart !== -1) return;
    const head = this.head!;
    if (head.hostCount === 0) {
      this.hostStart = this.hostNameEnd = this.hostEnd = 0;
      return;
    }
    const buf = this.buf;
    const s = head.hostStart;
    const e = head.hostEnd;
    let n = e;
    // host:port, [v6]:port — the port is what follows the last colon after any `]`.
    for (let i = e - 1; i >= s; i--) {
      const c = buf[i]!;
      if (c === 58 /* : */) {
        n = i;
        break;
      }
      if (c < 48 || c > 57) break;
    }
    this.hostStart = s;
    this.hostNameEnd = n;
    this.hostEnd = e;
  }

  /** The path as sent (no query), `/` for an absolute-form target without one. */
  get path(): string {
    if (this.pathValue !== null) return this.pathValue;
    this.locatePath();
    this.pathValue = this.pathEnd === this.pathStart ? '/' : latin1(this.buf, this.pathStart, this.pathEnd);
    return this.pathValue;
  }

  /**
   * The path routes match: the path as sent, normalised only when it could hide another path
   * (RFC 3986 §6.2.2): percent-encoded unreserved characters decoded (`/%61dmin` is `/admin`)
   * and dot segments removed (`/x/../admin` is `/admin`), so that a deny on /admin/ cannot be
   * walked around by spelling. Most paths have neither and cost nothing more.
   */
  get matchPath(): string {
    if (this.matchPathValue !== null) return this.matchPathValue;
    const path = this.path;
    this.matchPathValue = path.includes('%') || path.includes('/.') ? normalizePath(path) : path;
    return this.matchPathValue;
  }

  /** The query string without `?`; '' when there is none. */
  get query(): string {
    if (this.queryValue !== null) return this.queryValue;
    this.locatePath();
    const end = this.head!.targetEnd;
    this.queryValue = this.pathEnd >= end ? '' : latin1(this.buf, this.pathEnd + 1, end);
    return this.queryValue;
  }

  /** The Host value lowercased, without a port (`[::1]` keeps its brackets). */
  get host(): string {
    if (this.hostValue !== null) return this.hostValue;
    this.locateHost();
    this.hostValue = this.hostNameEnd === this.hostStart ? '' : latin1(this.buf, this.hostStart, this.hostNameEnd).toLowerCase();
    return this.hostValue;
  }

  /** The client address, parsed once per connection. */
  get clientAddress(): ParsedAddress | null {
    if (this.address === undefined) this.address = parseAddress(this.clientIp);
    return this.address;
  }

  /** Index of the first header line named `lower` (a lowercase Buffer) at or after `from`, or -1. */
  findHeader(lower: Buffer, from: number): number {
    if (from === 0) {
      if (lower === this.lastHeaderName) return this.lastHeaderIndex;
      this.lastHeaderName = lower;
      this.lastHeaderIndex = this.scanHeader(lower, 0);
      return this.lastHeaderIndex;
    }
    return this.scanHeader(lower, from);
  }

  private scanHeader(lower: Buffer, from: number): number {
    const head = this.head!;
    const buf = this.buf;
    const n = lower.length;
    for (let i = from; i < head.count; i++) {
      const start = head.lineStart[i]!;
      if (head.nameEnd[i]! - start === n && eqLowerAt(buf, start, lower, n)) return i;
    }
    return -1;
  }

  /** Header line `i`'s value equals `value` (bytes, case-sensitive, OWS trimmed): no string made. */
  lineValueIs(i: number, value: Buffer): boolean {
    const head = this.head!;
    const buf = this.buf;
    let s = head.nameEnd[i]! + 1;
    let e = head.lineEnd[i]! - 2;
    while (s < e && (buf[s] === 32 || buf[s] === 9)) s++;
    while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
    if (e - s !== value.length) return false;
    for (let k = 0; k < value.length; k++) if (buf[s + k] !== value[k]) return false;
    return true;
  }

  /**
   * Where the first query parameter named `name` (bytes) has its value: sets queryValueStart /
   * queryValueEnd and returns true, or false when absent. No string made.
   */
  findQueryParam(name: Buffer): boolean {
    if (name === this.lastQueryName) return this.lastQueryFound;
    this.lastQueryName = name;
    this.lastQueryFound = this.scanQuery(name);
    return this.lastQueryFound;
  }

  private scanQuery(name: Buffer): boolean {
    this.locatePath();
    const buf = this.buf;
    const end = this.head!.targetEnd;
    let p = this.pathEnd + 1;
    const n = name.length;
    while (p < end) {
      let amp = p;
      while (amp < end && buf[amp] !== 38 /* & */) amp++;
      let k = 0;
      while (k < n && p + k < amp && buf[p + k] === name[k]) k++;
      if (k === n && (p + n === amp || buf[p + n] === 61) /* = */) {
        this.queryValueStart = p + n === amp ? amp : p + n + 1;
        this.queryValueEnd = amp;
        return true;
      }
      p = amp + 1;
    }
    return false;
  }

  /** Set by findQueryParam. */
  queryValueStart = 0;
  queryValueEnd = 0;

  /** The value findQueryParam found equals `value` (percent-decoded when it needs it). */
  queryValueIs(value: string, bytes: Buffer): boolean {
    const buf = this.buf;
    const s = this.queryValueStart;
    const e = this.queryValueEnd;
    for (let k = s; k < e; k++) {
      const c = buf[k]!;
      if (c === 37 || c === 43) return decodeQueryValue(latin1(buf, s, e)) === value; // % or +
    }
    if (e - s !== bytes.length) return false;
    for (let k = 0; k < bytes.length; k++) if (buf[s + k] !== bytes[k]) return false;
    return true;
  }

  /** The value findQueryParam found, decoded. */
  queryValueString(): string {
    return decodeQueryValue(latin1(this.buf, this.queryValueStart, this.queryValueEnd));
  }

  /** The value of header line `i`, trimmed. */
  lineValue(i: number): string {
    const head = this.head!;
    const buf = this.buf;
    let s = head.nameEnd[i]! + 1;
    let e = head.lineEnd[i]! - 2;
    while (s < e && (buf[s] === 32 || buf[s] === 9)) s++;
    while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
    return latin1(buf, s, e);
  }

  /** The first value of a header (any case in `name`), or null. For user code and templates. */
  header(name: string): string | null {
    const i = this.findHeader(Buffer.from(name.toLowerCase(), 'latin1'), 0);
    return i === -1 ? null : this.lineValue(i);
  }

  /** Every header as [name, value] pairs in order, names lowercased (user code; copies). */
  headers(): [string, string][] {
    const head = this.head!;
    const out: [string, string][] = [];
    for (let i = 0; i < head.count; i++) out.push([latin1(this.buf, head.lineStart[i]!, head.nameEnd[i]!).toLowerCase(), this.lineValue(i)]);
    return out;
  }

  /** The first value of a query parameter (percent-decoded when it needs it), or null. */
  queryParam(name: string): string | null {
    const q = this.query;
    if (q === '') return null;
    let i = 0;
    while (i <= q.length) {
      let amp = q.indexOf('&', i);
      if (amp === -1) amp = q.length;
      const eq = q.indexOf('=', i);
      const keyEnd = eq !== -1 && eq < amp ? eq : amp;
      if (keyEnd - i === name.length && q.startsWith(name, i)) {
        return keyEnd === amp ? '' : decodeQueryValue(q.slice(keyEnd + 1, amp));
      }
      i = amp + 1;
    }
    return null;
  }

  /**
   * Answer the request here instead of forwarding it (user code: a router or an onRequest
   * hook). `headers` are checked like any header edit; the proxy adds framing and connection
   * fields. The session sends it when the decision is over.
   */
  respond(status: number, body = '', headers: Readonly<Record<string, string>> = {}): void {
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`status must be an integer from 200 to 599, got ${status}`);
    let lines = '';
    for (const [name, value] of Object.entries(headers)) {
      checkHeader(name, String(value));
      lines += `${name}: ${String(value).trim()}\r\n`;
    }
    this.answerStatus = status;
    this.answerBody = String(body);
    this.answerLines = lines;
    this.answerWhy = 'answered by user code';
    this.backend = null;
  }

  /** Header changes for the request (user code); applied with the header rules. */
  requestEdits(): HeaderEdits {
    return (this.edits ??= new HeaderEdits());
  }

  /** Header changes for the response (user code's onResponse); applied with the response rules. */
  responseHeaderEdits(): HeaderEdits {
    return (this.responseEdits ??= new HeaderEdits());
  }
}

const EMPTY = Buffer.alloc(0);

function eqLowerAt(buf: Buffer, start: number, lower: Buffer, n: number): boolean {
  for (let i = 0; i < n; i++) {
    let c = buf[start + i]!;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower[i]) return false;
  }
  return true;
}

function decodeQueryValue(v: string): string {
  if (!v.includes('%') && !v.includes('+')) return v;
  try {
    return decodeURIComponent(v.replace(/\+/g, ' '));
  } catch {
    return v;
  }
}

const UNRESERVED = /%(?:4[1-9A-Fa-f]|5[0-9Aa]|6[1-9A-Fa-f]|7[0-9Aa]|3[0-9]|2[DdEe]|5[Ff]|7[Ee])/g;

/** RFC 3986 §6.2.2.2 (unreserved characters decoded) and §5.2.4 (remove_dot_segments). */
export function normalizePath(path: string): string {
  const decoded = path.includes('%') ? path.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16))) : path;
  if (!decoded.includes('/.')) return decoded;
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '..') {
      if (out.length > 0) out.pop();
      if (i === segments.length - 1) out.push('');
    } else if (s === '.') {
      if (i === segments.length - 1) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}

/**
 * The response head as hooks see it (src/usercode onResponse): status and headers read in
 * place while the head is being forwarded, changes through the exchange's responseEdits.
 */
export class ResponseView {
  head: HttpHead | null = null;
  buf: Buffer = EMPTY;
  status = 0;

  begin(head: HttpHead, buf: Buffer): void {
    this.head = head;
    this.buf = buf;
    this.status = head.status;
  }

  /** The first value of a header (any case in `name`), or null. */
  header(name: string): string | null {
    const head = this.head!;
    const lower = name.toLowerCase();
    for (let i = 0; i < head.count; i++) {
      if (head.drop[i] === 1) continue;
      if (latin1(this.buf, head.lineStart[i]!, head.nameEnd[i]!).toLowerCase() === lower) return trimmedValue(this.buf, head, i);
    }
    return null;
  }

  /** Every header as [name, value] pairs in order (hop-by-hop ones excluded), names lowercased. */
  headers(): [string, string][] {
    const head = this.head!;
    const out: [string, string][] = [];
    for (let i = 0; i < head.count; i++) {
      if (head.drop[i] === 0) out.push([latin1(this.buf, head.lineStart[i]!, head.nameEnd[i]!).toLowerCase(), trimmedValue(this.buf, head, i)]);
    }
    return out;
  }
}

function trimmedValue(buf: Buffer, head: HttpHead, i: number): string {
  let s = head.nameEnd[i]! + 1;
  let e = head.lineEnd[i]! - 2;
  while (s < e && (buf[s] === 32 || buf[s] === 9)) s++;
  while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
  return latin1(buf, s, e);
}

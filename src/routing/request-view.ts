import type { Backend } from '../model/backend.js';
import type { HttpHead } from '../balancer/http-head.js';
import { latin1 } from '../balancer/latin1.js';
import { parseAddress, type ParsedAddress } from './cidr.js';
import type { CompiledRoute } from './route.js';
import type { ExchangePlan } from './rules.js';
import { HeaderEdits } from './header-edits.js';

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

export class RequestView {
  readonly clientIp: string;
  private address: ParsedAddress | null | undefined = undefined;
  // --- the current request (valid during the decision)
  head: HttpHead | null = null;
  buf: Buffer = EMPTY;
  method = '';
  private pathValue: string | null = null;
  private matchPathValue: string | null = null;
  private queryValue: string | null = null;
  private hostValue: string | null = null;
  private authorityValue: string | null = null;
  /** Where the path starts in the target (past scheme://authority for absolute-form). */
  private pathStart = 0;
  // --- the decision
  /** The route that matched; null: the default backend (or a user router's choice). */
  route: CompiledRoute | null = null;
  /** The backend chosen; null when the request is answered here (`answer`). */
  backend: Backend | null = null;
  /** Header and path rules for this exchange; null: forward the head as it came. */
  plan: ExchangePlan | null = null;
  /** A complete response to send instead of forwarding (redirect, deny, a user answer). */
  answer: Buffer | null = null;
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
    this.pathValue = null;
    this.matchPathValue = null;
    this.queryValue = null;
    this.hostValue = null;
    this.authorityValue = null;
    this.pathStart = -1;
    this.route = null;
    this.backend = null;
    this.plan = null;
    this.answer = null;
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
    this.path;
    this.query;
    this.host;
    this.head = null;
    this.buf = EMPTY;
  }

  private findPathStart(): number {
    if (this.pathStart !== -1) return this.pathStart;
    const head = this.head!;
    const buf = this.buf;
    let p = head.targetStart;
    const end = head.targetEnd;
    if (buf[p] !== SLASH && buf[p] !== 42 /* * */) {
      // absolute-form: http(s)://authority/path (the parser checked the shape)
      p = buf.indexOf(SLASH, p) + 2;
      while (p < end && buf[p] !== SLASH && buf[p] !== QUESTION) p++;
    }
    this.pathStart = p;
    return p;
  }

  /** The path as sent (no query), `/` for an absolute-form target without one. */
  get path(): string {
    if (this.pathValue !== null) return this.pathValue;
    const head = this.head!;
    const buf = this.buf;
    const start = this.findPathStart();
    const end = head.targetEnd;
    let q = start;
    while (q < end && buf[q] !== QUESTION) q++;
    this.pathValue = q === start ? '/' : latin1(buf, start, q);
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
    const head = this.head!;
    const buf = this.buf;
    const q = buf.indexOf(QUESTION, this.findPathStart());
    this.queryValue = q === -1 || q >= head.targetEnd ? '' : latin1(buf, q + 1, head.targetEnd);
    return this.queryValue;
  }

  /** The Host value lowercased, without a port (`[::1]` keeps its brackets). */
  get host(): string {
    if (this.hostValue !== null) return this.hostValue;
    const a = this.authority;
    let colon = a.lastIndexOf(':');
    if (colon !== -1 && a.indexOf(']', colon) !== -1) colon = -1;
    this.hostValue = colon === -1 ? a : a.slice(0, colon);
    return this.hostValue;
  }

  /** The Host value lowercased, with the port when one was sent. */
  get authority(): string {
    if (this.authorityValue !== null) return this.authorityValue;
    const head = this.head;
    this.authorityValue = head === null || head.hostCount === 0 ? '' : latin1(this.buf, head.hostStart, head.hostEnd).toLowerCase();
    return this.authorityValue;
  }

  /** The client address, parsed once per connection. */
  get clientAddress(): ParsedAddress | null {
    if (this.address === undefined) this.address = parseAddress(this.clientIp);
    return this.address;
  }

  /** Index of the first header line named `lower` (a lowercase Buffer) at or after `from`, or -1. */
  findHeader(lower: Buffer, from: number): number {
    const head = this.head!;
    const buf = this.buf;
    const n = lower.length;
    for (let i = from; i < head.count; i++) {
      const start = head.lineStart[i]!;
      if (head.nameEnd[i]! - start === n && eqLowerAt(buf, start, lower, n)) return i;
    }
    return -1;
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

  /** Header changes for the request (user code); applied with the header rules. */
  requestEdits(): HeaderEdits {
    return (this.edits ??= new HeaderEdits());
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

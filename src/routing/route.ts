import type { RouteConfig, ValueMatch } from '../config/routing-types.js';
import type { Backend } from '../model/backend.js';
import { CidrList } from './cidr.js';
import type { RequestFacts } from './request-facts.js';
import { rateLimiterFor, type RateLimiter } from '../overload/rate-limit.js';
import type { ExchangePlan } from './rules.js';

// One route compiled for one config generation: every condition turned into what is cheapest
// to test per request (strings compared as they are, header names as lowercase bytes, CIDR
// blocks as integers, regular expressions compiled once), tested cheapest first. A route
// matches when all its conditions do (AND), as in HAProxy ACLs on one `use_backend` line.

export const ACTION_BACKEND = 0;
export const ACTION_REDIRECT = 1;
export const ACTION_DENY = 2;

/** Hits per route, kept by route name across reloads (the stats read them). */
export class RouteStats {
  hits = 0;
  /** Requests answered 429 by the route's rate_limit. */
  rateLimited = 0;
  /** The route's rate limiter (docs/overload.md), kept here so a reload keeps its buckets. */
  limiter: RateLimiter | null = null;
}

const PATH_ANY = 0;
const PATH_EXACT = 1;
const PATH_PREFIX = 2;
const PATH_REGEX = 3;

const VALUE_PRESENT = 0;
const VALUE_ABSENT = 1;
const VALUE_EQUALS = 2;
const VALUE_REGEX = 3;

interface CompiledValueMatch {
  readonly name: string;
  /** Header names as lowercase bytes (query names are matched as strings). */
  readonly lower: Buffer;
  readonly kind: number;
  readonly value: string;
  /** `value` as bytes (equals compares bytes in the head). */
  readonly valueBytes: Buffer;
  readonly regex: RegExp | null;
}

/** A host condition: exact (`api.example.com`), suffix (`*.example.com`), with or without a port. */
export interface HostPattern {
  /** Exact name, or the suffix with its dot (`.example.com`). */
  readonly text: string;
  /** The same as lowercase bytes. */
  readonly bytes: Buffer;
  readonly wildcard: boolean;
  /** Compare with the port (the pattern gave one). */
  readonly withPort: boolean;
}

/** buf[start..start+b.length) equals the lowercase bytes `b`, ASCII case-insensitively. */
export function bytesEqualLower(buf: Buffer, start: number, b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    let c = buf[start + i]!;
    if (c >= 65 && c <= 90) c += 32;
    if (c !== b[i]) return false;
  }
  return true;
}

/** buf[start..start+b.length) equals `b` exactly (paths are case-sensitive). */
function bytesEqual(buf: Buffer, start: number, b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (buf[start + i] !== b[i]) return false;
  return true;
}

/**
 * Header and query names as shared Buffers: routes testing the same name hand the view the same
 * object, so its one-entry cache (RequestView.findHeader / findQueryParam) answers repeats.
 */
const NAMES = new Map<string, Buffer>();
function nameBytes(name: string): Buffer {
  let b = NAMES.get(name);
  if (b === undefined) {
    b = Buffer.from(name, 'latin1');
    NAMES.set(name, b);
  }
  return b;
}

/** Bits for the common methods (0: another method, compared as a string). */
export function methodBit(method: string): number {
  switch (method) {
    case 'GET':
      return 1;
    case 'HEAD':
      return 2;
    case 'POST':
      return 4;
    case 'PUT':
      return 8;
    case 'DELETE':
      return 16;
    case 'PATCH':
      return 32;
    case 'OPTIONS':
      return 64;
    case 'TRACE':
      return 128;
    default:
      return 0;
  }
}

function compileValues(list: readonly ValueMatch[]): CompiledValueMatch[] | null {
  if (list.length === 0) return null;
  return list.map((m) => ({
    name: m.name,
    lower: nameBytes(m.name),
    kind: m.kind === 'present' ? VALUE_PRESENT : m.kind === 'absent' ? VALUE_ABSENT : m.kind === 'equals' ? VALUE_EQUALS : VALUE_REGEX,
    value: m.kind === 'equals' || m.kind === 'regex' ? m.value : '',
    valueBytes: Buffer.from(m.kind === 'equals' ? m.value : '', 'latin1'),
    regex: m.kind === 'regex' ? new RegExp(m.value) : null,
  }));
}

export class CompiledRoute {
  readonly name: string;
  readonly index: number;
  readonly action: number;
  /** The backend of a backend action; null for redirect and deny. */
  readonly backend: Backend | null;
  /** Per client address request rate on this route (`rate_limit`); null: none. */
  readonly limiter: RateLimiter | null;
  readonly hosts: readonly HostPattern[] | null;
  /** Exact host names (no port) this route can match: the table indexes them. */
  readonly exactHosts: readonly string[];
  private readonly pathKind: number;
  private readonly pathText: string;
  private readonly pathBytes: Buffer;
  private readonly pathRegex: RegExp | null;
  private readonly methods: readonly string[] | null;
  /** methodBit of each method listed, or-ed. */
  private readonly methodBits: number;
  private readonly headers: readonly CompiledValueMatch[] | null;
  private readonly query: readonly CompiledValueMatch[] | null;
  private readonly source: CidrList | null;
  private readonly notSource: CidrList | null;

  constructor(
    readonly config: RouteConfig,
    index: number,
    backend: Backend | null,
    /** Header and path rules for requests this route sends on (null: none). */
    readonly plan: ExchangePlan | null,
    /** The full response for a deny (keep-alive and close variants), null otherwise. */
    readonly denyKeepAlive: Buffer | null,
    readonly denyClose: Buffer | null,
    readonly stats: RouteStats,
  ) {
    this.name = config.name;
    this.index = index;
    stats.limiter = rateLimiterFor(config.rateLimit ?? null, stats.limiter);
    this.limiter = stats.limiter;
    const a = config.action;
    this.action = a.type === 'backend' ? ACTION_BACKEND : a.type === 'redirect' ? ACTION_REDIRECT : ACTION_DENY;
    this.backend = backend;
    const m = config.match;
    this.hosts =
      m.hosts === null
        ? null
        : m.hosts.map((h) => {
            const wildcard = h.startsWith('*.');
            const withPort = /:\d+$/.test(h);
            const text = wildcard ? h.slice(1) : h;
            return { text, bytes: Buffer.from(text, 'latin1'), wildcard, withPort };
          });
    this.exactHosts =
      this.hosts === null ? [] : this.hosts.filter((h) => !h.wildcard).map((h) => (h.withPort ? h.text.slice(0, h.text.lastIndexOf(':')) : h.text));
    if (m.path !== null) {
      this.pathKind = PATH_EXACT;
      this.pathText = m.path;
    } else if (m.pathPrefix !== null) {
      this.pathKind = PATH_PREFIX;
      // Segment boundaries: `/api` and `/api/` both match /api, /api/ and /api/x, never /apix.
      this.pathText = m.pathPrefix.length > 1 ? m.pathPrefix.replace(/\/+$/, '') : m.pathPrefix;
    } else {
      this.pathKind = m.pathRegex !== null ? PATH_REGEX : PATH_ANY;
      this.pathText = '';
    }
    this.pathBytes = Buffer.from(this.pathText, 'latin1');
    this.pathRegex = m.pathRegex === null ? null : new RegExp(m.pathRegex);
    this.methods = m.methods;
    this.methodBits = m.methods === null ? 0 : m.methods.reduce((bits, name) => bits | methodBit(name), 0);
    this.headers = compileValues(m.headers);
    this.query = compileValues(m.query);
    this.source = m.source === null ? null : new CidrList(m.source);
    this.notSource = m.notSource === null ? null : new CidrList(m.notSource);
  }

  /** Does the request match every condition? `hostChecked`: the table's lookup proved the host. */
  matches(v: RequestFacts, hostChecked: boolean): boolean {
    if (this.methods !== null) {
      const bit = v.methodBit;
      if (bit !== 0 ? (this.methodBits & bit) === 0 : !this.methods.includes(v.method)) return false;
    }
    if (this.hosts !== null && !hostChecked && !this.matchHost(v)) return false;
    if (this.pathKind !== PATH_ANY && !this.matchPath(v)) return false;
    if (this.headers !== null && !this.matchHeaders(v)) return false;
    if (this.query !== null && !this.matchQuery(v)) return false;
    if (this.source !== null || this.notSource !== null) {
      const a = v.clientAddress;
      if (a === null) return false;
      if (this.source !== null && !this.source.contains(a)) return false;
      if (this.notSource !== null && this.notSource.contains(a)) return false;
    }
    return true;
  }

  /**
   * Paths are compared as bytes in the request head (no string made), except a path that
   * needs normalising (`%`, `/.`: RequestView.matchPath) and regexes, which need a string.
   */
  private matchPath(v: RequestFacts): boolean {
    if (this.pathKind === PATH_REGEX) return this.pathRegex!.test(v.matchPath);
    v.locatePath();
    if (v.pathNeedsNormalizing) {
      const p = v.matchPath;
      const t = this.pathText;
      if (this.pathKind === PATH_EXACT) return p === t;
      // `/` matches everything; otherwise the prefix must end at a segment boundary.
      return p.startsWith(t) && (p.length === t.length || t.length === 1 || p.charCodeAt(t.length) === 47);
    }
    const buf = v.buf;
    const start = v.pathStart;
    const n = v.pathEnd - start;
    const t = this.pathBytes;
    if (n === 0) return t.length === 1; // absolute-form without a path: `/`
    if (this.pathKind === PATH_EXACT) return n === t.length && bytesEqual(buf, start, t);
    return n >= t.length && bytesEqual(buf, start, t) && (n === t.length || t.length === 1 || buf[start + t.length] === 47);
  }

  /** Host without port unless the pattern has one (RFC 9110 §7.2: Host is host[:port]); bytes. */
  matchHost(v: RequestFacts): boolean {
    v.locateHost();
    const buf = v.buf;
    const hosts = this.hosts!;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      const end = h.withPort ? v.hostEnd : v.hostNameEnd;
      const n = end - v.hostStart;
      const b = h.bytes;
      if (h.wildcard ? n > b.length && bytesEqualLower(buf, end - b.length, b) : n === b.length && bytesEqualLower(buf, v.hostStart, b)) return true;
    }
    return false;
  }

  /** Every header condition holds; a condition holds when any line of that name satisfies it. */
  private matchHeaders(v: RequestFacts): boolean {
    const list = this.headers!;
    for (let k = 0; k < list.length; k++) {
      const m = list[k]!;
      let i = v.findHeader(m.lower, 0);
      if (m.kind === VALUE_ABSENT) {
        if (i !== -1) return false;
        continue;
      }
      if (i === -1) return false;
      if (m.kind === VALUE_PRESENT) continue;
      let ok = false;
      while (i !== -1) {
        if (m.kind === VALUE_EQUALS ? v.lineValueIs(i, m.valueBytes) : m.regex!.test(v.lineValue(i))) {
          ok = true;
          break;
        }
        i = v.findHeader(m.lower, i + 1);
      }
      if (!ok) return false;
    }
    return true;
  }

  private matchQuery(v: RequestFacts): boolean {
    const list = this.query!;
    for (let k = 0; k < list.length; k++) {
      const m = list[k]!;
      const found = v.findQueryParam(m.lower);
      switch (m.kind) {
        case VALUE_PRESENT:
          if (!found) return false;
          break;
        case VALUE_ABSENT:
          if (found) return false;
          break;
        case VALUE_EQUALS:
          if (!found || !v.queryValueIs(m.value, m.valueBytes)) return false;
          break;
        default:
          if (!found || !m.regex!.test(v.queryValueString())) return false;
      }
    }
    return true;
  }
}

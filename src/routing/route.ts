import type { RouteConfig, ValueMatch } from '../config/routing-types.js';
import type { Backend } from '../model/backend.js';
import { CidrList } from './cidr.js';
import type { RequestView } from './request-view.js';
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
  readonly regex: RegExp | null;
}

/** A host condition: exact (`api.example.com`), suffix (`*.example.com`), with or without a port. */
interface HostPattern {
  /** Exact name, or the suffix with its dot (`.example.com`). */
  readonly text: string;
  readonly wildcard: boolean;
  /** Compare with the port (the pattern gave one). */
  readonly withPort: boolean;
}

function compileValues(list: readonly ValueMatch[]): CompiledValueMatch[] | null {
  if (list.length === 0) return null;
  return list.map((m) => ({
    name: m.name,
    lower: Buffer.from(m.name, 'latin1'),
    kind: m.kind === 'present' ? VALUE_PRESENT : m.kind === 'absent' ? VALUE_ABSENT : m.kind === 'equals' ? VALUE_EQUALS : VALUE_REGEX,
    value: m.kind === 'equals' || m.kind === 'regex' ? m.value : '',
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
  private readonly pathRegex: RegExp | null;
  private readonly methods: readonly string[] | null;
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
    this.hosts = m.hosts === null ? null : m.hosts.map((h) => {
      const wildcard = h.startsWith('*.');
      const withPort = /:\d+$/.test(h);
      return { text: wildcard ? h.slice(1) : h, wildcard, withPort };
    });
    this.exactHosts = this.hosts === null ? [] : this.hosts.filter((h) => !h.wildcard).map((h) => (h.withPort ? h.text.slice(0, h.text.lastIndexOf(':')) : h.text));
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
    this.pathRegex = m.pathRegex === null ? null : new RegExp(m.pathRegex);
    this.methods = m.methods;
    this.headers = compileValues(m.headers);
    this.query = compileValues(m.query);
    this.source = m.source === null ? null : new CidrList(m.source);
    this.notSource = m.notSource === null ? null : new CidrList(m.notSource);
  }

  /** Does the request match every condition? */
  matches(v: RequestView): boolean {
    if (this.methods !== null && !this.methods.includes(v.method)) return false;
    if (this.hosts !== null && !this.matchHost(v)) return false;
    switch (this.pathKind) {
      case PATH_EXACT:
        if (v.matchPath !== this.pathText) return false;
        break;
      case PATH_PREFIX: {
        const p = v.matchPath;
        const t = this.pathText;
        // `/` matches everything; otherwise the prefix must end at a segment boundary.
        if (!p.startsWith(t) || (p.length > t.length && t.length > 1 && p.charCodeAt(t.length) !== 47)) return false;
        break;
      }
      case PATH_REGEX:
        if (!this.pathRegex!.test(v.matchPath)) return false;
        break;
      default:
        break;
    }
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

  /** Host without port unless the pattern has one (RFC 9110 §7.2: Host is host[:port]). */
  matchHost(v: RequestView): boolean {
    const hosts = this.hosts!;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      const value = h.withPort ? v.authority : v.host;
      if (h.wildcard ? value.length > h.text.length && value.endsWith(h.text) : value === h.text) return true;
    }
    return false;
  }

  /** Every header condition holds; a condition holds when any line of that name satisfies it. */
  private matchHeaders(v: RequestView): boolean {
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
        const value = v.lineValue(i);
        if (m.kind === VALUE_EQUALS ? value === m.value : m.regex!.test(value)) {
          ok = true;
          break;
        }
        i = v.findHeader(m.lower, i + 1);
      }
      if (!ok) return false;
    }
    return true;
  }

  private matchQuery(v: RequestView): boolean {
    const list = this.query!;
    for (let k = 0; k < list.length; k++) {
      const m = list[k]!;
      const value = v.queryParam(m.name);
      switch (m.kind) {
        case VALUE_PRESENT:
          if (value === null) return false;
          break;
        case VALUE_ABSENT:
          if (value !== null) return false;
          break;
        case VALUE_EQUALS:
          if (value !== m.value) return false;
          break;
        default:
          if (value === null || !m.regex!.test(value)) return false;
      }
    }
    return true;
  }
}

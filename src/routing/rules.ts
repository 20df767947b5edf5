import { randomUUID } from 'node:crypto';
import type { HeaderRulesConfig, PathRewriteConfig, RequestIdConfig } from '../config/routing-types.js';
import type { Template, TemplateVar } from '../config/templates.js';
import type { HttpHead } from '../balancer/http-head.js';
import { dropNamed } from './header-edits.js';
import type { RequestFacts } from './request-facts.js';

// Header and path rules, merged once per config generation into one ExchangePlan for each
// way a request can leave (a route, or the default backend): the frontend's rules, then the
// backend's, then the route's; a later `set` or `remove` of a name replaces what an earlier
// layer did with it (the most specific wins), `add` appends. Lines whose value is fixed are
// joined into one string at compile time; only template values are built per request.

/** One header line to add: `Name: ` and its value. */
interface LineRule {
  readonly prefix: string;
  readonly value: Template;
}

/** The rules of one direction, merged. */
export class DirectionRules {
  constructor(
    /** Names whose lines are dropped (removed, or replaced by a set), lowercase bytes. */
    readonly remove: readonly Buffer[],
    /** Lines to add in order: runs of fixed lines joined into one string, template lines apart. */
    readonly lines: readonly (string | LineRule)[],
    /** The variables the template lines read. */
    readonly vars: ReadonlySet<TemplateVar>,
  ) {}
}

type Entry = { mode: 'set' | 'add' | 'remove'; name: string; values: Template[] };

/** Merge layers (least specific first); null when they change nothing. */
export function mergeRules(layers: readonly (HeaderRulesConfig | null)[]): DirectionRules | null {
  const entries = new Map<string, Entry>();
  for (const layer of layers) {
    if (layer === null) continue;
    for (const name of layer.remove) entries.set(name, { mode: 'remove', name, values: [] });
    for (const { name, value } of layer.set) entries.set(name, { mode: 'set', name, values: [value] });
    for (const { name, value } of layer.add) {
      const e = entries.get(name);
      if (e === undefined) entries.set(name, { mode: 'add', name, values: [value] });
      else if (e.mode === 'remove')
        entries.set(name, { mode: 'set', name, values: [value] }); // removed earlier, then added: only this one
      else e.values.push(value);
    }
  }
  if (entries.size === 0) return null;
  const remove: Buffer[] = [];
  const lines: (string | LineRule)[] = [];
  const vars = new Set<TemplateVar>();
  for (const e of entries.values()) {
    if (e.mode !== 'add') remove.push(Buffer.from(e.name, 'latin1'));
    for (const value of e.values) {
      const prefix = `${canonicalName(e.name)}: `;
      if (value.every((p) => typeof p === 'string')) {
        const line = `${prefix}${(value as string[]).join('').trim()}\r\n`;
        const last = lines.length - 1;
        if (last >= 0 && typeof lines[last] === 'string') lines[last] += line;
        else lines.push(line);
      } else {
        lines.push({ prefix, value });
        for (const p of value) if (typeof p !== 'string') vars.add(p.var);
      }
    }
  }
  return new DirectionRules(remove, lines, vars);
}

/** `x-request-id` → `X-Request-Id`: how most peers write names (names are case-insensitive). */
function canonicalName(lower: string): string {
  return lower.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/** Per-exchange values a template may read beyond the request view. */
export interface TemplateContext {
  backend: string;
  server: string;
}

const NO_CONTEXT: TemplateContext = { backend: '', server: '' };

/** A request id: kept when the client sent one, made here otherwise (RFC 4122 v4 UUID). */
export function ensureRequestId(v: RequestFacts): string {
  if (v.requestId === '') v.requestId = randomUUID();
  return v.requestId;
}

export function evaluate(t: Template, v: RequestFacts, ctx: TemplateContext): string {
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const p = t[i]!;
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    switch (p.var) {
      case 'client_ip':
        out += v.clientIp;
        break;
      case 'host':
        out += v.host;
        break;
      case 'path':
        out += v.path;
        break;
      case 'query':
        out += v.query;
        break;
      case 'method':
        out += v.method;
        break;
      case 'backend':
        out += ctx.backend;
        break;
      case 'server':
        out += ctx.server;
        break;
      case 'request_id':
        out += ensureRequestId(v);
        break;
    }
  }
  return out;
}

function linesOf(rules: DirectionRules, v: RequestFacts, ctx: TemplateContext): string {
  const lines = rules.lines;
  if (lines.length === 1 && typeof lines[0] === 'string') return lines[0];
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    out += typeof l === 'string' ? l : `${l.prefix}${evaluate(l.value, v, ctx).trim()}\r\n`;
  }
  return out;
}

/** A compiled path rewrite: strip a prefix on a segment boundary, or replace by regex. */
export class PathRewrite {
  private readonly prefix: string;
  private readonly regex: RegExp | null;
  private readonly replace: string;

  constructor(readonly config: PathRewriteConfig) {
    this.prefix = config.type === 'strip_prefix' ? config.prefix : '';
    this.regex = config.type === 'regex' ? new RegExp(config.regex) : null;
    this.replace = config.type === 'regex' ? config.replace : '';
  }

  /** The path the server gets. Never empty: a path stripped to nothing is `/`. */
  apply(path: string): string {
    let out: string;
    if (this.regex !== null) out = path.replace(this.regex, this.replace);
    else {
      const p = this.prefix;
      if (p === '/' || !path.startsWith(p)) return path;
      if (path.length === p.length) out = '/';
      else if (path.charCodeAt(p.length) === 47) out = path.slice(p.length);
      else return path;
    }
    return out.charCodeAt(0) === 47 ? out : `/${out}`;
  }
}

/** Everything done to one exchange's heads besides forwarding: compiled once per generation. */
export class ExchangePlan {
  /** Response rules read request values: keep them (`capture`) before the buffer is reused. */
  readonly captureForResponse: boolean;
  private readonly requestIdName: Buffer | null;

  constructor(
    readonly request: DirectionRules | null,
    readonly response: DirectionRules | null,
    readonly rewrite: PathRewrite | null,
    readonly requestId: RequestIdConfig | null,
    /** The backend's name, for `${backend}` in request rules. */
    readonly backendName: string,
  ) {
    this.requestIdName = requestId === null ? null : Buffer.from(requestId.header.toLowerCase(), 'latin1');
    const v = response?.vars;
    this.captureForResponse = requestId?.response === true || (v !== undefined && (v.has('host') || v.has('path') || v.has('query') || v.has('request_id')));
  }

  /** Nothing to do: no rules, no rewrite, no request id. */
  static isEmpty(request: DirectionRules | null, response: DirectionRules | null, rewrite: PathRewrite | null, requestId: RequestIdConfig | null): boolean {
    return request === null && response === null && rewrite === null && requestId === null;
  }

  /**
   * Apply the request side to a parsed head: lines to drop are marked on `head`, and the lines
   * to add are returned (the caller adds its forwarding lines and writes the head once).
   */
  requestLines(head: HttpHead, buf: Buffer, v: RequestFacts): string {
    let lines = '';
    if (this.requestIdName !== null) {
      const i = v.findHeader(this.requestIdName, 0);
      if (i !== -1 && head.drop[i] === 0) {
        v.requestId = v.lineValue(i);
        v.requestIdSent = true;
      } else {
        lines += `${this.requestId!.header}: ${ensureRequestId(v)}\r\n`;
      }
    }
    const rules = this.request;
    if (rules !== null) {
      if (rules.remove.length > 0) dropNamed(head, buf, rules.remove);
      lines += linesOf(rules, v, { backend: this.backendName, server: '' });
    }
    return lines;
  }

  /** Apply the response side: drops marked on the response head; returns the lines to add. */
  responseLines(head: HttpHead, buf: Buffer, v: RequestFacts, ctx: TemplateContext): string {
    let lines = '';
    const rules = this.response;
    if (rules !== null) {
      if (rules.remove.length > 0) dropNamed(head, buf, rules.remove);
      lines = linesOf(rules, v, ctx);
    }
    if (this.requestId !== null && this.requestId.response && v.requestId !== '') {
      dropNamed(head, buf, [this.requestIdName!]);
      lines += `${this.requestId.header}: ${v.requestId}\r\n`;
    }
    return lines;
  }
}

export { NO_CONTEXT };

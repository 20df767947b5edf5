import type { HttpHead } from '../balancer/http-head.js';
import { latin1 } from '../balancer/latin1.js';
import type { RequestView as CoreView } from '../routing/request-view.js';
import { HeaderEdits } from '../routing/header-edits.js';
import type { RequestView, ResponseView } from './api.js';

// The views user code gets (api.ts) over the proxy's own request view (src/routing/
// request-view.ts) and response head. One UserRequest and one UserResponse per frontend and
// generation, pointed at the current request for the length of one call: user code runs
// synchronously, so nothing else can run meanwhile, and a request costs no allocation for
// them. A view is valid during the call it was passed to (copy what you keep). Header edits go
// through the same HeaderEdits the config's header rules use, checked the same way (no
// framing fields, no CR/LF), and are applied in the same place.

/** What onResponse needs of the request once its head bytes are gone (kept per request only when an onResponse hook exists). */
export interface RequestSnapshot {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly host: string;
  readonly headers: readonly [string, string][];
}

export class UserRequest implements RequestView {
  core: CoreView | null = null;
  snapshot: RequestSnapshot | null = null;
  server: string | null = null;

  constructor(readonly frontend: string) {}

  get method(): string {
    return this.snapshot?.method ?? this.core!.method;
  }
  get path(): string {
    return this.snapshot?.path ?? this.core!.path;
  }
  get query(): string {
    return this.snapshot?.query ?? this.core!.query;
  }
  get host(): string {
    return this.snapshot?.host ?? this.core!.host;
  }
  get clientIp(): string {
    return this.core!.clientIp;
  }
  get route(): string | null {
    return this.core!.route?.name ?? null;
  }
  get backend(): string | null {
    return this.core!.backend?.name ?? null;
  }

  header(name: string): string | undefined {
    if (this.snapshot !== null) return first(this.snapshot.headers, String(name).toLowerCase());
    return this.core!.header(String(name)) ?? undefined;
  }

  headers(): Record<string, string> {
    return toRecord(this.snapshot !== null ? this.snapshot.headers : this.core!.headers());
  }

  queryParam(name: string): string | undefined {
    if (this.snapshot !== null) {
      const v = new URLSearchParams(this.snapshot.query).get(String(name));
      return v ?? undefined;
    }
    return this.core!.queryParam(String(name)) ?? undefined;
  }

  setHeader(name: string, value: string): void {
    this.core!.requestEdits().set(String(name), String(value));
  }

  removeHeader(name: string): void {
    this.core!.requestEdits().delete(String(name));
  }
}

/** Copy what onResponse will read, while the request head's bytes are still there. */
export function snapshotRequest(core: CoreView): RequestSnapshot {
  return { method: core.method, path: core.path, query: core.query, host: core.host, headers: core.headers() };
}

export class UserResponse implements ResponseView {
  core: CoreView | null = null;
  head: HttpHead | null = null;
  buf: Buffer = EMPTY;
  /** The load-time dry run's made-up response (no head bytes to read). */
  dry: { status: number; headers: [string, string][] } | null = null;

  get status(): number {
    return this.dry?.status ?? this.head!.status;
  }

  header(name: string): string | undefined {
    return first(this.list(), String(name).toLowerCase());
  }

  headers(): Record<string, string> {
    return toRecord(this.list());
  }

  private list(): [string, string][] {
    return this.dry?.headers ?? responseHeaders(this.head!, this.buf);
  }

  setHeader(name: string, value: string): void {
    (this.core!.responseEdits ??= new HeaderEdits()).set(String(name), String(value));
  }

  removeHeader(name: string): void {
    (this.core!.responseEdits ??= new HeaderEdits()).delete(String(name));
  }
}

const EMPTY = Buffer.alloc(0);

function responseHeaders(head: HttpHead, buf: Buffer): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < head.count; i++) {
    let s = head.nameEnd[i]! + 1;
    let e = head.lineEnd[i]! - 2;
    while (s < e && (buf[s] === 32 || buf[s] === 9)) s++;
    while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
    out.push([latin1(buf, head.lineStart[i]!, head.nameEnd[i]!).toLowerCase(), latin1(buf, s, e)]);
  }
  return out;
}

function first(headers: readonly [string, string][], lower: string): string | undefined {
  for (const [k, v] of headers) if (k === lower) return v;
  return undefined;
}

function toRecord(headers: readonly [string, string][]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of headers) out[k] = out[k] === undefined ? v : `${out[k]}, ${v}`;
  return out;
}

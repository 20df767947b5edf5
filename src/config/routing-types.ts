import type { Template } from './templates.js';

// The normalised routing part of an HTTP frontend's config (routes, header rules, request ids)
// and of a backend's (header rules). Validated and frozen with the rest of the config; the
// runtime compiles it once per config generation (src/routing/).

/** A condition on a header or a query parameter. */
export type ValueMatch =
  | { readonly name: string; readonly kind: 'present' }
  | { readonly name: string; readonly kind: 'absent' }
  | { readonly name: string; readonly kind: 'equals'; readonly value: string }
  | { readonly name: string; readonly kind: 'regex'; readonly value: string };

export interface RouteMatchConfig {
  /** Lowercase; `*.example.com` for a suffix; `:port` only when given. null: any host. */
  readonly hosts: readonly string[] | null;
  readonly path: string | null;
  readonly pathPrefix: string | null;
  readonly pathRegex: string | null;
  /** Uppercase; null: any method. */
  readonly methods: readonly string[] | null;
  /** Header names lowercase (matched case-insensitively). */
  readonly headers: readonly ValueMatch[];
  readonly query: readonly ValueMatch[];
  /** CIDR lists as written (`10.0.0.0/8`, `::1`); null: any client. */
  readonly source: readonly string[] | null;
  readonly notSource: readonly string[] | null;
}

export type RouteAction =
  | { readonly type: 'backend'; readonly backend: string }
  | {
      readonly type: 'redirect';
      readonly status: 301 | 302 | 303 | 307 | 308;
      readonly location: Template;
      readonly keepPath: boolean;
      readonly keepQuery: boolean;
    }
  | { readonly type: 'deny'; readonly status: number; readonly body: string | null };

export type PathRewriteConfig =
  { readonly type: 'strip_prefix'; readonly prefix: string } | { readonly type: 'regex'; readonly regex: string; readonly replace: string };

export interface HeaderRulesConfig {
  /** Names lowercase. `set` replaces every line of that name; `add` appends one more. */
  readonly set: readonly { readonly name: string; readonly value: Template }[];
  readonly add: readonly { readonly name: string; readonly value: Template }[];
  readonly remove: readonly string[];
}

export interface RouteConfig {
  /** `name:` or `routes[N]`: the label in stats, metrics and `switchyard check`. */
  readonly name: string;
  readonly match: RouteMatchConfig;
  readonly action: RouteAction;
  readonly pathRewrite: PathRewriteConfig | null;
  readonly requestHeaders: HeaderRulesConfig | null;
  readonly responseHeaders: HeaderRulesConfig | null;
  /** Per client address request rate on this route (docs/overload.md); null: none. */
  readonly rateLimit: RateLimitConfig | null;
}

export interface RequestIdConfig {
  /** The header carrying the id (X-Request-Id): kept when the client sent one, else generated. */
  readonly header: string;
  /** Also send the id back in the response. */
  readonly response: boolean;
}

/** The routing keys of an HTTP frontend. */
export interface FrontendRoutingConfig {
  readonly routes: readonly RouteConfig[];
  readonly requestHeaders: HeaderRulesConfig | null;
  readonly responseHeaders: HeaderRulesConfig | null;
  readonly requestId: RequestIdConfig | null;
}

/** Per client address (a frontend's or a route's `rate_limit`): a token bucket of `burst` refilled at `requestsPerSecond`; concurrent connections. 0 = not applied. */
export interface RateLimitConfig {
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly connections: number;
  /** Client addresses remembered at most (least recently seen dropped first). */
  readonly tableSize: number;
}

// The public API of user code: what a router, hooks and a strategy module see and return.
// Users import these types from the package (`import type { Router, Hook, Strategy } from
// 'switchyard'`, src/index.ts); JavaScript modules use them through JSDoc. Kept small and
// stable: additions only.
//
// A router decides where a request goes; hooks see every request before it is sent
// (onRequest) and every response before it is returned (onResponse). Both run on the hot path,
// synchronously: no await, no I/O; what they need is computed at module load. They get a
// view of the request, never the proxy's own objects: reading is free, and the only changes
// are the header edits and decisions below (the same header-edit mechanism the config's header
// rules use, applied in the same place).

/** A request as user code sees it. */
export interface RequestView {
  /** `GET`, `POST`, ... */
  readonly method: string;
  /** The path, without the query: `/api/v1/items`. */
  readonly path: string;
  /** The raw query, without `?`; '' when none: `page=2&sort=asc`. */
  readonly query: string;
  /** The Host header without its port, lower case; '' when absent. */
  readonly host: string;
  /** The client's address (after PROXY protocol / trusted forwarded headers when configured). */
  readonly clientIp: string;
  /** The frontend that accepted the request. */
  readonly frontend: string;
  /** The name of the config route that matched, null when none did (or the router decided). */
  readonly route: string | null;
  /** The backend the request goes to; null in a router (it is deciding). */
  readonly backend: string | null;
  /** The server that answered: set in onResponse, null before. */
  readonly server: string | null;
  /** A header's first value (case-insensitive name), undefined when absent; headers() has them all. */
  header(name: string): string | undefined;
  /** A copy of the request headers, names in lower case (several lines of one name joined by `, `). */
  headers(): Record<string, string>;
  /** A query parameter's first value (decoded), undefined when absent. */
  queryParam(name: string): string | undefined;
  /** Set a request header sent to the server (replaces every value of that name). */
  setHeader(name: string, value: string): void;
  /** Remove a request header before it is sent to the server. */
  removeHeader(name: string): void;
}

/** A response as onResponse sees it. */
export interface ResponseView {
  readonly status: number;
  header(name: string): string | undefined;
  headers(): Record<string, string>;
  /** Set a response header returned to the client. */
  setHeader(name: string, value: string): void;
  removeHeader(name: string): void;
}

/** An answer given by switchyard itself, without a server. */
export interface DirectAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/**
 * What a router returns: a backend name (or `{ backend }`), a redirect, a deny, a direct
 * answer, or nothing (null/undefined) to let the config's routes and default backend decide.
 */
export type RouteResult =
  | string
  | { readonly backend: string }
  | { readonly redirect: string; readonly status?: 301 | 302 | 303 | 307 | 308 }
  | { readonly deny: number; readonly body?: string }
  | { readonly respond: DirectAnswer }
  | null
  | undefined;

/**
 * A router module exports `route` (or a default export that is the function, or an object
 * with `route`). It runs first when configured (`router: ./router.js`); nothing returned falls
 * through to the routes, then `default_backend`. A throw or an unknown backend name is
 * counted on the module and the request goes to the default backend.
 */
export interface Router {
  route(req: RequestView): RouteResult;
}

/**
 * A hooks module exports `onRequest` and/or `onResponse` (or a default object with them).
 * onRequest runs after the routing decision, before the request is sent; it may edit request
 * headers or answer directly (return `{ respond }`). onResponse may edit response headers.
 * A throw is counted on the module and the hook is skipped for that request.
 */
export interface Hook {
  // `void` so that a hook written to return nothing matches (a user's `() => {}` returns void).
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type -- public API: see the line above
  onRequest?(req: RequestView): void | { readonly respond: DirectAnswer } | undefined;
  onResponse?(req: RequestView, res: ResponseView): void;
}

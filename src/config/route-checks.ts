import type { PathSegment } from './source.js';

// Checks across keys for routing: the default backend is named once, every backend a route
// names exists and speaks HTTP, routes only on HTTP frontends, route names are unique, and
// `${server}` (known only once a server is picked) is used in response rules only. Like
// checks.ts, the raw value is read defensively: the schema reports wrong types.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
type Add = (path: PathSegment[], message: string) => void;

/** The default backend's name and the key it was given under, or null (reported). */
export function defaultBackendOf(name: string, fe: Obj, add: Add): { key: 'backend' | 'default_backend'; name: string } | null {
  const a = typeof fe.backend === 'string' ? fe.backend : null;
  const b = typeof fe.default_backend === 'string' ? fe.default_backend : null;
  if (a !== null && b !== null && a !== b) {
    add(['frontends', name, 'default_backend'], `backend "${a}" and default_backend "${b}" differ: they are the same setting, give one`);
    return null;
  }
  if (b !== null) return { key: 'default_backend', name: b };
  if (a !== null) return { key: 'backend', name: a };
  if (fe.backend === undefined && fe.default_backend === undefined) {
    add(['frontends', name, 'backend'], 'required: the backend that takes the requests (for HTTP, those no route matched; `default_backend:` is the same key)');
  }
  return null;
}

const modeOf = (v: Obj): string | null => (v.mode === undefined ? 'http' : v.mode === 'http' || v.mode === 'tcp' ? v.mode : null);

export function checkRouting(name: string, fe: Obj, backends: Obj | null, add: Add): void {
  const at = (...rest: PathSegment[]): PathSegment[] => ['frontends', name, ...rest];
  const http = modeOf(fe) === 'http';
  if (!http) {
    for (const key of ['routes', 'request_headers', 'response_headers', 'request_id'] as const) {
      if (fe[key] !== undefined && fe[key] !== null) add(at(key), `${key} needs mode http (this frontend is mode tcp)`);
    }
    return;
  }
  checkServerVar(fe.request_headers, at('request_headers'), add);
  if (!Array.isArray(fe.routes)) return;
  const names = new Map<string, number>();
  fe.routes.forEach((route: unknown, i) => {
    if (!isObj(route)) return;
    const routeName = typeof route.name === 'string' ? route.name : `routes[${i}]`;
    if (routeName === 'default') add(at('routes', i, 'name'), '"default" names the default backend in stats; choose another route name');
    const first = names.get(routeName);
    if (first !== undefined) add(at('routes', i, 'name'), `duplicate route name "${routeName}" (also routes[${first}])`);
    else names.set(routeName, i);
    checkServerVar(route.request_headers, at('routes', i, 'request_headers'), add);
    if (typeof route.backend !== 'string' || backends === null) return;
    const be = backends[route.backend];
    if (!Object.hasOwn(backends, route.backend)) add(at('routes', i, 'backend'), `unknown backend "${route.backend}"`);
    else if (isObj(be) && modeOf(be) === 'tcp') add(at('routes', i, 'backend'), `backend "${route.backend}" is mode tcp; a route needs an http backend`);
  });
}

/** Backends' request rules too: `${server}` is not known before the server is picked. */
export function checkBackendRouting(name: string, be: Obj, add: Add): void {
  checkServerVar(be.request_headers, ['backends', name, 'request_headers'], add);
  if (modeOf(be) === 'tcp') {
    for (const key of ['request_headers', 'response_headers'] as const) {
      if (be[key] !== undefined && be[key] !== null) add(['backends', name, key], `${key} needs mode http (this backend is mode tcp)`);
    }
  }
}

/**
 * Request rules are applied before a server is picked (and a retry may pick another), so
 * `${server}` exists only for responses, as HAProxy's `srv_name` fetch does.
 */
function checkServerVar(rules: unknown, path: PathSegment[], add: Add): void {
  if (!isObj(rules)) return;
  for (const op of ['set', 'add'] as const) {
    const rec = rules[op];
    if (!isObj(rec)) continue;
    for (const [header, value] of Object.entries(rec)) {
      const values = Array.isArray(value) ? value : [value];
      if (values.some((v) => typeof v === 'string' && v.includes('${server}'))) {
        add([...path, op, header], '${server} is known only for responses (response_headers): the server is picked after request rules run');
      }
    }
  }
}

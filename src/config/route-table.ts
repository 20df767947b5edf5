import type { RouteConfig, RouteMatchConfig, ValueMatch } from './routing-types.js';
import type { Config, FrontendConfig } from './types.js';
import { formatTemplate } from './templates.js';

// What `switchyard check` prints about routes: each HTTP frontend's table in order (what it
// matches, what it does) and a warning for every route an earlier one shadows: a route that
// can never match because every request it matches is taken first. The test is conservative
// (it only says "shadowed" when it can prove it from the conditions as written), like
// Envoy's and Traefik's route validation: no false alarms.

export function describeMatch(m: RouteMatchConfig): string {
  const parts: string[] = [];
  if (m.methods !== null) parts.push(`method ${m.methods.join('|')}`);
  if (m.hosts !== null) parts.push(`host ${m.hosts.join('|')}`);
  if (m.path !== null) parts.push(`path ${m.path}`);
  if (m.pathPrefix !== null) parts.push(`path_prefix ${m.pathPrefix}`);
  if (m.pathRegex !== null) parts.push(`path_regex ${m.pathRegex}`);
  const values = (what: string, list: readonly ValueMatch[]) => {
    for (const v of list) {
      parts.push(
        `${what} ${v.name}${v.kind === 'present' ? ' present' : v.kind === 'absent' ? ' absent' : v.kind === 'equals' ? `=${v.value}` : ` ~ /${v.value}/`}`,
      );
    }
  };
  values('header', m.headers);
  values('query', m.query);
  if (m.source !== null) parts.push(`source ${m.source.join(',')}`);
  if (m.notSource !== null) parts.push(`not_source ${m.notSource.join(',')}`);
  return parts.length === 0 ? 'any request' : parts.join(', ');
}

export function describeAction(r: RouteConfig): string {
  const a = r.action;
  let out: string;
  if (a.type === 'backend') out = `backend ${a.backend}`;
  else if (a.type === 'redirect') out = `redirect ${a.status} ${formatTemplate(a.location)}${a.keepPath ? ' +path' : ''}${a.keepQuery ? ' +query' : ''}`;
  else out = `deny ${a.status}`;
  if (r.pathRewrite !== null)
    out += r.pathRewrite.type === 'strip_prefix' ? ` (strip ${r.pathRewrite.prefix})` : ` (path ${r.pathRewrite.regex} -> ${r.pathRewrite.replace})`;
  return out;
}

/** A host pattern covers another when every host the second matches, the first matches too. */
function hostCovers(a: string, b: string): boolean {
  if (a === b) return true;
  const aPort = /:\d+$/.test(a);
  const bPort = /:\d+$/.test(b);
  if (aPort && !bPort) return false;
  const strip = (h: string) => (aPort ? h : h.replace(/:\d+$/, ''));
  const aa = strip(a);
  const bb = strip(b);
  if (aPort && a.slice(a.lastIndexOf(':')) !== b.slice(b.lastIndexOf(':'))) return false;
  if (aa === bb) return true;
  if (aa.startsWith('*.')) {
    const suffix = aa.slice(1);
    return bb.endsWith(suffix) && bb.length > suffix.length;
  }
  return false;
}

const trimSlash = (p: string) => (p.length > 1 ? p.replace(/\/+$/, '') : p);

function prefixCovers(prefix: string, path: string): boolean {
  const p = trimSlash(prefix);
  return p === '/' || path === p || path.startsWith(`${p}/`);
}

function pathCovers(a: RouteMatchConfig, b: RouteMatchConfig): boolean {
  if (a.path === null && a.pathPrefix === null && a.pathRegex === null) return true;
  if (a.path !== null) return b.path === a.path;
  if (a.pathPrefix !== null) {
    if (b.path !== null) return prefixCovers(a.pathPrefix, b.path);
    if (b.pathPrefix !== null) return prefixCovers(a.pathPrefix, trimSlash(b.pathPrefix));
    return false;
  }
  if (b.path !== null) return new RegExp(a.pathRegex!).test(b.path);
  return b.pathRegex === a.pathRegex;
}

function valueCovers(a: ValueMatch, list: readonly ValueMatch[]): boolean {
  return list.some((b) => {
    if (b.name !== a.name) return false;
    if (a.kind === 'present') return b.kind !== 'absent';
    if (a.kind === 'absent') return b.kind === 'absent';
    if (a.kind === 'equals') return b.kind === 'equals' && b.value === a.value;
    return (b.kind === 'regex' && b.value === a.value) || (b.kind === 'equals' && new RegExp(a.value).test(b.value));
  });
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** Every request `b` matches, `a` matches too (as far as the written conditions prove). */
export function covers(a: RouteMatchConfig, b: RouteMatchConfig): boolean {
  if (a.methods !== null && (b.methods === null || !b.methods.every((m) => a.methods!.includes(m)))) return false;
  if (a.hosts !== null && (b.hosts === null || !b.hosts.every((h) => a.hosts!.some((x) => hostCovers(x, h))))) return false;
  if (!pathCovers(a, b)) return false;
  if (!a.headers.every((h) => valueCovers(h, b.headers))) return false;
  if (!a.query.every((q) => valueCovers(q, b.query))) return false;
  if (a.source !== null && (b.source === null || !sameList(a.source, b.source))) return false;
  if (a.notSource !== null && (b.notSource === null || !sameList(a.notSource, b.notSource))) return false;
  return true;
}

export interface ShadowWarning {
  readonly path: string;
  readonly message: string;
}

export function shadowedRoutes(fe: FrontendConfig): ShadowWarning[] {
  const routes = fe.routing.routes;
  const out: ShadowWarning[] = [];
  for (let j = 1; j < routes.length; j++) {
    for (let i = 0; i < j; i++) {
      if (covers(routes[i]!.match, routes[j]!.match)) {
        const name = (r: RouteConfig, k: number) => (r.name === `routes[${k}]` ? `routes[${k}]` : `routes[${k}] (${r.name})`);
        out.push({
          path: `frontends.${fe.name}.routes[${j}]`,
          message: `never matches: ${name(routes[i]!, i)} takes every request it would (${describeMatch(routes[i]!.match)})`,
        });
        break;
      }
    }
  }
  return out;
}

/** The route tables of a config, as `switchyard check` prints them; '' without routes. */
export function formatRouteTables(config: Config): string {
  let out = '';
  for (const fe of config.frontends) {
    const routes = fe.routing?.routes ?? [];
    if (routes.length === 0) continue;
    const rows = routes.map((r, i) => [String(i), r.name, describeMatch(r.match), describeAction(r)]);
    rows.push(['-', 'default', 'no route matched', `backend ${fe.backend}`]);
    const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length), ['#', 'route', 'match'][c]!.length));
    const line = (r: string[]) => `  ${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]!.padEnd(widths[2]!)}  ${r[3]}`.trimEnd();
    out += `frontend ${fe.name} routes (first match wins):\n${line(['#', 'route', 'match', 'action'])}\n${rows.map(line).join('\n')}\n`;
  }
  return out;
}

export function routeWarnings(config: Config): ShadowWarning[] {
  return config.frontends.flatMap((fe) => (fe.routing ? shadowedRoutes(fe) : []));
}

import { describeAction, describeMatch } from '../config/route-table.js';
import type { Frontend } from '../model/frontend.js';
import type { Runtime } from '../model/runtime.js';

// Hits per route, as the stats read them (JSON, Prometheus, the page) and as workers report
// them to the primary (summed there like every other counter). A hit is a request the route
// decided; `default` counts requests no route matched. Counters live in RouteStats objects
// carried across reloads by route name (routing.ts), so a reload does not reset them.

export interface RouteHitsJson {
  name: string;
  match: string;
  action: string;
  /** The backend of a backend action; null for redirect and deny. */
  backend: string | null;
  hits: number;
}

/** A frontend's routes for /api/stats: its routes in order, then the default backend. */
export function routesJson(f: Frontend): RouteHitsJson[] {
  const routing = f.routing;
  if (routing.routes.length === 0) return [];
  const out: RouteHitsJson[] = routing.routes.map((r) => ({
    name: r.name,
    match: describeMatch(r.config.match),
    action: describeAction(r.config),
    backend: r.backend?.name ?? null,
    hits: r.stats.hits,
  }));
  out.push({
    name: 'default',
    match: 'no route matched',
    action: `backend ${routing.defaultBackend.name}`,
    backend: routing.defaultBackend.name,
    hits: routing.defaultStats.hits,
  });
  return out;
}

/** What a worker reports: per frontend, hits by route name and to the default backend. */
export type RouteHitsReport = Record<string, { readonly routes: Record<string, number>; readonly default: number }>;

export function collectRouteHits(runtime: Runtime): RouteHitsReport {
  const out: Record<string, { routes: Record<string, number>; default: number }> = {};
  for (const [name, f] of runtime.frontends) {
    if (f.routing.routes.length === 0) continue;
    const routes: Record<string, number> = {};
    for (const r of f.routing.routes) routes[r.name] = r.stats.hits;
    out[name] = { routes, default: f.routing.defaultStats.hits };
  }
  return out;
}

/** `a` + `b` (a dead worker's share kept in the totals). */
export function addRouteHits(a: RouteHitsReport | undefined, b: RouteHitsReport | undefined): RouteHitsReport {
  const out: Record<string, { routes: Record<string, number>; default: number }> = {};
  for (const report of [a, b]) {
    if (report === undefined) continue;
    for (const [fe, hits] of Object.entries(report)) {
      const into = (out[fe] ??= { routes: {}, default: 0 });
      into.default += hits.default;
      for (const [route, n] of Object.entries(hits.routes)) into.routes[route] = (into.routes[route] ?? 0) + n;
    }
  }
  return out;
}

/** The primary's totals: the sum of the workers' reports written into its own counters. */
export function applyRouteHits(runtime: Runtime, reports: readonly (RouteHitsReport | undefined)[]): void {
  const sum = reports.reduce<RouteHitsReport>((acc, r) => addRouteHits(acc, r), {});
  for (const [name, f] of runtime.frontends) {
    const hits = sum[name];
    if (hits === undefined) continue;
    for (const r of f.routing.routes) r.stats.hits = hits.routes[r.name] ?? 0;
    f.routing.defaultStats.hits = hits.default;
  }
}

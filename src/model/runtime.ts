import type { Config } from '../config/types.js';
import type { StrategyFactory } from '../strategies/strategy.js';
import { loadStrategyFactory } from '../strategies/registry.js';
import { Backend } from './backend.js';
import { Frontend } from './frontend.js';
import { compileRouting } from '../routing/routing.js';
import { SniRoutes } from './sni-routes.js';

/**
 * The runtime model built from one validated config: frontends and backends by name. Building
 * is async (user strategy modules load) and happens entirely before the swap, so a config that
 * fails to build never touches what is serving. Objects that persist (backends, servers,
 * frontends) are reused from the previous runtime by name/id.
 */
export class Runtime {
  constructor(
    readonly config: Config,
    readonly frontends: ReadonlyMap<string, Frontend>,
    readonly backends: ReadonlyMap<string, Backend>,
    readonly generation: number,
  ) {}
}

/** Load every strategy the config names; throws (naming the backend) before anything changes. */
export async function loadStrategies(config: Config): Promise<Map<string, StrategyFactory>> {
  const factories = new Map<string, StrategyFactory>();
  for (const b of config.backends) {
    try {
      factories.set(b.name, await loadStrategyFactory(b.strategy, config.source));
    } catch (error) {
      throw new Error(`backends.${b.name}.strategy: ${(error as Error).message}`);
    }
  }
  return factories;
}

/**
 * Build the next runtime. With `previous`, backends and frontends of the same name are reused
 * and updated in place only here, after every strategy loaded: the caller then swaps the
 * runtime in one assignment.
 */
export async function buildRuntime(config: Config, previous: Runtime | null): Promise<Runtime> {
  const factories = await loadStrategies(config);
  const backends = new Map<string, Backend>();
  for (const b of config.backends) {
    const factory = factories.get(b.name)!;
    const old = previous?.backends.get(b.name);
    if (old) {
      old.apply(b, factory);
      backends.set(b.name, old);
    } else {
      backends.set(b.name, new Backend(b, factory));
    }
  }
  const frontends = new Map<string, Frontend>();
  for (const f of config.frontends) {
    const backend = backends.get(f.backend)!;
    const old = previous?.frontends.get(f.name);
    const routing = compileRouting(f, backends, old?.routing ?? null);
    if (old) {
      old.config = f;
      old.backend = backend;
      old.routing = routing;
      frontends.set(f.name, old);
    } else {
      frontends.set(f.name, new Frontend(f, backend, routing));
    }
    frontends.get(f.name)!.sniRoutes = f.sniRoutes === null ? null : new SniRoutes(f.sniRoutes, backends);
  }
  return new Runtime(config, frontends, backends, (previous?.generation ?? 0) + 1);
}

/** After a swap: backends the new runtime no longer has take no new traffic. */
export function retireRemoved(previous: Runtime, next: Runtime): void {
  for (const [name, old] of previous.backends) if (next.backends.get(name) !== old) old.retire();
}

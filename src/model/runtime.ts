import type { Config } from '../config/types.js';
import type { StrategyFactory } from '../strategies/strategy.js';
import { loadStrategyFactory, type UserStrategyFactory } from '../strategies/registry.js';
import { Backend, type BackendChange } from './backend.js';
import { Frontend } from './frontend.js';
import { compileRouting } from '../routing/routing.js';
import { SniRoutes } from './sni-routes.js';
import { loadFrontendCode } from '../usercode/frontend-code.js';

/**
 * The runtime model built from one validated config: frontends and backends by name, and the
 * user module files it runs (watched with the config file).
 */
export class Runtime {
  constructor(
    readonly config: Config,
    readonly frontends: ReadonlyMap<string, Frontend>,
    readonly backends: ReadonlyMap<string, Backend>,
    readonly generation: number,
    /** Files of the user modules this generation runs (strategies, routers, hooks, their imports). */
    readonly userFiles: readonly string[] = [],
  ) {}
}

/**
 * A generation built beside the running one (the build step of a reload): every module loaded,
 * every user factory run and dry-run, new backends and frontends made, changes to backends that
 * stay prepared, and nothing running touched. `commit()` is the swap step: synchronous, it
 * applies the prepared changes to the backends that stay (servers kept by id, with their
 * counters, health, connections; strategies and sticky tables kept unless they changed); the
 * caller assigns `runtime` in the same tick. Dropping a plan instead changes nothing.
 * Other parts that rebuild on reload (TLS contexts, the runtime socket) add their built state
 * beside `runtime` and their swap to `commit`.
 */
export interface RuntimePlan {
  readonly runtime: Runtime;
  commit(): void;
}

/** Load every strategy the config names; throws (naming the backend) before anything changes. */
export async function loadStrategies(config: Config): Promise<Map<string, StrategyFactory>> {
  const factories = new Map<string, StrategyFactory>();
  for (const b of config.backends) {
    try {
      factories.set(b.name, await loadStrategyFactory(b.strategy, config.source));
    } catch (error) {
      throw new Error(`backends.${b.name}.strategy: ${(error as Error).message}`, { cause: error });
    }
  }
  return factories;
}

/** Build the next generation beside `previous` (null: the first one). Throws, naming the key, on failure. */
export async function planRuntime(config: Config, previous: Runtime | null): Promise<RuntimePlan> {
  const factories = await loadStrategies(config);
  const userFiles = new Set<string>();
  for (const f of factories.values()) for (const file of (f as Partial<UserStrategyFactory>).module?.files ?? []) userFiles.add(file);
  const backends = new Map<string, Backend>();
  const changes: [Backend, BackendChange][] = [];
  for (const b of config.backends) {
    const factory = factories.get(b.name)!;
    const old = previous?.backends.get(b.name);
    try {
      if (old) {
        changes.push([old, old.prepare(b, factory)]);
        backends.set(b.name, old);
      } else {
        backends.set(b.name, new Backend(b, factory));
      }
    } catch (error) {
      throw new Error(`backends.${b.name}.strategy: ${(error as Error).message}`, { cause: error });
    }
  }
  const frontends = new Map<string, Frontend>();
  for (const f of config.frontends) {
    const old = previous?.frontends.get(f.name) ?? null;
    // Route hit counters are carried over by route name (shared, never mutated by the build).
    let routing = compileRouting(f, backends, old?.routing ?? null);
    if (f.router || f.hooks) {
      const code = await loadFrontendCode(f, backends);
      for (const file of code.files) userFiles.add(file);
      routing = routing.withUserCode(code.router, code.hooks);
    }
    const frontend = new Frontend(f, backends.get(f.backend)!, routing, old);
    frontend.sniRoutes = f.sniRoutes === null ? null : new SniRoutes(f.sniRoutes, backends);
    frontends.set(f.name, frontend);
  }
  const runtime = new Runtime(config, frontends, backends, (previous?.generation ?? 0) + 1, [...userFiles]);
  return {
    runtime,
    commit() {
      for (const [backend, change] of changes) backend.commit(change);
      for (const f of frontends.values()) f.inherit();
    },
  };
}

/** Build and commit at once: the first generation, and tools that have nothing running. */
export async function buildRuntime(config: Config, previous: Runtime | null): Promise<Runtime> {
  const plan = await planRuntime(config, previous);
  plan.commit();
  return plan.runtime;
}

/** After a swap: backends the new runtime no longer has take no new traffic. */
export function retireRemoved(previous: Runtime, next: Runtime): void {
  for (const [name, old] of previous.backends) if (next.backends.get(name) !== old) old.retire();
}

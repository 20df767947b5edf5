import { ErrorCodes, SwitchyardError } from '../errors.js';
import { BudgetExceeded, withinBudget } from '../usercode/budget.js';
import { noteLoaded } from '../usercode/ledger.js';
import { loadUserModule, resolveModulePath, type LoadedModule } from '../usercode/loader.js';
import { GuardedStrategy, dryRunStrategy } from '../usercode/strategy-guard.js';
import { isBuiltinStrategy, isStrategyPath, type BuiltinStrategyName } from './names.js';
import type { Strategy, StrategyFactory } from './strategy.js';
import { roundRobin } from './round-robin.js';
import { leastConnections } from './least-connections.js';
import { ipHash } from './ip-hash.js';
import { random } from './random.js';

// Names -> factories. Adding a built-in strategy is one file, its name in names.ts and one line
// here (the Record type makes the two lists agree).
const FACTORIES: Readonly<Record<BuiltinStrategyName, StrategyFactory>> = {
  'round-robin': roundRobin,
  'least-connections': leastConnections,
  'ip-hash': ipHash,
  random,
};

const TYPESCRIPT_MODULE = /\.[cm]?ts$/;

/** The names the registry has a factory for. */
export function builtinStrategyNames(): string[] {
  return Object.keys(FACTORIES);
}

function loadError(message: string): SwitchyardError {
  return new SwitchyardError(ErrorCodes.STRATEGY_LOAD, message);
}

/** A factory made from a user module: which module version it runs (watched, shown in stats). */
export interface UserStrategyFactory extends StrategyFactory {
  readonly module: LoadedModule;
}

/** One factory per module version: a reload that finds the files unchanged gets the same one. */
const factories = new WeakMap<LoadedModule, UserStrategyFactory>();

/**
 * Resolve a strategy to its factory. User modules are loaded by src/usercode/loader.ts (a new
 * version when the file changed, freed when unused) and must export a factory as `default`
 * or `createStrategy`. Every failure is a SY_ERR_STRATEGY_LOAD error naming the module, so
 * the config that names it is rejected.
 */
export async function loadStrategyFactory(name: string, configFile: string | null): Promise<StrategyFactory> {
  if (isBuiltinStrategy(name)) return FACTORIES[name];
  if (!isStrategyPath(name)) {
    throw loadError(`unknown strategy "${name}" (built-ins: ${builtinStrategyNames().join(', ')}; or a module path starting with ./ or /)`);
  }
  const file = resolveModulePath(name, configFile);
  let mod: LoadedModule;
  try {
    mod = await loadUserModule(file);
  } catch (error) {
    throw importError(file, error);
  }
  const known = factories.get(mod);
  if (known) return known;
  const exported = mod.exports.default ?? mod.exports.createStrategy;
  if (typeof exported !== 'function') {
    throw loadError(`strategy module ${file} exports no factory (export default or createStrategy)`);
  }
  const factory = Object.assign(checkedFactory(mod, exported as (options: Readonly<Record<string, unknown>>) => unknown), { module: mod });
  factories.set(mod, factory);
  return factory;
}

function importError(file: string, error: unknown): SwitchyardError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && TYPESCRIPT_MODULE.test(file)) {
    // Node 20 has no type stripping (22.18+ and 23.6+ do it by default); a loader such as tsx
    // (`node --import tsx`) also makes .ts importable, which is why we try before refusing.
    return loadError(
      `cannot load ${file}: Node ${process.version} cannot import TypeScript. ` +
        'Compile it to .js and point strategy: at the .js file (or run on Node 22.18+, or under a TypeScript loader such as tsx)',
    );
  }
  return loadError(`cannot load strategy module ${file}: ${(error as Error)?.message ?? String(error)}`);
}

/**
 * What a user factory makes is checked once, where it is made (cold path): a factory that
 * throws or returns something without update() and pick() is a load error naming the module,
 * not a mystery on the first request. The factory and a dry run of a throwaway instance run
 * within the time budget: an endless loop is a load error too, and the running version stays.
 * What serves is the guard around the instance (views in, servers out: strategy-guard.ts).
 */
function checkedFactory(mod: LoadedModule, factory: (options: Readonly<Record<string, unknown>>) => unknown): StrategyFactory {
  const file = mod.file;
  const make = (options: Readonly<Record<string, unknown>>): Strategy => {
    let made: unknown;
    try {
      made = withinBudget(`strategy module ${file}: the factory`, () => factory(options));
    } catch (error) {
      if (error instanceof BudgetExceeded) throw loadError(error.message);
      throw loadError(`strategy module ${file}: the factory threw: ${(error as Error)?.message ?? String(error)}`);
    }
    const s = made as Partial<Record<keyof Strategy, unknown>> | null;
    const bad =
      s === null || typeof s !== 'object'
        ? `returned ${s === null ? 'null' : typeof s}`
        : typeof s.update !== 'function'
          ? 'returned an object without update()'
          : typeof s.pick !== 'function'
            ? 'returned an object without pick()'
            : s.opened !== undefined && typeof s.opened !== 'function'
              ? 'returned opened that is not a function'
              : s.closed !== undefined && typeof s.closed !== 'function'
                ? 'returned closed that is not a function'
                : null;
    if (bad !== null) throw loadError(`strategy module ${file}: the factory ${bad} (expected { update(eligible), pick(ctx) })`);
    return made as Strategy;
  };
  return (options) => {
    const strategy = make(options);
    try {
      dryRunStrategy(file, () => make(options));
    } catch (error) {
      throw loadError(`refused: ${(error as Error).message}`);
    }
    // Recorded once the version passed its dry run: a refused one never shows as serving.
    return new GuardedStrategy(strategy, noteLoaded('strategy', file, mod.version, mod.loadedAt));
  };
}

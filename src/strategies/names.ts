import { isAbsolute } from 'node:path';

// The built-in strategy names, apart from their code: config/ validates names with this list
// without importing the registry (and so every algorithm and the user-code loader). registry.ts
// keys its factories by BuiltinStrategyName, so a name added here without a factory there (or
// the other way round) does not compile; test/strategy-names.test.ts checks the two agree.

export const BUILTIN_STRATEGY_NAMES = ['round-robin', 'least-connections', 'ip-hash', 'random'] as const;

export type BuiltinStrategyName = (typeof BUILTIN_STRATEGY_NAMES)[number];

const NAMES: ReadonlySet<string> = new Set(BUILTIN_STRATEGY_NAMES);

export function isBuiltinStrategy(name: string): name is BuiltinStrategyName {
  return NAMES.has(name);
}

/** A strategy name is a built-in name or a module path (starts with `.` or `/`). */
export function isStrategyPath(name: string): boolean {
  return name.startsWith('.') || isAbsolute(name);
}

import { isAbsolute, resolve, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StrategyFactory } from './strategy.js';
import { roundRobin } from './round-robin.js';
import { leastConnections } from './least-connections.js';
import { ipHash } from './ip-hash.js';
import { random } from './random.js';

// Names -> factories. Adding a built-in strategy is one file and one line here.
const builtins = new Map<string, StrategyFactory>([
  ['round-robin', roundRobin],
  ['least-connections', leastConnections],
  ['ip-hash', ipHash],
  ['random', random],
]);

export function builtinStrategyNames(): string[] {
  return [...builtins.keys()];
}

export function isBuiltinStrategy(name: string): boolean {
  return builtins.has(name);
}

/** A strategy name is a built-in name or a module path (starts with `.` or `/`). */
export function isStrategyPath(name: string): boolean {
  return name.startsWith('.') || isAbsolute(name);
}

/**
 * Resolve a strategy to its factory. User modules are imported once (cold path, at config
 * load) and must export a factory as `default` or `createStrategy`.
 */
export async function loadStrategyFactory(name: string, configFile: string | null): Promise<StrategyFactory> {
  const builtin = builtins.get(name);
  if (builtin) return builtin;
  if (!isStrategyPath(name)) {
    throw new Error(`unknown strategy "${name}" (built-ins: ${builtinStrategyNames().join(', ')})`);
  }
  const file = resolve(configFile ? dirname(configFile) : process.cwd(), name);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const factory = (mod.default ?? mod.createStrategy) as unknown;
  if (typeof factory !== 'function') {
    throw new Error(`strategy module ${file} exports no factory (export default or createStrategy)`);
  }
  return factory as StrategyFactory;
}

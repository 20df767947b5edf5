import t from 'tap';
import { BUILTIN_STRATEGY_NAMES, isBuiltinStrategy, isStrategyPath } from '../src/strategies/names.js';
import { builtinStrategyNames, loadStrategyFactory } from '../src/strategies/registry.js';

// config/ checks strategy names against names.ts without loading the registry: the two must agree.
t.test('the names config checks are the names the registry has factories for', async (t) => {
  t.same([...BUILTIN_STRATEGY_NAMES].sort(), builtinStrategyNames().sort());
  for (const name of BUILTIN_STRATEGY_NAMES) {
    t.ok(isBuiltinStrategy(name), name);
    t.equal(typeof (await loadStrategyFactory(name, null)), 'function', `${name} loads`);
  }
  t.notOk(isBuiltinStrategy('weighted'));
  t.notOk(isBuiltinStrategy('./round-robin'));
  t.ok(isStrategyPath('./s.js'));
  t.ok(isStrategyPath('/abs/s.js'));
  t.notOk(isStrategyPath('round-robin'));
});

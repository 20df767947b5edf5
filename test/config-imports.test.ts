import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// config/ imports nothing from the runtime (STYLE.md "the shape of the house"): its own files,
// the error catalog and the built-in strategy names, whose list names no algorithm.
const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const ALLOWED = new Set(['errors.ts', 'strategies/names.ts']);

t.test('config/ reaches only config/, errors.ts and strategies/names.ts', async (t) => {
  const seen = new Set<string>();
  const stack = readdirSync(join(SRC, 'config'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `config/${f}`);
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of readFileSync(join(SRC, file), 'utf8').matchAll(/from '(\.[^']+)'/g)) {
      stack.push(relative(SRC, join(dirname(join(SRC, file)), m[1]!)).replace(/\.js$/, '.ts'));
    }
  }
  const outside = [...seen].filter((f) => !f.startsWith('config/')).sort();
  t.ok(
    outside.every((f) => ALLOWED.has(f)),
    `outside config/: ${outside.join(', ')}`,
  );
  t.ok(seen.size > 10, 'the walk found the config modules');
});

// The user-module loader (src/usercode/loader.ts, transform.ts): every ES module export form,
// CommonJS, relative imports (one version for the graph; an edit of an imported file is a new
// version), Node built-ins, import.meta; an unchanged file gives the same version object; an
// endless loop at module level is stopped by the budget; a syntax error names the file and line.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUserModule, moduleChanged } from '../src/usercode/loader.js';

const dir = mkdtempSync(join(tmpdir(), 'sy-loader-'));
const write = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

t.test('export forms', async (t) => {
  const file = write(
    'forms.js',
    `
import { createHash } from 'node:crypto';
import path, { basename as base } from 'node:path';
import * as os from 'node:os';
export default async function main() { return 'main'; }
export function f() { return createHash('sha256').update('x').digest('hex').slice(0, 4); }
export const a = 1, { b, c: [d] } = { b: 2, c: [3] };
export class K { k() { return base('/x/y.js') + path.sep + typeof os.tmpdir; } }
let hidden = 'h';
export { hidden as renamed, hidden as 'string name' };
export const meta = import.meta.filename;
`,
  );
  const m = await loadUserModule(file);
  const e = m.exports as Record<string, any>;
  t.equal(await e.default(), 'main');
  t.equal(e.f(), '2d71');
  t.same([e.a, e.b, e.d], [1, 2, 3]);
  t.equal(new e.K().k(), 'y.js/function');
  t.equal(e.renamed, 'h');
  t.equal(e['string name'], 'h');
  t.equal(e.meta, file, 'import.meta.filename');
  t.same(m.files, [file]);
  t.equal(await loadUserModule(file), m, 'unchanged: the same version object');
});

t.test('anonymous default exports and CommonJS', async (t) => {
  t.equal(((await loadUserModule(write('anon.js', 'export default function () { return 1; }\n(0)'))).exports.default as () => number)(), 1);
  t.equal(
    ((await loadUserModule(write('anoncls.js', 'export default class { v() { return 2; } }'))).exports.default as new () => { v(): number }).prototype.v(),
    2,
  );
  t.equal((await loadUserModule(write('expr.js', 'export default 40 + 2;'))).exports.default, 42);
  const cjs = await loadUserModule(
    write('common.cjs', `const { join } = require('node:path'); module.exports = { route: () => join('a', 'b'), file: __filename };`),
  );
  t.equal((cjs.exports.route as () => string)(), 'a/b');
  t.equal(cjs.exports.file, join(dir, 'common.cjs'));
});

t.test('relative imports: one version for the graph, watched, an edit of a dependency is a new version', async (t) => {
  write('dep.js', `export const share = 5; export default 'dep';`);
  write('reexport.js', `export * from './dep.js'; export { default as depName } from './dep.js';`);
  const root = write(
    'root.js',
    `import dep, { share } from './dep.js'; import * as all from './reexport.js'; export const value = dep + share + all.share + all.depName;`,
  );
  const v1 = await loadUserModule(root);
  t.equal(v1.exports.value, 'dep55dep');
  t.same([...v1.files].sort(), [join(dir, 'dep.js'), join(dir, 'reexport.js'), root].sort(), 'every file of the graph is watched');
  t.equal(moduleChanged(root), false);
  write('dep.js', `export const share = 7; export default 'dep';`);
  t.equal(moduleChanged(root), true, 'an edit of a dependency changes the module');
  const v2 = await loadUserModule(root);
  t.not(v2, v1);
  t.not(v2.version, v1.version);
  t.equal(v2.exports.value, 'dep77dep');
});

t.test('failures name the file', async (t) => {
  await t.rejects(loadUserModule(write('syntax.js', 'export default function (\n{')), /syntax\.js: .*\(2:/, 'a syntax error with its line');
  await t.rejects(
    loadUserModule(write('loop.js', 'for (;;) {}')),
    /loop\.js did not return within \d+ ms \(an endless loop\?\)/,
    'an endless loop at module level',
  );
  await t.rejects(loadUserModule(write('throws.js', 'throw new Error("at load")')), /throws\.js: at load/);
  await t.rejects(loadUserModule(join(dir, 'missing.js')), /ENOENT.*missing\.js/);
});

t.test('top-level await in the module the config names', async (t) => {
  const m = await loadUserModule(
    write('tla.js', `const v = await new Promise((r) => setTimeout(() => r(7), 20));\nexport const value = v;\nexport function f() { return value * 2; }`),
  );
  t.equal(m.exports.value, 7);
  t.equal((m.exports.f as () => number)(), 14);
  write('tla-dep.js', 'export const x = await 1;');
  await t.rejects(
    loadUserModule(write('tla-root.js', `import { x } from './tla-dep.js'; export default x;`)),
    /top-level await is supported in the module the config names/,
  );
});

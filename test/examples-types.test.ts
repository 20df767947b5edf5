// The package exports the types user code is written against (`import type { Strategy, Router,
// Hook } from 'switchyard'`, package.json "exports"/"types" → dist/index.d.ts), and the
// examples type-check with them: examples/tsconfig.json (checkJs) passes, and the same check
// catches a router that returns what a router may not, so it is really checking.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';

function check(extraFiles: string[] = []): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    resolve('examples/tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  )!;
  const program = ts.createProgram([...parsed.fileNames, ...extraFiles], parsed.options);
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

t.test('package.json exports the types', async (t) => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { types: string; exports: Record<string, { types: string }> };
  t.equal(pkg.types, './dist/index.d.ts');
  t.equal(pkg.exports['.']!.types, './dist/index.d.ts');
  const dts = readFileSync('dist/index.d.ts', 'utf8');
  for (const name of ['Strategy', 'Router', 'Hook', 'RequestView', 'ResponseView', 'RouteResult', 'StrategyServer', 'PickContext'])
    t.match(dts, new RegExp(`\\b${name}\\b`), name);
});

t.test('the examples type-check against the package types', async (t) => {
  t.same(check(), [], 'no type errors in examples/');
});

t.test('a TypeScript router and hooks written against the package type-check; a wrong one does not', async (t) => {
  const dir = mkdtempSync(join(resolve('examples'), '.typecheck-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.ts');
  writeFileSync(
    good,
    `import type { Router, Hook, Strategy, StrategyServer } from 'switchyard';
export const router: Router = { route(req) { return req.header('x-canary') === '1' ? 'canary' : req.path.startsWith('/old/') ? { redirect: '/new/', status: 301 } : undefined; } };
export const hooks: Hook = { onRequest(req) { req.setHeader('x-a', req.clientIp); }, onResponse(req, res) { res.setHeader('x-b', String(res.status) + (req.server ?? '')); } };
export function createStrategy(): Strategy { let s: readonly StrategyServer[] = []; return { update(e) { s = e; }, pick() { return s[0] ?? null; } }; }
`,
  );
  t.same(check([good]), [], 'TypeScript against the exported types');
  const bad = join(dir, 'bad.js');
  writeFileSync(
    bad,
    `// @ts-check
/** @type {import('switchyard').Router['route']} */
export function route(req) { return req.nope ? 42 : undefined; }
`,
  );
  const errors = check([bad]);
  t.ok(
    errors.some((e) => /Property 'nope' does not exist on type 'RequestView'/.test(e)),
    'an unknown field is an error',
  );
  t.ok(
    errors.some((e) => /Type '42' is not assignable to type 'RouteResult'/.test(e)),
    'a bad result is an error',
  );
});

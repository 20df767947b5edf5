#!/usr/bin/env node
// Builds the stats page for the browser: src/stats/page/ (TypeScript, CSS, index.html) →
// dist/stats-page/. esbuild bundles main.ts (with morphdom) into one script and page.css into
// one stylesheet, each named by a hash of its content (assets/main-XXXXXXXX.js), and
// index.html gets those names in place of ./main.ts and ./page.css. The stats listener serves
// the folder (src/stats/page-files.ts): the hashed files cached for good, index.html
// revalidated by its ETag. Type-checking is tsc's job (`npm run build` runs
// `tsc -p src/stats/page` before this script); esbuild only strips the types.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src/stats/page');
const out = join(root, 'dist/stats-page');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: [join(src, 'main.ts'), join(src, 'page.css')],
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});

// Which built file came from which entry point.
const built = new Map();
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (output.entryPoint !== undefined) built.set(basename(output.entryPoint), `/assets/${basename(file)}`);
}

let html = readFileSync(join(src, 'index.html'), 'utf8');
for (const [reference, entry] of [
  ['./main.ts', 'main.ts'],
  ['./page.css', 'page.css'],
]) {
  const url = built.get(entry);
  if (url === undefined || !html.includes(`"${reference}"`)) throw new Error(`build-page: cannot place ${entry} in index.html`);
  html = html.replace(`"${reference}"`, `"${url}"`);
}
writeFileSync(join(out, 'index.html'), html);
console.log(`stats page built: ${relative(root, out)}/ (${[...built.values()].join(', ')})`);

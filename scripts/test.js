#!/usr/bin/env node
// `npm test`: type-check and build, run every tap test (with coverage, child processes
// included: .taprc), then the type check of the whole tree (tests included), lint and the
// format check, then the throughput guard; ends with one plain summary line (`tests: N passed,
// N failed`) that CI reads. The type check, lint and format each print their own line
// (`typecheck: N errors`, `lint: N problems`) and count as one failed test when they fail. The
// guard is not a test: it is reported on its own line and is not counted in that summary, but a
// failed guard (or coverage under the floor set in .taprc) still fails the run.
// The three checks run on full runs when LINT_IN_TEST is on (below), or with SY_LINT=1.
// Needs Debian packages for some tests (chromium, buildah, podman, debootstrap, haproxy):
// scripts/ensure-system-deps.sh installs what is missing when run as root.
import { spawnSync } from 'node:child_process';

function run(cmd, args, capture = false) {
  const r = spawnSync(cmd, args, { stdio: capture ? ['inherit', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8', maxBuffer: 1 << 30 });
  if (capture && r.stdout) process.stdout.write(r.stdout);
  return r;
}

const deps = run('bash', ['scripts/ensure-system-deps.sh']);
if (deps.status !== 0) process.exit(deps.status ?? 1);
// `npm run build`: tsc for the server, tsc for the page's browser code, esbuild for its bundle.
const build = run('npm', ['run', '--silent', 'build']);
if (build.status !== 0) {
  console.log('tests: 0 passed, 1 failed (type-check/build failed)');
  process.exit(1);
}
// A full run enforces the coverage floor of .taprc (a run of a few files cannot reach it).
const full = process.argv.length <= 2;
// The type check (tsc over tsconfig.check.json: src/ as the build sees it plus test/, bench/,
// scripts/), lint (eslint, type-aware) and the format check (prettier): whole-tree checks, so
// full runs only. The build above type-checks src/ alone; the tests are type-checked here.
const LINT_IN_TEST = true;
const lintOn = process.env.SY_LINT === '1' || (full && LINT_IN_TEST && process.env.SY_LINT !== '0');
const tap = run('npx', ['tap', ...(full ? ['--no-allow-incomplete-coverage'] : []), ...process.argv.slice(2)], true);
const out = tap.stdout ?? '';
const m = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/.exec(out);
const passed = m ? Number(m[2]) : 0;
let failed = m ? Number(m[3] ?? 0) : 1;
// Coverage under the floor fails tap without failing a test: say so instead of counting one.
const coverageShort = [...out.matchAll(/# ERROR: incomplete (\w+) coverage \(([\d.]+)%\)/g)].map((c) => `${c[1]} ${c[2]}%`);
if (tap.status !== 0 && failed === 0 && coverageShort.length === 0) failed = 1;
const checks = [];
if (lintOn) {
  // Their output is printed as it comes; the counts are read from it (eslint's stylish
  // summary on stdout, prettier's `[warn] file` lines on stderr).
  const check = (args) => spawnSync('npx', args, { stdio: ['inherit', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 30 });
  // tsc prints one `file(line,col): error TSnnnn: ...` line per error on stdout (no summary
  // line when stdout is not a terminal).
  const types = check(['tsc', '-p', 'tsconfig.check.json']);
  process.stdout.write(types.stdout ?? '');
  process.stderr.write(types.stderr ?? '');
  const typeErrors = [...(types.stdout ?? '').matchAll(/: error TS\d+:/g)].length;
  checks.push(
    types.status === 0 ? 'typecheck: ok' : typeErrors > 0 ? `typecheck: ${typeErrors} errors (npm run typecheck)` : 'typecheck: tsc failed (see above)',
  );
  if (types.status !== 0) failed++;
  const lint = check(['eslint', '.']);
  process.stdout.write(lint.stdout ?? '');
  process.stderr.write(lint.stderr ?? '');
  const problems = /(\d+) problems? \(/.exec(lint.stdout ?? '')?.[1];
  checks.push(lint.status === 0 ? 'lint: ok' : problems !== undefined ? `lint: ${problems} problems (npm run lint)` : 'lint: eslint failed (see above)');
  const format = check(['prettier', '--check', '.']);
  process.stdout.write(format.stdout ?? '');
  process.stderr.write(format.stderr ?? '');
  const unformatted = [...(format.stderr ?? '').matchAll(/^\[warn\] (?!Code style issues)/gm)].length;
  checks.push(
    format.status === 0
      ? 'format: ok'
      : unformatted > 0
        ? `format: ${unformatted} files not formatted (npm run format)`
        : 'format: prettier failed (see above)',
  );
  if (lint.status !== 0) failed++;
  if (format.status !== 0) failed++;
}
let guard = 0;
if (full) guard = run('node', ['bench/guard.js']).status ?? 1;
const lines = /Lines\s*:\s*([\d.]+)%/.exec(out);
if (lines) console.log(`coverage: ${lines[1]}% of lines${full && coverageShort.length > 0 ? `; under the floor in .taprc: ${coverageShort.join(', ')}` : ''}`);
for (const line of checks) console.log(line);
if (full) console.log(`throughput guard: ${guard === 0 ? 'ok' : 'FAILED'}`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(tap.status !== 0 || guard !== 0 || checks.some((c) => !c.endsWith(': ok')) ? 1 : 0);

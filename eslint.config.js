// `npm run lint`: typescript-eslint with type information (the program of tsconfig.check.json,
// which `npm run typecheck` compiles).
//
// Base: typescript-eslint's strict-type-checked for src/ (the product: every rule that finds a
// real class of bug, plus the type-aware checks for dead conditions and needless assertions),
// recommended-type-checked for test/, bench/, scripts/ and the other JS (the bug-finding rules
// without the strictness that buys little in a test or a benchmark script). On top, for every
// file: promises awaited or explicitly voided, no promise where a callback is expected, every
// switch over a union exhaustive.
// A rule turned off or tuned below says why; a disable comment in a file names its reason.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const commonRules = {
  // `_runtime`: a parameter an interface requires and this implementation does not use.
  '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
  '@typescript-eslint/no-floating-promises': 'error',
  '@typescript-eslint/no-misused-promises': 'error',
  '@typescript-eslint/switch-exhaustiveness-check': [
    'error',
    // A `default:` that handles "anything else" on purpose is allowed; a switch over a union
    // without one must name every member, so a new member is a compile-time finding here.
    { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
  ],
};

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/', 'test/fixtures/'] },
  {
    languageOptions: {
      parserOptions: {
        // Each file is read with the program that includes it: the stats page's browser code
        // with its own (DOM library), everything else with tsconfig.check.json.
        project: ['./tsconfig.check.json', './src/stats/page/tsconfig.json'],
        tsconfigRootDir: import.meta.dirname,
      },
      globals: { ...globals.node },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['src/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked],
    rules: {
      ...commonRules,
      // Indexed reads are `!`-asserted where the index is known in range (noUncheckedIndexedAccess
      // is on in tsconfig.json): hot loops over arrays and typed arrays, checked at the boundary
      // and trusted inside (STYLE.md). The assertion is the documented idiom, not a defect.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Numbers in messages and keys (`${status}`, `${port}`) are what we mean; the rule still
      // catches objects, arrays, null and undefined turning into "[object Object]" or "undefined".
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // `socket.on('error', () => socket.destroy())` is the event-handler idiom throughout, and
      // `return this.deny(res)` the early exit of a void function (the stats routes).
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidReturningFunctions: true }],
      // TypeScript's narrowing does not see a field or variable changed by a callback or during
      // an `await` (microsoft/TypeScript#9998), and this event-driven code re-checks exactly those
      // after every wait (`if (this.stopped) return`, `if (finished) return`): on this tree most
      // of the rule's findings in src/ were such guards, which must stay.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  {
    // What user code (plain JavaScript, docs/routing.md) hands us is only typed by our API's
    // declarations, not checked by a compiler: `String(value)` on a value typed `string` is the
    // coercion at that boundary, not a needless conversion.
    files: ['src/usercode/**/*.ts', 'src/routing/request-view.ts'],
    rules: {
      '@typescript-eslint/no-unnecessary-type-conversion': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    rules: {
      ...commonRules,
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // tap queues every `t.test()` / `t.rejects()` and waits for it before the parent ends
          // (tap docs: the returned PromiseWithSubtest may be awaited but need not be), so an
          // unawaited subtest is not a lost promise. Any other promise still must be handled.
          allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }],
        },
      ],
      // tap subtests are written `async (t) => {}` throughout, so that an `await` can be added
      // without reshaping the test; an async callback without one is not a defect here.
      '@typescript-eslint/require-await': 'off',
      // test/ is not compiled by the build (tsconfig.json covers src/) and asserts on parsed
      // JSON bodies and untyped modules (autocannon): the values these rules track are `any` by
      // construction, and the test's assertion (t.same, t.match) is the check on them.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      // ... and `body: any` is the same choice written out.
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    rules: {
      ...commonRules,
      // Plain JavaScript has no annotations: JSON.parse results, child-process messages and
      // autocannon's results are `any` by construction, so the no-unsafe-* rules would flag every
      // use. The promise rules above still see the types TypeScript infers.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
);

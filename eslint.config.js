// ESLint for the whole monorepo: typescript-eslint's type-checked recommended rules, minus the ones the
// code deliberately does otherwise (each turned off below with the reason), plus the house rules:
// no console in library code, and no reaching into another package by relative path.
// Formatting is Prettier's job (.prettierrc.json), so no stylistic rule is enabled here.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// A relative import that climbs out of a folder and into another package's internals
// (`../relay/src/x.js`, `../../tracker/src/x.js`, `../../player-sdk/scripts/x.js`). In-package paths
// (`../origin/x.js` inside relay/src, `../src/cli/relay-cli.ts` from relay/bin) never name a
// src/, scripts/, bin/, test-support/ or dist/ folder below a sibling, so they pass.
const CROSS_PACKAGE = '^(\\.\\./)+[^./][^/]*/(src|scripts|bin|test-support|dist)(/|$)';
const CROSS_PACKAGE_ESQ = CROSS_PACKAGE.replaceAll('/', '\\x2F');
const CROSS_PACKAGE_MESSAGE = "Import another package by its name and exports (e.g. '@relaycast/relay/testing'), never its files by relative path.";

export default defineConfig(
  {
    ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'test/.tmp/**', 'test/artifacts/**', '**/.relaycast/**', '**/.relaycast-devnet/**'],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: { ...globals.node },
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      'no-console': 'error',
      'no-restricted-imports': ['error', { patterns: [{ regex: CROSS_PACKAGE, message: CROSS_PACKAGE_MESSAGE }] }],
      // import() and `new URL('../x/bin/y.js', import.meta.url)` are not covered by no-restricted-imports
      // (and esquery's regex literal cannot hold a '/').
      'no-restricted-syntax': [
        'error',
        { selector: `ImportExpression > Literal[value=/${CROSS_PACKAGE_ESQ}/]`, message: CROSS_PACKAGE_MESSAGE },
        {
          selector: `NewExpression[callee.name='URL'] > Literal:first-child[value=/${CROSS_PACKAGE_ESQ}/]`,
          message: "Reach another package's bin through its package.json (resolveBin from '@relaycast/cli-kit'), never by relative path.",
        },
      ],
      // Off: it calls an assertion unnecessary when the receiving variable's declared type accepts the value,
      // but the assertion is what narrows that variable for the lines after it; its fixes break the type check.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // A let read by a callback made before its one assignment (TDZ-safe forward reference) stays a let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `x == null` is the code's one loose comparison: null or undefined, on purpose.
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'all', caughtErrorsIgnorePattern: '^_' },
      ],
      // Off: async functions without await implement Promise-returning seams (fakes, close(), open()) so that
      // a throw becomes a rejection, as callers expect.
      '@typescript-eslint/require-await': 'off',
      // Abort paths reject with the signal's reason (`reject(signal.reason)`), as the platform's own APIs do.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // Off: error messages stringify whatever value they were handed (`String(encoding)`, `String(last)`), and
      // ws text frames arrive as Buffers read with `String(data)`.
      '@typescript-eslint/no-base-to-string': 'off',
      // `self` is the one name the code gives `this` for a nested function that needs it.
      '@typescript-eslint/no-this-alias': ['error', { allowedNames: ['self'] }],
      // Validators match control characters on purpose (URLs, headers and names must not hold them).
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.test.ts', '**/src/testing/**', 'test/**', 'bench/**'],
    rules: {
      // Off in tests: vitest's asymmetric matchers (`expect.objectContaining`, `expect.any`) are typed `any`.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Off in tests: spies are asserted by reference (`expect(fake.close).toHaveBeenCalled()`).
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Plain JavaScript (bins' tsx launchers, the test helpers' child-process launchers, the browser pages)
    // is in no tsconfig, so it gets the untyped rules only.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    rules: { '@typescript-eslint/consistent-type-imports': 'off' },
  },
  {
    // Pages served to browsers.
    files: ['devnet/public/**/*.js', 'player-sdk/examples/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    // Where writing to the terminal is the job: bins and their CLI modules, tests and their kits,
    // benches, scripts. Library code logs through pino (or the SDK's injected logger) instead.
    files: ['**/bin/**', '**/cli.ts', '**/*-cli.ts', '**/src/cli/**', '**/*.test.ts', '**/src/testing/**', 'test/**', 'bench/**', '**/scripts/**'],
    rules: { 'no-console': 'off' },
  },
);

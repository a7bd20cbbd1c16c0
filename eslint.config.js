// Type-aware lint: the rules here catch the bugs a queue service actually ships (a promise nobody
// awaits, an async callback where a sync one is expected, a switch that forgets a new job kind) and
// hold the folder boundaries that make the architecture. Prettier owns formatting, so no style rules.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** A no-restricted-imports pattern for relative imports that climb out of a folder into src/<area>. */
const forbidArea = (area, why) => ({ regex: `^(\\.\\./)+(src/)?${area}(/|$)`, message: why });

export default defineConfig(
  globalIgnores(['node_modules/', '.tools/', 'models/', 'bench/results/', 'packages/client/dist/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test() returns a promise the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // A switch without a default must name every member; a default is an explicit "the rest".
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // House style: `import type` when every name is a type, an inline `type` beside values otherwise.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // A leading underscore marks a name left out on purpose (`const { id: _id, ...rest } = row`).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      curly: ['error', 'multi-line'],
    },
  },
  {
    files: ['**/*.{js,mjs,cjs}'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  // The folder tree is the architecture (test/shared/boundaries.test.ts checks the same from the other side).
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            forbidArea('api', 'src/shared is the contract api and worker both import; it imports neither.'),
            forbidArea('worker', 'src/shared is the contract api and worker both import; it imports neither.'),
            forbidArea('client', 'src/shared is the contract api and worker both import; it imports no client code.'),
          ],
        },
      ],
    },
  },
  {
    files: ['src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            forbidArea('worker', 'api and worker share only src/shared.'),
            forbidArea('client', 'the api serves clients; it does not import their code.'),
          ],
        },
      ],
    },
  },
  {
    files: ['src/worker/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [forbidArea('api', 'api and worker share only src/shared.'), forbidArea('client', 'the worker does not import client code.')],
        },
      ],
    },
  },
  {
    files: ['src/client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            forbidArea('api', 'a client talks to the api over the wire; it imports only src/shared.'),
            forbidArea('worker', 'a client talks to the api over the wire; it imports only src/shared.'),
          ],
        },
      ],
    },
  },
  {
    // Tests and the bench read whatever JSON comes back and call gRPC clients that proto-loader
    // builds at run time (no static types exist for them): `any` and `Function` are the honest
    // types there. src/ keeps both rules.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-function-type': 'off',
    },
  },
);

// The layers, held by the linter (docs/architecture.md, "Where each concern lives"):
// the plan is pure and imports only the config's types and its inputs; the drivers
// (seccomp, landlock, cgroups) and the system layer (src/sys: the native binding, pids,
// signals, errnos) never reach up into the runtime; the CLI, `hako up` and the library
// reach the runtime only through its face, src/runtime/index.ts.
import tseslint from 'typescript-eslint';

const face = 'the runtime is reached through its face, src/runtime/index.ts';
const upward = (...layers) =>
  layers.map((l) => ({ group: [`**/${l}/*`, `**/${l}/**`], message: 'a lower layer does not import this one' }));

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'build/**',
      '.cache/**',
      'node_modules/**',
      'test/.work*/**',
      'bundles/*/rootfs/**',
      'bundles/*/data/**',
      'bundles/*/.cache/**',
    ],
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bundles/**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {},
  },
  {
    files: ['src/plan/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...upward('runtime', 'cli', 'up', 'harness', 'cgroups'),
            { group: ['node:child_process'], message: 'the plan is pure: it runs nothing' },
          ],
        },
      ],
    },
  },
  {
    files: [
      'src/seccomp/**/*.ts',
      'src/landlock/**/*.ts',
      'src/cgroups/**/*.ts',
      'src/oci/**/*.ts',
      'src/sys/**/*.ts',
      'src/host/subids.ts',
      'src/host/facts.ts',
    ],
    rules: { 'no-restricted-imports': ['error', { patterns: upward('runtime', 'cli', 'up', 'harness', 'plan') }] },
  },
  {
    files: ['src/cli/**/*.ts', 'src/up/**/*.ts', 'src/profile/**/*.ts', 'src/harness/**/*.ts', 'src/index.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['**/runtime/*', '!**/runtime/index.js'], message: face }],
        },
      ],
    },
  },
  {
    // A bundle is a product served by hako, not part of it: its server and its build know
    // nothing of the runtime's sources (its tests may drive hako, as any user would).
    files: ['bundles/*/server/**', 'bundles/*/build/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/src/**', '**/dist/**'], message: 'a bundle does not reach into the runtime' }] },
      ],
    },
  },
);

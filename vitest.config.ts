import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/unit/**/*.test.ts',
      'bundles/*/test/**/*.test.ts',
      'test/integration/**/*.test.ts',
      'test/security/**/*.test.ts',
      'test/escape/**/*.test.ts',
      'test/e2e/**/*.test.ts',
      'test/harness/**/*.test.ts',
      'test/native/**/*.test.ts',
    ],
    // Real containers share the host: keep files sequential, tests inside a file too.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});

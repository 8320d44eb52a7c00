import { defineConfig } from 'vitest/config';

// The VM suite: runs only inside the test VM (test/vm/run.sh), where cgroup v2 is real.
// The repo is mounted read-only there, so vitest keeps no cache.
export default defineConfig({
  cacheDir: '/tmp/vitest-cache',
  test: {
    include: ['test/vm/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['verbose'],
  },
});

// `hako/vitest`: a fresh container per test is one line.
//
//   import { withContainer } from 'hako/vitest';
//   const it = withContainer({ rootfs: '/path/to/rootfs', args: ['sleep', '600'] });
//   it('answers', async ({ container }) => expect((await container.exec(['echo', 'hi'])).stdout).toBe('hi\n'));
//
// The fixtures close what they made when the test ends: passed, failed, thrown or timed out.
import { test as base } from 'vitest';
import { Hako, type HakoOptions } from './hako.js';
import type { HakoContainer } from './container.js';
import type { ContainerOptions } from './options.js';

export interface HakoFixtures {
  /** A Hako for this test: every container it starts is closed after the test. */
  hako: Hako;
}

export interface ContainerFixtures extends HakoFixtures {
  /** A container started for this test from withContainer's options, closed after it. */
  container: HakoContainer;
}

/** vitest's test with a `hako` fixture. */
export function withHako(options: HakoOptions = {}) {
  return base.extend<HakoFixtures>({
    // vitest reads the first parameter's destructuring to know a fixture's dependencies.
    hako: async ({}, use) => {
      const hako = new Hako(options);
      try {
        await use(hako);
      } finally {
        await hako.close();
      }
    },
  });
}

/** vitest's test with `hako` and a fresh `container` per test. */
export function withContainer(container: ContainerOptions, options: HakoOptions = {}) {
  return withHako(options).extend<{ container: HakoContainer }>({
    container: async ({ hako }, use) => {
      const c = await hako.start(container);
      try {
        await use(c);
      } finally {
        await c.close();
      }
    },
  });
}

export const test = withHako();
export const it = test;
